/* Conformance routes for hardening tests: conf.hardening.log writes its input
 * object to the log at info (tests check the configured keys are redacted);
 * the --cors-origins / --cors-credentials flags. */
#include "conf.h"

#include <stdlib.h>
#include <string.h>

static int log_input(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    json_t *data = json_deep_copy(in);
    dk_log(dk_ctx_log(ctx), DK_LOG_INFO, "conf.hardening.log", data);
    *out = json_pack("{s:b}", "logged", 1);
    return *out ? 0 : DK_ENOMEM;
}

int conf_hardening(dk_app *app, dk_router *r)
{
    dk_router *h = dk_router_child(r, "hardening");
    if (h == NULL)
        return DK_ENOMEM;
    return dk_route_typed(h, "log", "{\"type\":\"object\"}", NULL, log_input, NULL);
}

int conf_use_cors(dk_router *r, const conf_flags *flags)
{
    json_t *cfg = json_object();
    if (cfg == NULL)
        return DK_ENOMEM;
    if (flags->cors_origins != NULL) {
        json_t *list = json_array();
        const char *p = flags->cors_origins;
        while (list != NULL && *p != '\0') {
            size_t n = strcspn(p, ",");
            size_t a = 0, b = n;
            while (a < b && p[a] == ' ')
                a++;
            while (b > a && p[b - 1] == ' ')
                b--;
            if (b > a)
                json_array_append_new(list, json_stringn(p + a, b - a));
            p += n + (p[n] == ',');
        }
        json_object_set_new(cfg, "origins", list);
    }
    if (flags->cors_credentials)
        json_object_set_new(cfg, "credentials", json_true());
    char *text = json_dumps(cfg, JSON_COMPACT);
    json_decref(cfg);
    if (text == NULL)
        return DK_ENOMEM;
    int rc = dk_router_use(r, "cors", text);
    free(text);
    return rc;
}
