/* Conformance routes for plugins: an auth middleware (confauth), a notes
 * plugin with a migration and a custom error, a custom handler kind
 * (echoKind), a tracing middleware for chain order tests, the ready-made cors
 * and requestLog plugins, and deliberately broken plugin sets. */
#include "conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- confauth: middleware "auth" ---- */

typedef struct confauth {
    char expected[128]; /* "Bearer <token>" */
} confauth;

static int confauth_create(dk_plugin_ctx *p, void **out, dk_err *err)
{
    confauth *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return DK_ENOMEM;
    const char *token = json_string_value(json_object_get(dk_plugin_config(p), "token"));
    snprintf(a->expected, sizeof(a->expected), "Bearer %s", token ? token : "letmein");
    *out = a;
    return 0;
}

static void confauth_destroy(dk_plugin_ctx *p, void *svc) { free(svc); }

static int auth_mw(dk_ctx *ctx, dk_request *req, dk_response *res, const json_t *config,
                   dk_next *next, void *user)
{
    confauth *a = dk_plugin_service(user);
    const char *h = dk_request_header(req, "authorization");
    if (h == NULL || strcmp(h, a->expected) != 0)
        return dk_fail(ctx, DK_HTTP_UNAUTHORIZED, "Missing or invalid bearer token");
    dk_ctx_set_user(ctx, json_pack("{s:s}", "name", "tester"));
    dk_next_run(next);
    return dk_response_set_header(res, "X-Auth", "ok");
}

static const dk_plugin confauth_plugin = {
    .name = "confauth",
    .version = "1.0.0",
    .create = confauth_create,
    .destroy = confauth_destroy,
    .middleware = (const dk_plugin_middleware[]){{"auth", auth_mw}, {0}},
};

static int whoami(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    json_t *u = dk_ctx_user(ctx);
    *out = json_pack("{s:O}", "user", json_object_get(u, "name"));
    return *out ? 0 : DK_ENOMEM;
}

/* ---- notes: migration, service, custom error ---- */

typedef struct notes {
    dk_db *db;
    confauth *auth; /* the dependency's service, reached through dk_plugin_dep() */
} notes;

static const char *const notes_deps[] = {"confauth", NULL};

static const dk_migration notes_migrations[] = {
    {1, "create_notes",
     /* Portable SQL (SQLite and PostgreSQL): ids are assigned by notes_add. */
     "CREATE TABLE conf_notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)", NULL},
    {0},
};

static int notes_create(dk_plugin_ctx *p, void **out, dk_err *err)
{
    notes *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return DK_ENOMEM;
    n->db = dk_plugin_db(p);
    n->auth = dk_plugin_dep(p, "confauth");
    if (n->auth == NULL) {
        free(n);
        return dk_err_set(err, DK_ESTATE, "confauth service missing");
    }
    *out = n;
    return 0;
}

static void notes_destroy(dk_plugin_ctx *p, void *svc) { free(svc); }

static const dk_plugin notes_plugin = {
    .name = "notes",
    .version = "1.0.0",
    .dependencies = notes_deps,
    .create = notes_create,
    .destroy = notes_destroy,
    .migrations = notes_migrations,
    .errors = (const dk_plugin_error[]){{"NoteNotFound", 404, "NOTE_NOT_FOUND", "Note not found"},
                                        {0}},
    .events = (const char *const[]){"created", NULL},
};

static int notes_add(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    notes *n = dk_ctx_service(ctx, "notes");
    const json_t *text = json_object_get(in, "text");
    json_t *params = json_pack("[O]", text);
    int64_t id = 0;
    /* Portable id assignment; RETURNING id gives the id on PostgreSQL too. */
    int rc = dk_db_exec(n->db,
                        "INSERT INTO conf_notes (id, text) SELECT COALESCE(MAX(id), 0) + 1,"
                        " CAST(? AS TEXT) FROM conf_notes RETURNING id",
                        params, NULL, &id);
    json_decref(params);
    if (rc < 0)
        return dk_fail_code(ctx, rc, "cannot store the note");
    *out = json_pack("{s:I, s:O}", "id", (json_int_t)id, "text", text);
    return *out ? 0 : DK_ENOMEM;
}

static int notes_list(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    notes *n = dk_ctx_service(ctx, "notes");
    json_t *rows = NULL;
    int rc = dk_db_query(n->db, "SELECT id, text FROM conf_notes ORDER BY id", NULL, &rows);
    if (rc < 0)
        return dk_fail_code(ctx, rc, "cannot read notes");
    *out = json_pack("{s:o}", "notes", rows);
    return *out ? 0 : DK_ENOMEM;
}

static int notes_get(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    notes *n = dk_ctx_service(ctx, "notes");
    json_t *params = json_pack("[O]", json_object_get(in, "id"));
    json_t *row = NULL;
    int rc = dk_db_query_one(n->db, "SELECT id, text FROM conf_notes WHERE id = ?", params, &row);
    json_decref(params);
    if (rc == DK_ENOTFOUND)
        return dk_fail_error(ctx, dk_errors_make(dk_ctx_core(ctx)->errors, "NoteNotFound", NULL,
                                                 NULL));
    if (rc < 0)
        return dk_fail_code(ctx, rc, "cannot read the note");
    *out = row;
    return 0;
}

