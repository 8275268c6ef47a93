/* Request metrics of the HTTP threads: the sharded counters, their totals
 * and their part of the Prometheus exposition; see metrics.h and
 * docs/observability.md. The rest of the exposition (jobs, cron, SSE, cache,
 * database, process) is src/web/metrics_page.c. */
#include "http/metrics.h"
#include "base/stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NCLASS 5 /* 1xx .. 5xx */

typedef _Atomic uint64_t ctr;

/* One route's counters in one shard (one cache line multiple). */
typedef struct route_ctr {
    _Alignas(64) ctr started;
    ctr done;
    ctr code[NCLASS];
    ctr bucket[DK__HIST_N + 1];
    ctr sum_us;
    ctr rl_allowed, rl_blocked;
} route_ctr;

typedef struct shard {
    _Alignas(64) ctr bytes_in;
    ctr bytes_out;
    ctr streams_opened, streams_closed;
    route_ctr routes[]; /* table.n + 1: the last counts requests without a route */
} shard;

struct dk__metrics {
    int nshards;
    size_t nroutes; /* table.n */
    shard **shards;
};

static _Thread_local shard *tl_shard;
static _Thread_local size_t tl_nroutes;

/* Single writer: a plain load and store, no locked instruction. */
static inline void bump(ctr *c, uint64_t by)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by,
                          memory_order_relaxed);
}

static inline uint64_t rd(ctr *c) { return atomic_load_explicit(c, memory_order_relaxed); }

int dk__metrics_start(dk_app *app, int nthreads)
{
    if (!app->opts.metrics && (app->opts.admin_token == NULL || !*app->opts.admin_token))
        return 0;
    dk__metrics *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return DK_ENOMEM;
    m->nroutes = app->table.n;
    m->shards = calloc((size_t)nthreads, sizeof(*m->shards));
    if (m->shards == NULL) {
        free(m);
        return DK_ENOMEM;
    }
    size_t size = sizeof(shard) + (m->nroutes + 1) * sizeof(route_ctr);
    size = (size + 63) & ~(size_t)63;
    for (int i = 0; i < nthreads; i++) {
        m->shards[i] = aligned_alloc(64, size);
        if (m->shards[i] == NULL) {
            m->nshards = i;
            app->metrics = m;
            dk__metrics_free(app);
            return DK_ENOMEM;
        }
        memset(m->shards[i], 0, size);
    }
    m->nshards = nthreads;
    app->metrics = m;
    return 0;
}

void dk__metrics_free(dk_app *app)
{
    dk__metrics *m = app->metrics;
    if (m == NULL)
        return;
    for (int i = 0; i < m->nshards; i++)
        free(m->shards[i]);
    free(m->shards);
    free(m);
    app->metrics = NULL;
}

void dk__metrics_thread(dk_app *app, int index)
{
    dk__metrics *m = app->metrics;
    tl_shard = m != NULL && index < m->nshards ? m->shards[index] : NULL;
    tl_nroutes = m != NULL ? m->nroutes : 0;
}

static inline route_ctr *route_of(shard *s, const dk_ctx *ctx)
{
    size_t i = ctx->route != NULL ? ctx->route->index : tl_nroutes;
    return &s->routes[i < tl_nroutes ? i : tl_nroutes];
}

void dk__metrics_route_begin(const dk_ctx *ctx)
{
    shard *s = tl_shard;
    if (s != NULL)
        bump(&route_of(s, ctx)->started, 1);
}

void dk__metrics_request_end(const dk_ctx *ctx, size_t bytes_in, size_t bytes_out)
{
    shard *s = tl_shard;
    if (s == NULL)
        return;
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int64_t us =
        (int64_t)(t1.tv_sec - ctx->t0.tv_sec) * 1000000 + (t1.tv_nsec - ctx->t0.tv_nsec) / 1000;
    if (us < 0)
        us = 0;
    route_ctr *r = route_of(s, ctx);
    if (ctx->route != NULL)
        bump(&r->done, 1);
    else
        bump(&r->started, 1), bump(&r->done, 1);
    int cls = ctx->res->status / 100 - 1;
    bump(&r->code[cls >= 0 && cls < NCLASS ? cls : NCLASS - 1], 1);
    bump(&r->bucket[dk__hist_index((uint64_t)us)], 1);
    bump(&r->sum_us, (uint64_t)us);
    bump(&s->bytes_in, bytes_in);
    bump(&s->bytes_out, bytes_out);
}

