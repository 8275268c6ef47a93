/* The RPC dispatcher: route lookup, method policy, the middleware chain and
 * the typed pipeline (JSON parse, input validation, handler, output
 * validation). The request objects it works on are src/http/exchange.c. */
#include "internal.h"
#include "base/offload.h"
#include "http/metrics.h"
#include "donkey/trace.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the typed pipeline ---- */

static bool within_limits(const json_t *v, int depth, int max_depth, size_t max_str)
{
    if (depth > max_depth)
        return false;
    switch (json_typeof(v)) {
    case JSON_STRING:
        return json_string_length(v) <= max_str;
    case JSON_ARRAY: {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) if (!within_limits(e, depth + 1, max_depth, max_str)) return false;
        return true;
    }
    case JSON_OBJECT: {
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)v, k, e)
        {
            if (strlen(k) > max_str || !within_limits(e, depth + 1, max_depth, max_str))
                return false;
        }
        return true;
    }
    default:
        return true;
    }
}

/* A JSON media type: application/json or application/<anything>+json,
 * parameters (charset...) ignored, case-insensitive. */
static bool is_json_media_type(const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strcspn(v, ";");
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n < 12 || strncasecmp(v, "application/", 12) != 0)
        return false;
    return (n == 16 && strncasecmp(v + 12, "json", 4) == 0) ||
           (n > 17 && strncasecmp(v + n - 5, "+json", 5) == 0);
}

/* Typed routes read JSON only: a body a browser can send cross-site without
 * a preflight (text/plain, form encodings, multipart) is refused with 415
 * before it is parsed. No Content-Type at all is accepted. */
static int check_content_type(dk_ctx *ctx, dk_request *req)
{
    const char *name, *value;
    for (size_t i = 0; dk_request_header_at(req, i, &name, &value) == 0; i++) {
        if (strcasecmp(name, "content-type") != 0 || is_json_media_type(value))
            continue;
        return dk_fail_error(ctx, dk_errors_make(ctx->app->core.errors, "UnsupportedMediaType",
                                                 "Content-Type must be application/json", NULL));
    }
    return 0;
}

/* Bodies at least this big are parsed on the worker pool (see below). */
#define DK_PARSE_OFFLOAD_BYTES (64 * 1024)

typedef struct parse_call {
    const char *body;
    size_t len;
    json_t *out;
} parse_call;

