/* Request metrics and the Prometheus exposition; see metrics.h and
 * docs/observability.md. */
#include "metrics.h"
#include "stats.h"

#include "donkey/cache.h"
#include "donkey/cron.h"
#include "donkey/db.h"
#include "donkey/jobs.h"
#include "donkey/sse.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NCLASS 5 /* 1xx .. 5xx */
#define SSE_TOP 20 /* channels with a label of their own; the rest are "other" */

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

static inline uint64_t rd(ctr *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

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
    int64_t us = (int64_t)(t1.tv_sec - ctx->t0.tv_sec) * 1000000 +
                 (t1.tv_nsec - ctx->t0.tv_nsec) / 1000;
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
            arr, json_pack("{s:s, s:I, s:I, s:I, s:I, s:o, s:I, s:I}", "route",
                           route_label(app, i), "requests", (json_int_t)total, "errors",
                           (json_int_t)s.code[4], "clientErrors", (json_int_t)s.code[3],
                           "inFlight", (json_int_t)(s.started - s.done), "buckets", b, "sumUs",
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

/* ---- process ---- */

static long long read_ll(const char *path, int field) /* 1-based field of a line */
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = buf;
    if (strcmp(path, "/proc/self/stat") == 0) {
        /* The command name may hold spaces: fields restart after ')'. */
        char *q = strrchr(buf, ')');
        if (q == NULL)
            return -1;
        p = q + 2;
        field -= 2;
    }
    for (int i = 1; i < field && *p; i++) {
        while (*p && *p != ' ')
            p++;
        while (*p == ' ')
            p++;
    }
    return strtoll(p, NULL, 10);
}

static double boot_time(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (f == NULL)
        return 0;
    char line[256];
    double bt = 0;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "btime ", 6) == 0)
            bt = strtod(line + 6, NULL);
    fclose(f);
    return bt;
}

json_t *dk__metrics_process_json(void)
{
    long page = sysconf(_SC_PAGESIZE), hz = sysconf(_SC_CLK_TCK);
    long long rss = read_ll("/proc/self/statm", 2);
    long long threads = read_ll("/proc/self/stat", 20);
    long long start = read_ll("/proc/self/stat", 22);
    long long ut = read_ll("/proc/self/stat", 14), st = read_ll("/proc/self/stat", 15);
    int fds = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.')
                fds++;
        closedir(d);
        fds--; /* the directory itself */
    }
    double started = boot_time() + (hz > 0 ? (double)start / (double)hz : 0);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    double up = (double)now.tv_sec + (double)now.tv_nsec / 1e9 - started;
    return json_pack("{s:I, s:i, s:I, s:f, s:f, s:f}", "rssBytes",
                     (json_int_t)(rss > 0 ? rss * page : 0), "openFds", fds, "threads",
                     (json_int_t)threads, "startTime", started, "uptimeSeconds",
                     up > 0 ? up : 0.0, "cpuSeconds",
                     hz > 0 ? (double)(ut + st) / (double)hz : 0.0);
}

/* ---- exposition ---- */

#define CK(x)                                                                                      \
    do {                                                                                           \
        if ((x) < 0)                                                                               \
            return DK_ENOMEM;                                                                      \
    } while (0)