void dk__metrics_stream(int delta)
{
    shard *s = tl_shard;
    if (s != NULL)
        bump(delta > 0 ? &s->streams_opened : &s->streams_closed, 1);
}

void dk__metrics_bytes_out(size_t n)
{
    shard *s = tl_shard;
    if (s != NULL)
        bump(&s->bytes_out, n);
}

void dk__metrics_ratelimit(const dk_ctx *ctx, bool allowed)
{
    shard *s = tl_shard;
    if (s != NULL) {
        route_ctr *r = route_of(s, ctx);
        bump(allowed ? &r->rl_allowed : &r->rl_blocked, 1);
    }
}

/* ---- reading ---- */

typedef struct route_sum {
    uint64_t started, done, code[NCLASS], bucket[DK__HIST_N + 1], sum_us, rl_allowed, rl_blocked;
} route_sum;

static void sum_route(dk__metrics *m, size_t i, route_sum *o)
{
    memset(o, 0, sizeof(*o));
    for (int k = 0; k < m->nshards; k++) {
        route_ctr *r = &m->shards[k]->routes[i];
        o->started += rd(&r->started);
        o->done += rd(&r->done);
        for (int c = 0; c < NCLASS; c++)
            o->code[c] += rd(&r->code[c]);
        for (int b = 0; b <= DK__HIST_N; b++)
            o->bucket[b] += rd(&r->bucket[b]);
        o->sum_us += rd(&r->sum_us);
        o->rl_allowed += rd(&r->rl_allowed);
        o->rl_blocked += rd(&r->rl_blocked);
    }
}

static const char *route_label(dk_app *app, size_t i)
{
    return i < app->table.n ? app->table.list[i]->name : "(none)";
}

json_t *dk__metrics_routes_json(dk_app *app)
{
    dk__metrics *m = app->metrics;
    json_t *arr = json_array();
    if (m == NULL || arr == NULL)
        return arr;
    for (size_t i = 0; i <= m->nroutes; i++) {
        route_sum s;
        sum_route(m, i, &s);
        json_t *b = json_array();
        for (int k = 0; k <= DK__HIST_N; k++)
            json_array_append_new(b, json_integer((json_int_t)s.bucket[k]));
        uint64_t total = 0;
        for (int c = 0; c < NCLASS; c++)
            total += s.code[c];
        json_array_append_new(
            arr, json_pack("{s:s, s:I, s:I, s:I, s:I, s:o, s:I, s:I}", "route", route_label(app, i),
                           "requests", (json_int_t)total, "errors", (json_int_t)s.code[4],
                           "clientErrors", (json_int_t)s.code[3], "inFlight",
                           (json_int_t)(s.started - s.done), "buckets", b, "sumUs",
                           (json_int_t)s.sum_us, "rateLimited", (json_int_t)s.rl_blocked));
    }
    return arr;
}

json_t *dk__metrics_http_json(dk_app *app)
{
    dk__metrics *m = app->metrics;
    uint64_t in = 0, out = 0, so = 0, sc = 0;
    for (int k = 0; m != NULL && k < m->nshards; k++) {
        in += rd(&m->shards[k]->bytes_in);
        out += rd(&m->shards[k]->bytes_out);
        so += rd(&m->shards[k]->streams_opened);
        sc += rd(&m->shards[k]->streams_closed);
    }
    return json_pack("{s:i, s:I, s:I, s:I, s:I}", "connections", dk__server_connections(app),
                     "streams", (json_int_t)(so - sc), "bytesIn", (json_int_t)in, "bytesOut",
                     (json_int_t)out, "streamsCut", (json_int_t)dk__streams_cut());
}

#define CK(x)                                                                                      \
    do {                                                                                           \
        if ((x) < 0)                                                                               \
            return DK_ENOMEM;                                                                      \
    } while (0)

int dk__metrics_label(dk__buf *l, const char *key, const char *value)
{
    l->len = 0;
    if (l->data != NULL)
        l->data[0] = '\0';
    CK(dk__buf_appendf(l, "%s=\"", key));
    CK(dk__prom_label(l, value));
    return dk__buf_append(l, "\"", 1);
}

