/* {{name}}: the "health" router. POST /health.ping answers {"ok": true}. */
#include "app.h"

static int ping(dk_ctx *ctx, const json_t *input, json_t **output, void *user)
{
    *output = json_pack("{s:b}", "ok", 1);
    return *output != NULL ? 0 : DK_ENOMEM;
}

dk_router *health_router(void)
{
    dk_router *r = dk_router_new("health");
    if (r == NULL)
        return NULL;
    dk_route_typed(r, "ping", NULL,
                   "{\"type\":\"object\",\"properties\":{\"ok\":{\"type\":\"boolean\"}},"
                   "\"required\":[\"ok\"]}",
                   ping, NULL);
    return r;
}