/* ---- echoKind: a custom handler kind ---- */

/* The user handler of an echoKind route: turns the request body into the
 * value to echo (new reference in *out). */
typedef int (*conf_echo_fn)(dk_ctx *ctx, json_t *body, json_t **out);

static int echo_kind(dk_ctx *ctx, dk_request *req, dk_response *res, const dk_route *route,
                     void *user)
{
    size_t len = 0;
    const char *body = dk_request_body(req, &len);
    json_t *value = NULL;
    if (len == 0) {
        value = json_object();
    } else {
        json_error_t jerr;
        value = json_loadb(body, len, JSON_DECODE_ANY, &jerr);
        if (value == NULL)
            return dk_fail(ctx, 400, "Invalid JSON");
    }
    conf_echo_fn fn = (conf_echo_fn)dk_route_handler(route);
    if (fn != NULL) {
        json_t *mapped = NULL;
        int rc = fn(ctx, value, &mapped);
        json_decref(value);
        if (rc < 0)
            return rc;
        value = mapped ? mapped : json_null();
    }
    const char *key = json_string_value(json_object_get(dk_route_config(route), "wrap"));
    return dk_response_set_json(res, json_pack("{s:o}", key ? key : "echo", value));
}

static int kind_identity(dk_ctx *ctx, json_t *body, json_t **out)
{
    *out = json_incref(body);
    return 0;
}

static const dk_plugin echo_plugin = {
    .name = "echoKind",
    .version = "1.0.0",
    .kinds = (const dk_plugin_kind[]){{"echoKind", echo_kind}, {0}},
};

/* ---- conftrace: middleware "trace" for chain order tests ----
 * Config {"tag": "a", "stop": false}. Before the rest of the chain it appends
 * its tag to the context value "trace"; with "stop" it answers itself
 * {"stoppedBy": tag, "trace": [...]}; afterwards it appends its tag to the
 * response header X-Trace-After, so the header reads inner-to-outer. */

static int trace_mw(dk_ctx *ctx, dk_request *req, dk_response *res, const json_t *config,
                    dk_next *next, void *user)
{
    const char *tag = json_string_value(json_object_get(config, "tag"));
    if (tag == NULL)
        tag = "?";
    json_t *trace = dk_ctx_get(ctx, "trace");
    if (trace == NULL) {
        trace = json_array();
        if (dk_ctx_set(ctx, "trace", trace) < 0)
            return DK_ENOMEM;
    }
    json_array_append_new(trace, json_string(tag));
    if (json_is_true(json_object_get(config, "stop"))) {
        dk_response_set_status(res, 200);
        return dk_response_set_json(res, json_pack("{s:s, s:O}", "stoppedBy", tag, "trace", trace));
    }
    if (json_is_true(json_object_get(config, "deny")))
        return dk_fail(ctx, DK_HTTP_FORBIDDEN, "denied by %s", tag);
    dk_next_run(next);
    const char *prev = dk_response_header(res, "X-Trace-After");
    char buf[256];
    snprintf(buf, sizeof(buf), "%s%s%s", prev ? prev : "", prev ? "," : "", tag);
    return dk_response_set_header(res, "X-Trace-After", buf);
}

static const dk_plugin trace_plugin = {
    .name = "conftrace",
    .middleware = (const dk_plugin_middleware[]){{"trace", trace_mw}, {0}},
};

static int trace_handler(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    json_t *trace = dk_ctx_get(ctx, "trace");
    *out = json_pack("{s:O}", "trace", trace ? trace : json_null());
    return *out ? 0 : DK_ENOMEM;
}

static int plain_ok(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    *out = json_pack("{s:s}", "status", "ok");
    return 0;
}

/* ---- broken plugin sets ---- */

static const dk_plugin broken_orphan = {
    .name = "orphan", .dependencies = (const char *const[]){"ghost", NULL}};
static const dk_plugin broken_self = {
    .name = "narcissus", .dependencies = (const char *const[]){"narcissus", NULL}};
static const dk_plugin broken_alpha = {
    .name = "alpha", .dependencies = (const char *const[]){"beta", NULL}};
static const dk_plugin broken_beta = {
    .name = "beta", .dependencies = (const char *const[]){"gamma", NULL}};
static const dk_plugin broken_gamma = {
    .name = "gamma", .dependencies = (const char *const[]){"alpha", NULL}};

static int refuse(dk_plugin_ctx *p, void **out, dk_err *err)
{
    return dk_err_set(err, DK_EINVAL, "--broken-plugins must be missing, self or cycle");
}

static const dk_plugin broken_flag = {.name = "brokenPluginsFlag", .create = refuse};