/* `key="value"` into a small buffer (escaped). */
static int label(dk__buf *l, const char *key, const char *value)
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
            CK(label(l, "route", route_label(app, i)));
            CK(dk__buf_appendf(l, ",code=\"%s\"", cls[c]));
            CK(dk__prom_sample_u(b, "donkey_http_requests_total", l->data, s[i].code[c]));
        }
    }
    CK(dk__prom_head(b, "donkey_http_requests_in_flight", "gauge",
                     "Requests of a route whose handler has not finished"));
    for (size_t i = 0; i < n; i++) {
        CK(label(l, "route", route_label(app, i)));
        CK(dk__prom_sample_u(b, "donkey_http_requests_in_flight", l->data,
                             s[i].started - s[i].done));
    }
    CK(dk__prom_head(b, "donkey_http_request_duration_seconds", "histogram",
                     "Time from receiving a request to handing its answer to the socket"));
    for (size_t i = 0; i < n; i++) {
        CK(label(l, "route", route_label(app, i)));
        CK(dk__prom_hist(b, "donkey_http_request_duration_seconds", l->data, s[i].bucket,
                         s[i].sum_us));
    }
    CK(dk__prom_head(b, "donkey_ratelimit_requests_total", "counter",
                     "Requests seen by a rate-limiting middleware, by route and result"));
    for (size_t i = 0; i < n; i++) {
        if (s[i].rl_allowed == 0 && s[i].rl_blocked == 0)
            continue;
        CK(label(l, "route", route_label(app, i)));
        CK(dk__buf_appends(l, ",result=\"allowed\""));
        CK(dk__prom_sample_u(b, "donkey_ratelimit_requests_total", l->data, s[i].rl_allowed));
        CK(label(l, "route", route_label(app, i)));
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

static int render_process(dk__buf *b)
{
    json_t *p = dk__metrics_process_json();
    if (p == NULL)
        return DK_ENOMEM;
    int rc = 0;
#define N(k) json_number_value(json_object_get(p, k))
    CK(dk__prom_head(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes"));
    CK(dk__prom_sample(b, "process_resident_memory_bytes", "", N("rssBytes")));
    CK(dk__prom_head(b, "process_open_fds", "gauge", "Number of open file descriptors"));
    CK(dk__prom_sample(b, "process_open_fds", "", N("openFds")));
    CK(dk__prom_head(b, "process_max_fds", "gauge", "Maximum number of open file descriptors"));
    CK(dk__prom_sample(b, "process_max_fds", "", (double)sysconf(_SC_OPEN_MAX)));
    CK(dk__prom_head(b, "process_threads", "gauge", "Number of OS threads"));
    CK(dk__prom_sample(b, "process_threads", "", N("threads")));
    CK(dk__prom_head(b, "process_start_time_seconds", "gauge",
                     "Start time of the process since the epoch in seconds"));
    CK(dk__prom_sample(b, "process_start_time_seconds", "", N("startTime")));
    CK(dk__prom_head(b, "process_cpu_seconds_total", "counter",
                     "Total user and system CPU time spent in seconds"));
    CK(dk__prom_sample(b, "process_cpu_seconds_total", "", N("cpuSeconds")));
#undef N
out:
    json_decref(p);
    return rc;
}

static int render_cache(dk_app *app, dk__buf *b)
{
    if (app->core.cache == NULL)
        return 0;
    dk_cache_stats st;
    dk_cache_stats_get(app->core.cache, &st);
    int rc = 0;
    CK(dk__prom_head(b, "donkey_cache_hits_total", "counter", "Cache lookups that found a value"));
    CK(dk__prom_sample_u(b, "donkey_cache_hits_total", "", st.hits));
    CK(dk__prom_head(b, "donkey_cache_misses_total", "counter", "Cache lookups that found none"));
    CK(dk__prom_sample_u(b, "donkey_cache_misses_total", "", st.misses));
    CK(dk__prom_head(b, "donkey_cache_evictions_total", "counter",
                     "Entries evicted to stay within the size limit"));
    CK(dk__prom_sample_u(b, "donkey_cache_evictions_total", "", st.evictions));
    CK(dk__prom_head(b, "donkey_cache_entries", "gauge", "Entries held (expired ones not yet purged included)"));
    CK(dk__prom_sample_u(b, "donkey_cache_entries", "", st.size));
out:
    return rc;
}

static int render_jobs(dk_app *app, dk__buf *b, dk__buf *l)
{
    if (app->core.jobs == NULL)
        return 0;
    json_t *st = dk__jobs_stats(app->core.jobs, true);
    if (st == NULL)
        return DK_ENOMEM;
    int rc = 0;
    static const char *const kinds[][3] = {
        {"enqueued", "donkey_jobs_enqueued_total", "Jobs enqueued, by job name"},
        {"started", "donkey_jobs_started_total", "Job attempts started, by job name"},
        {"completed", "donkey_jobs_completed_total", "Jobs completed, by job name"},
        {"failed", "donkey_jobs_failed_total",
         "Jobs failed for good (attempts used up), by job name"},
        {"retried", "donkey_jobs_retried_total", "Failed attempts that will be retried"},
    };
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        CK(dk__prom_head(b, kinds[k][1], "counter", kinds[k][2]));
        size_t i;
        json_t *n;
        json_array_foreach(json_object_get(st, "names"), i, n) {
            CK(label(l, "name", json_string_value(json_object_get(n, "name"))));
            CK(dk__prom_sample_u(b, kinds[k][1], l->data,
                                 (uint64_t)json_integer_value(json_object_get(n, kinds[k][0]))));
        }
    }
    CK(dk__prom_head(b, "donkey_jobs_queue", "gauge", "Jobs in the table, by state"));
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(st, "depth"), key, v) {
        CK(label(l, "state", key));
        CK(dk__prom_sample_u(b, "donkey_jobs_queue", l->data, (uint64_t)json_integer_value(v)));
    }
    CK(dk__prom_head(b, "donkey_job_run_duration_seconds", "histogram",
                     "Time a job handler ran, every attempt"));
    CK(dk__prom_hist_of(b, "donkey_job_run_duration_seconds", "", dk__jobs_hist(app->core.jobs)));
out:
    json_decref(st);
    return rc;
}

static double iso_seconds(const json_t *v)
{
    int64_t ms;
    const char *s = json_string_value(v);
    return s != NULL && dk_iso8601_parse(s, &ms) == 0 ? (double)ms / 1000.0 : 0;
}

static int render_cron(dk_app *app, dk__buf *b, dk__buf *l)
{
    if (app->core.cron == NULL)
        return 0;
    json_t *tasks = dk_cron_list(app->core.cron);
    if (tasks == NULL)
        return DK_ENOMEM;
    int rc = 0;
    static const char *const rows[][3] = {
        {"runs", "donkey_cron_runs_total", "counter"},
        {"failures", "donkey_cron_failures_total", "counter"},
        {"lastRun", "donkey_cron_last_run_timestamp_seconds", "gauge"},
        {"lastDurationMs", "donkey_cron_last_run_duration_seconds", "gauge"},
        {"nextRun", "donkey_cron_next_run_timestamp_seconds", "gauge"},
    };
    static const char *const help[] = {
        "Finished runs of a cron task", "Runs of a cron task that returned an error",
        "When the task last started (0: never)", "How long the last finished run took",
        "When the task runs next (0: not scheduled)"};
    for (size_t k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
        CK(dk__prom_head(b, rows[k][1], rows[k][2], help[k]));
        size_t i;
        json_t *t;
        json_array_foreach(tasks, i, t) {
            CK(label(l, "task", json_string_value(json_object_get(t, "name"))));
            json_t *v = json_object_get(t, rows[k][0]);
            double x = k < 2 ? (double)json_integer_value(v)
                       : k == 3 ? (double)json_integer_value(v) / 1000.0
                                : iso_seconds(v);
            CK(dk__prom_sample(b, rows[k][1], l->data, x));
        }
    }
out:
    json_decref(tasks);
    return rc;
}

static int render_sse(dk_app *app, dk__buf *b, dk__buf *l)
{
    if (app->core.sse == NULL)
        return 0;
    json_t *st = dk__sse_stats(app->core.sse);
    if (st == NULL)
        return DK_ENOMEM;
    int rc = 0;
    CK(dk__prom_head(b, "donkey_sse_clients", "gauge", "Connected event-stream clients"));
    CK(dk__prom_sample_u(b, "donkey_sse_clients", "",
                         (uint64_t)json_integer_value(json_object_get(st, "clients"))));
    CK(dk__prom_head(b, "donkey_sse_channel_clients", "gauge",
                     "Subscribers per channel: the busiest channels, the rest as \"other\""));
    uint64_t other = 0;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(st, "channels"), i, c) {
        uint64_t n = (uint64_t)json_integer_value(json_object_get(c, "clients"));
        if (i >= SSE_TOP) {
            other += n;
            continue;
        }
        CK(label(l, "channel", json_string_value(json_object_get(c, "name"))));
        CK(dk__prom_sample_u(b, "donkey_sse_channel_clients", l->data, n));
    }
    if (json_array_size(json_object_get(st, "channels")) > SSE_TOP)
        CK(dk__prom_sample_u(b, "donkey_sse_channel_clients", "channel=\"other\"", other));
    CK(dk__prom_head(b, "donkey_sse_events_total", "counter", "Events broadcast or sent"));
    CK(dk__prom_sample_u(b, "donkey_sse_events_total", "",
                         (uint64_t)json_integer_value(json_object_get(st, "eventsSent"))));
    CK(dk__prom_head(b, "donkey_sse_replay_bytes", "gauge", "Bytes held in replay windows"));
    CK(dk__prom_sample_u(b, "donkey_sse_replay_bytes", "",
                         (uint64_t)json_integer_value(json_object_get(st, "replayBytes"))));
out:
    json_decref(st);
    return rc;
}

