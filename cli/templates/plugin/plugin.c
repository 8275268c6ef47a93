/* {{name}}: a plugin with a service{{#schema}}, migrations{{/schema}}{{#config}}, configuration{{/config}}{{#deps}}, dependencies{{/deps}}{{#handlers}}, a handler kind{{/handlers}}{{#middleware}}, middleware{{/middleware}}
 * and a router. */
#include "{{name}}.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Compiled from migrations/{{name}}/NNN_*.sql by cmake/embed_migrations.cmake
 * (`donkey migration new {{name}} NAME` adds one); run at start-up, in order,
 * each once. */
extern const dk_migration {{name}}_migrations[];

struct {{name}}_service {
    dk_db *db;
{{#config}}
    char greeting[64]; /* configuration "greeting", default "Hello" */
{{/config}}
{{#deps}}
{{deps_fields}}
{{/deps}}
};

{{#deps}}
static const char *const {{name}}_deps[] = { {{deps_list}}NULL };

{{/deps}}
static int {{name}}_create(dk_plugin_ctx *pctx, void **out_service, dk_err *err)
{
    {{name}}_service *svc = calloc(1, sizeof(*svc));
    if (svc == NULL)
        return DK_ENOMEM;
    svc->db = dk_plugin_db(pctx);
{{#config}}
    /* APP_PLUGIN({{name}}, "{\"greeting\":\"Hi\"}") in src/plugins.def sets it. */
    const char *greeting = json_string_value(json_object_get(dk_plugin_config(pctx), "greeting"));
    snprintf(svc->greeting, sizeof(svc->greeting), "%s", greeting != NULL ? greeting : "Hello");
{{/config}}
{{#deps}}
{{deps_lookup}}
{{/deps}}
    *out_service = svc;
    return 0;
}

static void {{name}}_destroy(dk_plugin_ctx *pctx, void *service)
{
    free(service);
}

int {{name}}_hello({{name}}_service *svc, const char *who, json_t **out)
{
{{#config}}
    const char *greeting = svc->greeting;
{{/config}}
{{^config}}
    const char *greeting = "Hello";
{{/config}}
    char message[256];
    snprintf(message, sizeof(message), "%s, %s!", greeting, who);
{{#schema}}
    json_t *params = json_pack("[s]", who);
    int rc = dk_db_exec(svc->db, "INSERT INTO {{name}}_items (name) VALUES (?)", params, NULL,
                        NULL);
    json_decref(params);
    if (rc < 0)
        return rc;
    json_t *row = NULL;
    rc = dk_db_query_one(svc->db, "SELECT COUNT(*) AS n FROM {{name}}_items", NULL, &row);
    if (rc < 0)
        return rc;
    *out = json_pack("{s:s, s:O}", "message", message, "count", json_object_get(row, "n"));
    json_decref(row);
{{/schema}}
{{^schema}}
    *out = json_pack("{s:s}", "message", message);
{{/schema}}
    return *out != NULL ? 0 : DK_ENOMEM;
}
{{#middleware}}

/* Middleware "{{name}}": runs around every route defined after
 * dk_router_use(r, "{{name}}", config) and marks the response. Its `user`
 * argument is the plugin context. */
static int {{name}}_mw(dk_ctx *ctx, dk_request *req, dk_response *res, const json_t *config,
                       dk_next *next, void *user)
{
    dk_next_run(next);
    return dk_response_set_header(res, "X-{{name}}", "1");
}
{{/middleware}}
{{#handlers}}

/* Handler kind "{{name}}": its routes' handlers get the plugin's service
 * instead of the request context (see {{name}}_info below). The executor
 * runs the standard typed pipeline (validation in and out) around them. */
typedef int (*{{name}}_handler_fn)({{name}}_service *svc, const json_t *input, json_t **output);

static int {{name}}_kind_typed(dk_ctx *ctx, const json_t *input, json_t **output, void *user)
{
    const dk_route *route = user;
    {{name}}_handler_fn fn = ({{name}}_handler_fn)dk_route_handler(route);
    return fn(dk_ctx_service(ctx, "{{name}}"), input, output);
}

static int {{name}}_kind(dk_ctx *ctx, dk_request *req, dk_response *res, const dk_route *route,
                         void *user)
{
    return dk_route_run_typed(ctx, req, res, route, {{name}}_kind_typed, (void *)route);
}
{{/handlers}}

const dk_plugin {{name}}_plugin = {
    .name = "{{name}}",
    .version = "0.1.0",
{{#deps}}
    .dependencies = {{name}}_deps,
{{/deps}}
    .create = {{name}}_create,
    .destroy = {{name}}_destroy,
    .migrations = {{name}}_migrations,
{{#middleware}}
    .middleware = (const dk_plugin_middleware[]){ {"{{name}}", {{name}}_mw}, {NULL, NULL} },
{{/middleware}}
{{#handlers}}
    .kinds = (const dk_plugin_kind[]){ {"{{name}}", {{name}}_kind}, {NULL, NULL} },
{{/handlers}}
};

/* ---- routes ---- */

static int hello(dk_ctx *ctx, const json_t *input, json_t **output, void *user)
{
    const char *who = json_string_value(json_object_get(input, "name"));
    int rc = {{name}}_hello(dk_ctx_service(ctx, "{{name}}"), who, output);
    return rc < 0 ? dk_fail_code(ctx, rc, "{{name}}.hello") : 0;
}
{{#handlers}}

/* A handler of kind "{{name}}". */
static int {{name}}_info({{name}}_service *svc, const json_t *input, json_t **output)
{
    *output = json_pack("{s:s}", "plugin", "{{name}}");
    return *output != NULL ? 0 : DK_ENOMEM;
}
{{/handlers}}

dk_router *{{name}}_router(void)
{
    dk_router *r = dk_router_new("{{name}}");
    if (r == NULL)
        return NULL;
{{#middleware}}
    dk_router_use(r, "{{name}}", NULL);
{{/middleware}}
    dk_route_typed(r, "hello",
                   "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\","
                   "\"minLength\":1,\"maxLength\":100}},\"required\":[\"name\"]}",
                   "{\"type\":\"object\",\"properties\":{\"message\":{\"type\":\"string\"}{{#schema}},"
                   "\"count\":{\"type\":\"integer\"}{{/schema}}},\"required\":[\"message\"]}",
                   hello, NULL);
{{#handlers}}
    dk_route_custom(r, "{{name}}", "info", 0, NULL,
                    "{\"type\":\"object\",\"properties\":{\"plugin\":{\"type\":\"string\"}}}",
                    NULL, (dk_handler_fn){{name}}_info, NULL);
{{/handlers}}
    return r;
}