static int add_broken(dk_app *app, const char *mode)
{
    if (strcmp(mode, "missing") == 0)
        return dk_app_add_plugin(app, &broken_orphan, NULL);
    if (strcmp(mode, "self") == 0)
        return dk_app_add_plugin(app, &broken_self, NULL);
    if (strcmp(mode, "cycle") == 0) {
        int rc = dk_app_add_plugin(app, &broken_alpha, NULL);
        rc |= dk_app_add_plugin(app, &broken_beta, NULL);
        return rc | dk_app_add_plugin(app, &broken_gamma, NULL);
    }
    /* An unknown mode must not start a healthy server either. */
    return dk_app_add_plugin(app, &broken_flag, NULL);
}

#define NOTE_IN                                                                              \
    "{\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\",\"minLength\":1,"   \
    "\"maxLength\":500}},\"required\":[\"text\"],\"additionalProperties\":false}"
#define NOTE_OUT                                                                             \
    "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\"},"                    \
    "\"text\":{\"type\":\"string\"}},\"required\":[\"id\",\"text\"]}"

int conf_plugins(dk_app *app, dk_router *r, const conf_flags *flags)
{
    int rc = 0;
    /* Registration order deliberately puts notes before its dependency. */
    rc |= dk_app_add_plugin(app, &notes_plugin, NULL);
    rc |= dk_app_add_plugin(app, &confauth_plugin, "{\"token\":\"letmein\"}");
    rc |= dk_app_add_plugin(app, &echo_plugin, NULL);
    rc |= dk_app_add_plugin(app, &trace_plugin, NULL);
    rc |= dk_app_add_plugin(app, dk_plugin_cors(), NULL);
    rc |= dk_app_add_plugin(app, dk_plugin_request_log(), NULL);
    if (flags->broken_plugins != NULL)
        rc |= add_broken(app, flags->broken_plugins);

    /* Behind auth: a separate router with the same prefix, so the sticky
     * middleware covers only conf.whoami. */
    dk_router *ar = dk_router_new("conf");
    if (ar == NULL)
        return DK_ENOMEM;
    rc |= dk_router_use(ar, "auth", NULL);
    rc |= dk_route_typed(ar, "whoami", "{\"type\":\"object\"}",
                         "{\"type\":\"object\",\"properties\":{\"user\":{\"type\":\"string\"}},"
                         "\"required\":[\"user\"]}",
                         whoami, NULL);
    rc |= dk_app_use(app, ar);

    dk_router *nr = dk_router_child(r, "notes");
    if (nr == NULL)
        return DK_ENOMEM;
    rc |= dk_route_typed(nr, "add", NOTE_IN, NOTE_OUT, notes_add, NULL);
    rc |= dk_route_typed(nr, "list", "{\"type\":\"object\",\"additionalProperties\":false}",
                         "{\"type\":\"object\",\"properties\":{\"notes\":{\"type\":\"array\","
                         "\"items\":" NOTE_OUT "}},\"required\":[\"notes\"]}",
                         notes_list, NULL);
    rc |= dk_route_typed(nr, "get",
                         "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\"}},"
                         "\"required\":[\"id\"]}",
                         NOTE_OUT, notes_get, NULL);

    rc |= dk_route_custom(r, "echoKind", "kind", 0, NULL, NULL, "{\"wrap\":\"echo\"}",
                          (dk_handler_fn)kind_identity, NULL);

    /* Chain order: conf.mw.trace runs a -> b -> c -> handler. */
    dk_router *mr = dk_router_child(r, "mw");
    if (mr == NULL)
        return DK_ENOMEM;
    rc |= dk_router_use(mr, "requestLog", NULL);
    rc |= dk_router_use(mr, "trace", "{\"tag\":\"a\"}");
    rc |= dk_router_use(mr, "trace", "{\"tag\":\"b\"}");
    dk_router *stop = dk_router_child(mr, "stop");
    dk_router *deny = dk_router_child(mr, "deny");
    if (stop == NULL || deny == NULL)
        return DK_ENOMEM;
    rc |= dk_router_use(mr, "trace", "{\"tag\":\"c\"}");
    rc |= dk_route_typed(mr, "trace", NULL, NULL, trace_handler, NULL);
    /* conf.mw.stop.run: b2 answers early, c never runs nor the handler. */
    rc |= dk_router_use(stop, "trace", "{\"tag\":\"b2\",\"stop\":true}");
    rc |= dk_router_use(stop, "trace", "{\"tag\":\"never\"}");
    rc |= dk_route_typed(stop, "run", NULL, NULL, trace_handler, NULL);
    /* conf.mw.deny.run: b2 fails with 403; a and b still see the response. */
    rc |= dk_router_use(deny, "trace", "{\"tag\":\"b2\",\"deny\":true}");
    rc |= dk_route_typed(deny, "run", NULL, NULL, trace_handler, NULL);

    /* CORS with an allow-list and credentials. */
    dk_router *cr = dk_router_child(r, "cors");
    if (cr == NULL)
        return DK_ENOMEM;
    rc |= dk_router_use(cr, "cors", "{\"origins\":[\"http://a.example\"],\"credentials\":true}");
    rc |= dk_route_typed(cr, "ping", NULL, NULL, plain_ok, NULL);
    return rc ? -1 : 0;
}