static int render_routes(dk_app *app, dk__buf *b, dk__buf *l)
{
    dk__metrics *m = app->metrics;
    static const char *cls[NCLASS] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    size_t n = m->nroutes + 1;
    route_sum *s = calloc(n, sizeof(*s));
    if (s == NULL)
        return DK_ENOMEM;
    for (size_t i = 0; i < n; i++)
        sum_route(m, i, &s[i]);
    int rc = 0;
#undef CK
#define CK(x)                                                                                      \
    do {                                                                                           \
        if ((x) < 0) {                                                                             \
            rc = DK_ENOMEM;                                                                        \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)
    CK(dk__prom_head(b, "donkey_http_requests_total", "counter",
                     "HTTP requests answered, by route and status class"));
    for (size_t i = 0; i < n; i++) {
        for (int c = 0; c < NCLASS; c++) {
            if (s[i].code[c] == 0 && c != 1)
                continue;
            CK(dk__metrics_label(l, "route", route_label(app, i)));
            CK(dk__buf_appendf(l, ",code=\"%s\"", cls[c]));
            CK(dk__prom_sample_u(b, "donkey_http_requests_total", l->data, s[i].code[c]));
        }
    }
    CK(dk__prom_head(b, "donkey_http_requests_in_flight", "gauge",
                     "Requests of a route whose handler has not finished"));
    for (size_t i = 0; i < n; i++) {
        CK(dk__metrics_label(l, "route", route_label(app, i)));
        CK(dk__prom_sample_u(b, "donkey_http_requests_in_flight", l->data,
                             s[i].started - s[i].done));
    }
    CK(dk__prom_head(b, "donkey_http_request_duration_seconds", "histogram",
                     "Time from receiving a request to handing its answer to the socket"));
    for (size_t i = 0; i < n; i++) {
        CK(dk__metrics_label(l, "route", route_label(app, i)));
        CK(dk__prom_hist(b, "donkey_http_request_duration_seconds", l->data, s[i].bucket,
                         s[i].sum_us));
    }
    CK(dk__prom_head(b, "donkey_ratelimit_requests_total", "counter",
                     "Requests seen by a rate-limiting middleware, by route and result"));
    for (size_t i = 0; i < n; i++) {
        if (s[i].rl_allowed == 0 && s[i].rl_blocked == 0)
            continue;
        CK(dk__metrics_label(l, "route", route_label(app, i)));
        CK(dk__buf_appends(l, ",result=\"allowed\""));
        CK(dk__prom_sample_u(b, "donkey_ratelimit_requests_total", l->data, s[i].rl_allowed));
        CK(dk__metrics_label(l, "route", route_label(app, i)));
        CK(dk__buf_appends(l, ",result=\"blocked\""));
        CK(dk__prom_sample_u(b, "donkey_ratelimit_requests_total", l->data, s[i].rl_blocked));
    }
out:
    free(s);
    return rc;
}

static int render_http(dk_app *app, dk__buf *b)
{
    json_t *h = dk__metrics_http_json(app);
    if (h == NULL)
        return DK_ENOMEM;
    int rc = 0;
#define J(k) ((uint64_t)json_integer_value(json_object_get(h, k)))
    CK(dk__prom_head(b, "donkey_http_open_connections", "gauge", "Open client connections"));
    CK(dk__prom_sample_u(b, "donkey_http_open_connections", "", J("connections")));
    CK(dk__prom_head(b, "donkey_http_open_streams", "gauge",
                     "Open streaming responses (Server-Sent Events)"));
    CK(dk__prom_sample_u(b, "donkey_http_open_streams", "", J("streams")));
    CK(dk__prom_head(b, "donkey_http_received_bytes_total", "counter", "Request body bytes"));
    CK(dk__prom_sample_u(b, "donkey_http_received_bytes_total", "", J("bytesIn")));
    CK(dk__prom_head(b, "donkey_http_sent_bytes_total", "counter",
                     "Response body bytes, streams included"));
    CK(dk__prom_sample_u(b, "donkey_http_sent_bytes_total", "", J("bytesOut")));
    CK(dk__prom_head(b, "donkey_sse_slow_readers_cut_total", "counter",
                     "Streams closed because the client did not read fast enough"));
    CK(dk__prom_sample_u(b, "donkey_sse_slow_readers_cut_total", "", J("streamsCut")));
#undef J
out:
    json_decref(h);
    return rc;
}

int dk__metrics_render_http(dk_app *app, dk__buf *b, dk__buf *l)
{
    int rc = render_routes(app, b, l);
    return rc < 0 ? rc : render_http(app, b);
}