static int render_db(dk_app *app, dk__buf *b)
{
    int rc = 0;
    if (app->core.db != NULL) {
        dk__db_pool_stats p;
        dk__db_pool_stats_get(app->core.db, &p);
        CK(dk__prom_head(b, "donkey_db_pool_size", "gauge", "Most database connections"));
        CK(dk__prom_sample_u(b, "donkey_db_pool_size", "", (uint64_t)p.size));
        CK(dk__prom_head(b, "donkey_db_pool_open", "gauge", "Open database connections"));
        CK(dk__prom_sample_u(b, "donkey_db_pool_open", "", (uint64_t)p.open));
        CK(dk__prom_head(b, "donkey_db_pool_in_use", "gauge", "Connections running a statement"));
        CK(dk__prom_sample_u(b, "donkey_db_pool_in_use", "", (uint64_t)p.in_use));
        CK(dk__prom_head(b, "donkey_db_pool_waiting", "gauge",
                         "Calls waiting for a free connection"));
        CK(dk__prom_sample_u(b, "donkey_db_pool_waiting", "", (uint64_t)p.waiting));
    }
    CK(dk__prom_head(b, "donkey_db_query_duration_seconds", "histogram",
                     "Time a database statement ran (connection held)"));
    CK(dk__prom_hist_of(b, "donkey_db_query_duration_seconds", "", dk__db_hist()));
out:
    return rc;
}

