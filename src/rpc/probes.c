/* Built-in answers given before the route table: redirects
 * (dk_app_redirect()) and the health endpoints for load balancers and
 * orchestrators
 * (docs/deployment.md "Health checks"):
 *   GET <health_path> (default /healthz): the process answers -> 200 {"status":"ok"}
 *   GET <ready_path>  (default /readyz): database and Redis reachable and not
 *       shutting down -> 200 {"status":"ok","checks":{...}}, else 503
 *       {"status":"unavailable","checks":{...}}.
 * They run before the route table and its middleware, like a framework 404. */
#include "../internal.h"

#include <string.h>

static bool is_path(const char *want, const char *path)
{
    return want != NULL && *want != '\0' && strcmp(want, path) == 0;
}

int dk_app_redirect(dk_app *app, const char *path, const char *location)
{
    if (app == NULL || path == NULL || location == NULL || path[0] != '/' ||
        strpbrk(path, "\r\n") != NULL || strpbrk(location, "\r\n") != NULL || *location == '\0')
        return DK_EINVAL;
    if (app->redirects == NULL && (app->redirects = json_object()) == NULL)
        return DK_ENOMEM;
    return json_object_set_new(app->redirects, path, json_string(location)) == 0 ? 0 : DK_ENOMEM;
}

bool dk__probe(dk_app *app, dk_ctx *ctx, dk_request *req, dk_response *res)
{
    const dk_app_options *o = &app->opts;
    const char *to = json_string_value(json_object_get(app->redirects, req->path));
    if (to != NULL && (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0)) {
        res->status = 302;
        dk_response_set_header(res, "Location", to);
        dk_response_set_header(res, "Content-Type", "text/plain; charset=utf-8");
        dk_response_set_body(res, "Found\n", 6);
        return true;
    }
    bool health = is_path(o->health_path, req->path);
    if (!health && !is_path(o->ready_path, req->path))
        return false;
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        dk_fail(ctx, 405, NULL);
        dk__render_failure(ctx, res, DK_EHTTP);
        dk_response_set_header(res, "Allow", "GET, HEAD");
        return true;
    }
    dk_response_set_header(res, "Cache-Control", "no-store");
    if (health) {
        res->status = 200;
        dk_response_set_json(res, json_pack("{s:s}", "status", "ok"));
        return true;
    }
    json_t *checks = json_object();
    bool stopping = atomic_load(&app->stop_requested) != 0;
    json_object_set_new(checks, "shutdown", json_string(stopping ? "in progress" : "no"));
    int rc = dk__services_ready(app, checks);
    bool ok = rc == 0 && !stopping;
    res->status = ok ? 200 : 503;
    dk_response_set_json(res, json_pack("{s:s, s:o}", "status", ok ? "ok" : "unavailable",
                                        "checks", checks));
    return true;
}

/* ---- the request log ---- */

void dk__access_log(dk_ctx *ctx)
{
    dk_app *app = ctx->app;
    double rate = app->access_rate;
    int status = ctx->res->status;
    if (rate <= 0 || !dk_logger_enabled(app->core.logger, DK_LOG_INFO))
        return;
    /* Probes are polled every few seconds by load balancers: not logged. */
    const dk_app_options *o = &app->opts;
    if (ctx->route == NULL && (is_path(o->health_path, ctx->req->path) ||
                               is_path(o->ready_path, ctx->req->path)))
        return;
    if (rate < 1 && status < 500) {
        /* Deterministic sampling: request n is logged when n * rate crosses
         * an integer, so 0.1 logs every 10th. */
        uint64_t n = atomic_fetch_add(&app->access_seq, 1) + 1;
        if ((uint64_t)((double)n * rate) == (uint64_t)((double)(n - 1) * rate))
            return;
    }
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long long us = (long long)(t1.tv_sec - ctx->t0.tv_sec) * 1000000 +
                   (t1.tv_nsec - ctx->t0.tv_nsec) / 1000;
    /* The message is for people reading a console; the fields for machines. */
    char msg[320];
    snprintf(msg, sizeof(msg), "%s %.200s %d %lld.%03lldms", ctx->req->method, ctx->req->path,
             status, us / 1000, us % 1000);
    json_t *d = json_pack("{s:s, s:s, s:s, s:i, s:I, s:s, s:s, s:s}", "method", ctx->req->method,
                          "path", ctx->req->path, "route", dk_ctx_route(ctx), "status", status,
                          "durationUs", (json_int_t)us, "requestId", ctx->request_id,
                          "trace_id", ctx->trace.trace_id, "span_id", ctx->trace.span_id);
    dk_log(app->core.logger, DK_LOG_INFO, msg, d);
}
