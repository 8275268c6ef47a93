/* The request log line (opts.access_log): one INFO entry per request when
 * its status is final, sampled deterministically; probes are not logged. */
#include "internal.h"
#include "donkey/trace.h"

#include <stdio.h>
#include <string.h>

static bool is_path(const char *want, const char *path)
{
    return want != NULL && *want != '\0' && strcmp(want, path) == 0;
}

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
    /* json_object_set_new rather than json_pack: parsing the pack format
     * cost more than the rest of the line. */
    json_t *d = json_object();
    if (d == NULL)
        return;
    json_object_set_new(d, "method", json_string(ctx->req->method));
    json_object_set_new(d, "path", json_string(ctx->req->path));
    json_object_set_new(d, "route", json_string(dk_ctx_route(ctx)));
    json_object_set_new(d, "status", json_integer(status));
    json_object_set_new(d, "durationUs", json_integer((json_int_t)us));
    json_object_set_new(d, "requestId", json_string(ctx->request_id));
    json_object_set_new(d, "trace_id", json_string(dk_ctx_trace_id(ctx)));
    json_object_set_new(d, "span_id", json_string(dk_ctx_span_id(ctx)));
    dk_log(app->core.logger, DK_LOG_INFO, msg, d);
}
