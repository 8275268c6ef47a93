/* Request metrics of the HTTP threads and the /metrics endpoint
 * (docs/observability.md). Not installed.
 *
 * Hot path: each HTTP thread owns a shard of counters (per route: requests
 * started and finished, status classes, a duration histogram; bytes in/out;
 * open streams), cache-line aligned and written only by that thread with
 * relaxed atomic loads and stores (no read-modify-write, no lock, no
 * syscall, no allocation). A scrape sums the shards. */
#ifndef DK_OBS_METRICS_H
#define DK_OBS_METRICS_H

#include "internal.h"
#include "base/prom.h"

typedef struct dk__metrics dk__metrics;

/* Creates the shards (one per HTTP thread) for the app's route table, when
 * metrics or the operations page are on; 0 or DK_ENOMEM. Before the HTTP
 * threads start. */
int dk__metrics_start(dk_app *app, int nthreads);
void dk__metrics_free(dk_app *app);
/* On HTTP thread `index`: makes its shard current. */
void dk__metrics_thread(dk_app *app, int index);

/* The route of the request is known (dispatch, on its HTTP thread). */
void dk__metrics_route_begin(const dk_ctx *ctx);
/* The request is answered (server, on its HTTP thread). */
void dk__metrics_request_end(const dk_ctx *ctx, size_t bytes_in, size_t bytes_out);
/* Stream bookkeeping (on the stream's HTTP thread). */
void dk__metrics_stream(int delta);
void dk__metrics_bytes_out(size_t n);
/* A rate-limiting middleware let the request through or refused it. */
void dk__metrics_ratelimit(const dk_ctx *ctx, bool allowed);

/* The request metrics' part of the exposition (metrics.c); `l` is scratch
 * space for labels. 0 or DK_ENOMEM. */
int dk__metrics_render_http(dk_app *app, dk__buf *b, dk__buf *l);
/* `key="value"` (escaped) into `l`, replacing its content. 0 or DK_ENOMEM. */
int dk__metrics_label(dk__buf *l, const char *key, const char *value);

/* Answers GET <metrics path> when metrics are on; true when `req` was it
 * (metrics_page.c, as the rest below). */
bool dk__metrics_serve(dk_app *app, dk_ctx *ctx, dk_request *req, dk_response *res);
/* The whole exposition text. 0 or DK_ENOMEM. */
int dk__metrics_render(dk_app *app, dk__buf *out);

/* Per-route totals for the operations page: [{"route", "requests", "errors"
 * (5xx), "clientErrors" (4xx), "inFlight", "buckets": [17 counts], "sumUs",
 * "rateLimited"}]. New reference. */
json_t *dk__metrics_routes_json(dk_app *app);
/* {"connections", "streams", "bytesIn", "bytesOut", "streamsCut"}. */
json_t *dk__metrics_http_json(dk_app *app);
/* {"rssBytes", "openFds", "threads", "startTime" (epoch s), "uptimeSeconds",
 *  "cpuSeconds"}. */
json_t *dk__metrics_process_json(void);

/* Open connections of the server (src/http/server.c). */
int dk__server_connections(dk_app *app);

#endif
