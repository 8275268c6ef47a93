/* The Prometheus exposition at --metrics-path and the process figures:
 * request metrics (metrics.c) plus jobs, cron, SSE, cache, database and
 * process; see metrics.h and docs/observability.md. */
#include "http/metrics.h"
#include "base/stats.h"

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

#define SSE_TOP 20 /* channels with a label of their own; the rest are "other" */

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
                     (json_int_t)threads, "startTime", started, "uptimeSeconds", up > 0 ? up : 0.0,
                     "cpuSeconds", hz > 0 ? (double)(ut + st) / (double)hz : 0.0);
}

/* ---- exposition ---- */

#define CK(x)                                                                                      \
    do {                                                                                           \
        if ((x) < 0) {                                                                             \
            rc = DK_ENOMEM;                                                                        \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

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
    CK(dk__prom_head(b, "donkey_cache_entries", "gauge",
                     "Entries held (expired ones not yet purged included)"));
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
        json_array_foreach(json_object_get(st, "names"), i, n)
        {
            CK(dk__metrics_label(l, "name", json_string_value(json_object_get(n, "name"))));
            CK(dk__prom_sample_u(b, kinds[k][1], l->data,
                                 (uint64_t)json_integer_value(json_object_get(n, kinds[k][0]))));
        }
    }
    CK(dk__prom_head(b, "donkey_jobs_queue", "gauge", "Jobs in the table, by state"));
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(st, "depth"), key, v)
    {
        CK(dk__metrics_label(l, "state", key));
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
        json_array_foreach(tasks, i, t)
        {
            CK(dk__metrics_label(l, "task", json_string_value(json_object_get(t, "name"))));
            json_t *v = json_object_get(t, rows[k][0]);
            double x = k < 2    ? (double)json_integer_value(v)
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
    json_array_foreach(json_object_get(st, "channels"), i, c)
    {
        uint64_t n = (uint64_t)json_integer_value(json_object_get(c, "clients"));
        if (i >= SSE_TOP) {
            other += n;
            continue;
        }
        CK(dk__metrics_label(l, "channel", json_string_value(json_object_get(c, "name"))));
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
        rc = dk__metrics_render_http(app, out, &l);
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