int dk__metrics_render(dk_app *app, dk__buf *out)
{
    if (app->metrics == NULL)
        return DK_ESTATE;
    dk__buf l = {0};
    int rc = dk__buf_appends(&l, "");
    if (rc == 0)
        rc = render_routes(app, out, &l);
    if (rc == 0)
        rc = render_http(app, out);
    if (rc == 0)
        rc = render_jobs(app, out, &l);
    if (rc == 0)
        rc = render_cron(app, out, &l);
    if (rc == 0)
        rc = render_sse(app, out, &l);
    if (rc == 0)
        rc = render_cache(app, out);
    if (rc == 0)
        rc = render_db(app, out);
    if (rc == 0)
        rc = render_process(out);
    dk__buf_free(&l);
    return rc;
}

bool dk__metrics_serve(dk_app *app, dk_ctx *ctx, dk_request *req, dk_response *res)
{
    const char *path = app->opts.metrics_path ? app->opts.metrics_path : "/metrics";
    if (!app->opts.metrics || app->metrics == NULL || strcmp(req->path, path) != 0)
        return false;
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        dk_fail(ctx, 405, NULL);
        dk__render_failure(ctx, res, DK_EHTTP);
        dk_response_set_header(res, "Allow", "GET, HEAD");
        return true;
    }
    dk__buf b = {0};
    if (dk__metrics_render(app, &b) < 0) {
        dk__buf_free(&b);
        dk_fail(ctx, 500, "metrics: out of memory");
        dk__render_failure(ctx, res, DK_EHTTP);
        return true;
    }
    res->status = 200;
    dk_response_set_header(res, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    dk_response_set_header(res, "Cache-Control", "no-store");
    dk_response_set_body(res, b.data, b.len);
    dk__buf_free(&b);
    return true;
}