static int parse_run(void *arg)
{
    parse_call *c = arg;
    json_error_t jerr;
    c->out = json_loadb(c->body, c->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    return 0;
}

int dk_route_run_typed(dk_ctx *ctx, dk_request *req, dk_response *res, const dk_route *route,
                       dk_typed_fn fn, void *user)
{
    const dk_app_options *o = &ctx->app->opts;
    int ct = check_content_type(ctx, req);
    if (ct < 0)
        return ct;
    if (req->json == NULL) {
        size_t len = req->body_len;
        const char *body = req->body;
        /* An empty body means {} (typed routes without input need no body). */
        bool blank = true;
        for (size_t i = 0; i < len; i++)
            if (!isspace((unsigned char)body[i])) {
                blank = false;
                break;
            }
        if (blank) {
            req->json = json_object();
        } else {
            parse_call pc = {body, len, NULL};
            /* A big body takes jansson tens of milliseconds (a 1 MB array of
             * numbers: ~65 ms): parse it on a worker thread so the HTTP
             * thread goes on serving; small ones are parsed here. */
            if (len >= DK_PARSE_OFFLOAD_BYTES)
                dk__offload(DK__POOL_WORK, parse_run, &pc);
            else
                parse_run(&pc);
            req->json = pc.out;
            if (req->json == NULL)
                return dk_fail(ctx, 400, "Invalid JSON");
        }
        /* A value nested d deep needs d opening brackets before it, and a
         * decoded string is never longer than its JSON text: a body no longer
         * than both limits cannot exceed them, and is not walked. */
        bool short_body = len <= (size_t)o->max_json_depth && len <= o->max_json_string;
        if (!short_body &&
            !within_limits(req->json, 0, o->max_json_depth, o->max_json_string)) {
            json_decref(req->json);
            req->json = NULL;
            return dk_fail(ctx, 400, "JSON nesting or string length exceeds the server's limits");
        }
    }
    json_t *input = NULL;
    if (route->input != NULL) {
        json_t *issues = NULL;
        bool truncated = false;
        dk_validate_options vo = {.max_issues = (size_t)o->max_validation_issues,
                                  .forbid_nul = !o->allow_nul_strings};
        int vrc = dk_schema_validate_ex(route->input, req->json, &vo, &input, &issues, &truncated);
        if (vrc == DK_ENOMEM)
            return DK_ENOMEM;
        if (vrc < 0)
            return dk_fail_error(ctx, dk_error_validation_ex(issues, truncated));
    } else {
        input = json_incref(req->json);
    }
    json_t *output = NULL;
    int rc = fn(ctx, input, &output, user);
    json_decref(input);
    if (rc < 0) {
        json_decref(output);
        return rc;
    }
    if (output == NULL)
        output = json_null();
    if (route->output != NULL) {
        json_t *clean = NULL, *issues = NULL;
        if (dk_schema_validate(route->output, output, &clean, &issues) < 0) {
            char *text = json_dumps(issues, JSON_COMPACT);
            dk_fail_internal(ctx, "output validation failed: %s", text ? text : "");
            free(text);
            json_decref(issues);
            json_decref(output);
            return DK_EINTERNAL;
        }
        json_decref(output);
        output = clean;
    }
    return dk_response_set_json(res, output);
}

/* ---- chain ---- */

static int run_terminal(dk_ctx *ctx, dk_request *req, dk_response *res)
{
    const dk_route *r = ctx->route;
    if (strcmp(req->method, "OPTIONS") == 0 && !(r->methods & DK_METHOD_OPTIONS)) {
        /* Preflight reached the handler: no middleware answered it. */
        res->status = 204;
        char allow[80];
        snprintf(allow, sizeof(allow), "%s, OPTIONS", r->allow);
        dk_response_set_header(res, "Allow", allow);
        return 0;
    }
    switch (r->kind) {
    case DK__KIND_TYPED:
        return dk_route_run_typed(ctx, req, res, r, r->typed, r->user);
    case DK__KIND_RAW:
        return r->raw(ctx, req, res, r->user);
    default:
        return r->kind_impl->fn(ctx, req, res, r, r->kind_impl->user);
    }
}

int dk_next_run(dk_next *next)
{
    dk_ctx *ctx = next->ctx;
    const dk_route *r = ctx->route;
    int rc;
    if (next->index == SIZE_MAX) {
        /* A middleware called next twice: the rest of the chain (and the
         * handler) must not run again. The response stays as it is. */
        dk_log(dk_ctx_log(ctx), DK_LOG_ERROR, "Middleware called next twice", NULL);
        return DK_ESTATE;
    }
    if (next->index < r->mw.n) {
        const dk__mw_impl *m = r->mw_impl[next->index];
        dk_next inner = *next;
        inner.index++;
        rc = m->fn(ctx, next->req, next->res, r->mw.items[next->index].config, &inner, m->user);
    } else {
        rc = run_terminal(ctx, next->req, next->res);
    }
    if (rc < 0)
        dk__render_failure(ctx, next->res, rc);
    next->index = SIZE_MAX; /* consumed */
    return 0;
}

static unsigned method_bit(const char *m)
{
    switch (m[0]) {
    case 'G': return strcmp(m, "GET") == 0 ? DK_METHOD_GET : 0;
    case 'P':
        if (strcmp(m, "POST") == 0) return DK_METHOD_POST;
        if (strcmp(m, "PUT") == 0) return DK_METHOD_PUT;
        if (strcmp(m, "PATCH") == 0) return DK_METHOD_PATCH;
        return 0;
    case 'D': return strcmp(m, "DELETE") == 0 ? DK_METHOD_DELETE : 0;
    case 'O': return strcmp(m, "OPTIONS") == 0 ? DK_METHOD_OPTIONS : 0;
    case 'H': return strcmp(m, "HEAD") == 0 ? DK_METHOD_HEAD : 0;
    }
    return 0;
}

void dk__dispatch(dk_app *app, dk_ctx *ctx, dk_request *req, dk_response *res)
{
    const char *path = req->path;
    if (*path == '/')
        path++;
    const dk_route *r = dk__route_table_get(&app->table, path, strlen(path));
    if (r == NULL && app->wire.builtin != NULL && app->wire.builtin(app, ctx, req, res)) {
        /* answered: /healthz, /readyz (src/app/probes.c), /metrics (src/http/metrics.c),
         * /_donkey (src/app/admin.c) */
    } else if (r == NULL) {
        dk_fail(ctx, 404, "Route '%.200s' not found", path);
        dk__render_failure(ctx, res, DK_EHTTP);
    } else {
        unsigned bit = method_bit(req->method);
        if (!(r->methods & bit) && bit != DK_METHOD_OPTIONS) {
            /* Framework answer: rendered before ctx->route is set, so it is not
             * logged as an error thrown by the route. */
            dk_fail(ctx, 405, NULL);
            dk__render_failure(ctx, res, DK_EHTTP);
            dk_response_set_header(res, "Allow", r->allow);
        } else {
            ctx->route = r;
            dk__metrics_route_begin(ctx);
            dk_next first = {.ctx = ctx, .req = req, .res = res, .index = 0};
            dk_next_run(&first);
        }
    }
    dk__response_set_header_trusted(res, "X-Request-Id", ctx->request_id);
}
