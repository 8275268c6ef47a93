/* conformance: the application black-box tests drive. Standard flags are
 * parsed by dk_app_options_parse(); the rest here. */
#include "conf.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    dk_app_options opts;
    dk_app_options_init(&opts);
    dk_err err = {0};
    if (dk_app_options_parse(&opts, &argc, argv, &err) < 0) {
        fprintf(stderr, "conformance: %s\n", err.message);
        return 2;
    }
    conf_flags flags = {0};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--broken-plugins") == 0 && i + 1 < argc) {
            flags.broken_plugins = argv[++i];
        } else if (strcmp(argv[i], "--cors-origins") == 0 && i + 1 < argc) {
            flags.cors_origins = argv[++i];
        } else if (strcmp(argv[i], "--cors-credentials") == 0) {
            flags.cors_credentials = true;
        } else {
            fprintf(stderr, "conformance: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    dk_app *app = dk_app_new(&opts);
    if (app == NULL) {
        fprintf(stderr, "conformance: out of memory\n");
        return 1;
    }
    dk_router *r = dk_router_new("conf");
    if (r != NULL && (flags.cors_origins != NULL || flags.cors_credentials))
        conf_use_cors(r, &flags); /* before the routes: middleware is sticky */
    if (r == NULL || conf_foundation_routes(r) != 0 || conf_plugins(app, r, &flags) != 0 ||
        conf_services(app, r) != 0 || conf_realtime(app, r) != 0 || conf_cluster(app, r) != 0 ||
        conf_hardening(app, r) != 0 || conf_waiting(app, r) != 0) {
        /* The definition error is recorded on the router; start-up reports it. */
        fprintf(stderr, "conformance: route definition failed\n");
    }
    dk_app_use(app, r);
    if (opts.admin_token != NULL && conf_admin(app) != 0)
        fprintf(stderr, "conformance: cannot set up the operations page extras\n");
    int rc = dk_app_run(app);
    dk_app_free(app);
    return rc;
}
