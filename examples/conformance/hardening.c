/* Conformance routes for hardening tests: conf.hardening.log writes its input
 * object to the log at info (tests check the configured keys are redacted). */
#include "conf.h"

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
