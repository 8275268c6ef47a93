/* {{name}}: the program. Standard flags (--port, --db, --routes-json, --help, ...) are
 * handled by dk_app_options_parse(); the application itself is in app.c. */
#include "app.h"

#include <stdio.h>

#ifndef APP_VERSION
#define APP_VERSION "0.0.0"
#endif

int main(int argc, char **argv)
{
    dk_app_options opts;
    dk_app_options_init(&opts);
    opts.version = APP_VERSION; /* --version; from project(... VERSION) in CMakeLists.txt */
    dk_err err = {0};
    if (dk_app_options_parse(&opts, &argc, argv, &err) < 0) {
        fprintf(stderr, "{{name}}: %s\n", err.message);
        return 2;
    }
    if (argc > 1) {
        fprintf(stderr, "{{name}}: unknown option '%s'\n", argv[1]);
        return 2;
    }
    dk_app *app = dk_app_new(&opts);
    if (app == NULL) {
        fprintf(stderr, "{{name}}: out of memory\n");
        return 1;
    }
    /* A definition error is recorded by the app; dk_app_run() reports it. */
    app_setup(app);
    int rc = dk_app_run(app);
    dk_app_free(app);
    return rc;
}
