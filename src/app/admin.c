/* The operations page: the admin.* routes, the live stream, the page itself
 * and its auth hook (include/donkey/admin.h, docs/observability.md). */
#include "donkey/admin.h"
#include "donkey/cache.h"
#include "donkey/cron.h"
#include "donkey/events.h"
#include "donkey/jobs.h"
#include "donkey/loop.h"
#include "donkey/plugin.h"
#include "donkey/ratelimit.h"
#include "donkey/sse.h"
#include "internal.h"
#include "http/metrics.h"
#include "base/stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* The page (src/app/admin_page.html, embedded at build time). */
extern const unsigned char dk__admin_page_html[];
extern const size_t dk__admin_page_html_len;

#define SAMPLE_MS 5000 /* sparkline resolution */
#define SAMPLES 60     /* 5 minutes */
#define ROLE_KEY "donkey.admin.role"
#define LIVE_CHANNEL "donkey.admin"

typedef struct admin {
    dk_app *app;
    char *path, *token;
    dk_admin_auth_fn auth;
    void *auth_user;
    uint64_t interval;
    uv_timer_t *timer; /* service loop */
    pthread_mutex_t lock;
    /* live stream clients, under lock */
    char (*clients)[DK_SSE_ID_LEN];
    size_t nclients, ccap;
    /* request totals per route every SAMPLE_MS (ring), under lock */
    size_t nroutes;
    uint64_t *samples; /* SAMPLES * nroutes */
    uint64_t *errors;  /* 5xx, same shape */
    int64_t stamp[SAMPLES];
    size_t next, count;
} admin;

/* ---- auth ---- */

static bool token_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = la != lb;
    for (size_t i = 0; i < la; i++)
        d |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
    return d == 0;
}

static dk_admin_role who(admin *a, dk_ctx *ctx, dk_request *req)
{
    const char *h = dk_request_header(req, "authorization");
    if (a->token != NULL && h != NULL && strncasecmp(h, "Bearer ", 7) == 0) {
        const char *t = h + 7;
        while (*t == ' ')
            t++;
        if (token_equal(t, a->token))
            return DK_ADMIN_ADMIN;
    }
    if (a->auth != NULL) {
        dk_admin_role r = a->auth(ctx, req, a->auth_user);
        return r == DK_ADMIN_ADMIN || r == DK_ADMIN_VIEWER ? r : DK_ADMIN_DENY;
    }
    return DK_ADMIN_DENY;
}

static int unauthorized(dk_ctx *ctx, dk_response *res)
{
    dk_response_set_header(res, "WWW-Authenticate", "Bearer realm=\"donkey admin\"");
    return dk_fail(ctx, 401, "Unauthorized");
}

static int auth_mw(dk_ctx *ctx, dk_request *req, dk_response *res, const json_t *config,
                   dk_next *next, void *user)
{
    (void)config;
    admin *a = user;
    dk_admin_role role = who(a, ctx, req);
    if (role == DK_ADMIN_DENY)
        return unauthorized(ctx, res);
    dk_response_set_header(res, "Cache-Control", "no-store");
    dk_ctx_set(ctx, ROLE_KEY, json_integer(role));
    return dk_next_run(next);
}

static bool is_admin(dk_ctx *ctx)
{
    return json_integer_value(dk_ctx_get(ctx, ROLE_KEY)) == DK_ADMIN_ADMIN;
}

/* ---- cron in words ---- */

static bool all_digits(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

static void describe_cron(const char *expr, char *out, size_t cap)
{
    static const char *const days[] = {"Sunday",   "Monday", "Tuesday",  "Wednesday",
                                       "Thursday", "Friday", "Saturday", "Sunday"};
    char f[6][32];
    int n = 0;
    const char *p = expr;
    while (*p && n < 6) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        size_t len = strcspn(p, " \t");
        snprintf(f[n], sizeof(f[n]), "%.*s", (int)(len < 31 ? len : 31), p);
        n++;
        p += len;
    }
    if (n == 1 && f[0][0] == '@') {
        snprintf(out, cap, "%s",
                 strcmp(f[0], "@hourly") == 0     ? "every hour"
                 : strcmp(f[0], "@daily") == 0    ? "every day at 00:00"
                 : strcmp(f[0], "@midnight") == 0 ? "every day at 00:00"
                 : strcmp(f[0], "@weekly") == 0   ? "every Sunday at 00:00"
                 : strcmp(f[0], "@monthly") == 0  ? "on day 1 of every month at 00:00"
                 : strcmp(f[0], "@yearly") == 0 || strcmp(f[0], "@annually") == 0
                     ? "every 1 January at 00:00"
                     : expr);
        return;
    }
    if (n != 5 && n != 6) {
        snprintf(out, cap, "%s", expr);
        return;
    }
    char(*c)[32] = n == 6 ? f + 1 : f; /* minute hour dom month dow */
    const char *sec = n == 6 ? f[0] : NULL;
    bool rest_any = strcmp(c[2], "*") == 0 && strcmp(c[3], "*") == 0 && strcmp(c[4], "*") == 0;
    if (sec != NULL && strcmp(c[0], "*") == 0 && strcmp(c[1], "*") == 0 && rest_any) {
        if (strcmp(sec, "*") == 0)
            snprintf(out, cap, "every second");
        else if (strncmp(sec, "*/", 2) == 0 && all_digits(sec + 2))
            snprintf(out, cap, "every %.24s seconds", sec + 2);
        else if (all_digits(sec))
            snprintf(out, cap, "every minute at second %.24s", sec);
        else
            snprintf(out, cap, "%s", expr);
        return;
    }
    if (sec != NULL && strcmp(sec, "0") != 0) {
        snprintf(out, cap, "%s", expr);
        return;
    }
    if (strcmp(c[1], "*") == 0 && rest_any) {
        if (strcmp(c[0], "*") == 0)
            snprintf(out, cap, "every minute");
        else if (strncmp(c[0], "*/", 2) == 0 && all_digits(c[0] + 2))
            snprintf(out, cap, "every %.24s minutes", c[0] + 2);
        else if (all_digits(c[0]))
            snprintf(out, cap, "every hour at minute %.24s", c[0]);
        else
            snprintf(out, cap, "%s", expr);
        return;
    }
    if (all_digits(c[0]) && strncmp(c[1], "*/", 2) == 0 && all_digits(c[1] + 2) && rest_any) {
        snprintf(out, cap, "every %.24s hours at minute %.24s", c[1] + 2, c[0]);
        return;
    }
    if (!all_digits(c[0]) || !all_digits(c[1])) {
        snprintf(out, cap, "%s", expr);
        return;
    }
    char at[16];
    snprintf(at, sizeof(at), "%02d:%02d", atoi(c[1]) % 100, atoi(c[0]) % 100);
    if (rest_any)
        snprintf(out, cap, "every day at %s", at);
    else if (strcmp(c[2], "*") == 0 && strcmp(c[3], "*") == 0 && all_digits(c[4]) &&
             atoi(c[4]) <= 7)
        snprintf(out, cap, "every %s at %s", days[atoi(c[4])], at);
    else if (strcmp(c[2], "*") == 0 && strcmp(c[3], "*") == 0 && strcmp(c[4], "1-5") == 0)
        snprintf(out, cap, "every weekday at %s", at);
    else if (all_digits(c[2]) && strcmp(c[3], "*") == 0 && strcmp(c[4], "*") == 0)
        snprintf(out, cap, "on day %.24s of every month at %s", c[2], at);
    else
        snprintf(out, cap, "%s", expr);
}

/* ---- snapshot ---- */

/* Adds rate, errorRate, p50/p95/p99 and a sparkline to each route. Lock held. */
static void decorate_routes(admin *a, json_t *routes, int64_t now)
{
    size_t i;
    json_t *r;
    json_array_foreach(routes, i, r)
    {
        uint64_t c[DK__HIST_N + 1];
        json_t *b = json_object_get(r, "buckets");
        for (int k = 0; k <= DK__HIST_N; k++)
            c[k] = (uint64_t)json_integer_value(json_array_get(b, (size_t)k));
        json_object_set_new(r, "p50", json_real(dk__hist_quantile(c, 0.50)));
        json_object_set_new(r, "p95", json_real(dk__hist_quantile(c, 0.95)));
        json_object_set_new(r, "p99", json_real(dk__hist_quantile(c, 0.99)));
        json_object_del(r, "buckets");
        uint64_t total = (uint64_t)json_integer_value(json_object_get(r, "requests"));
        uint64_t errs = (uint64_t)json_integer_value(json_object_get(r, "errors"));
        double rate = 0, erate = 0;
        json_t *spark = json_array();
        if (a->count > 0 && i < a->nroutes) {
            /* Rate since the newest sample at least a second old. */
            size_t last = (a->next + SAMPLES - 1) % SAMPLES;
            size_t ref = last;
            if (now - a->stamp[ref] < 1000 && a->count > 1)
                ref = (a->next + SAMPLES - 2) % SAMPLES;
            double secs = (double)(now - a->stamp[ref]) / 1000.0;
            uint64_t d = total - a->samples[ref * a->nroutes + i];
            uint64_t de = errs - a->errors[ref * a->nroutes + i];
            if (secs > 0) {
                rate = (double)d / secs;
                erate = d > 0 ? (double)de / (double)d : 0;
            }
            size_t first = (a->next + SAMPLES - a->count) % SAMPLES;
            for (size_t k = 1; k < a->count; k++) {
                size_t cur = (first + k) % SAMPLES, prev = (first + k - 1) % SAMPLES;
                double s = (double)(a->stamp[cur] - a->stamp[prev]) / 1000.0;
                uint64_t dd = a->samples[cur * a->nroutes + i] - a->samples[prev * a->nroutes + i];
                json_array_append_new(spark, json_real(s > 0 ? (double)dd / s : 0));
            }
            json_array_append_new(spark, json_real(rate));
        }
        json_object_set_new(r, "rate", json_real(rate));
        json_object_set_new(r, "errorRate", json_real(erate));
        json_object_set_new(r, "sparkline", spark);
    }
}

static void sample(admin *a, json_t *routes, int64_t now)
{
    if (a->samples == NULL)
        return;
    size_t slot = a->next;
    size_t i;
    json_t *r;
    json_array_foreach(routes, i, r)
    {
        if (i >= a->nroutes)
            break;
        a->samples[slot * a->nroutes + i] =
            (uint64_t)json_integer_value(json_object_get(r, "requests"));
        a->errors[slot * a->nroutes + i] =
            (uint64_t)json_integer_value(json_object_get(r, "errors"));
    }
    a->stamp[slot] = now;
    a->next = (slot + 1) % SAMPLES;
    if (a->count < SAMPLES)
        a->count++;
}

static json_t *cron_json(dk_cron *cron)
{
    json_t *tasks = cron != NULL ? dk_cron_list(cron) : json_array();
    size_t i;
    json_t *t;
    int64_t now = dk_wall_ms();
    json_array_foreach(tasks, i, t)
    {
        const char *expr = json_string_value(json_object_get(t, "expression"));
        const char *tz = json_string_value(json_object_get(t, "timezone"));
        char words[160];
        describe_cron(expr ? expr : "", words, sizeof(words));
        json_object_set_new(t, "description", json_string(words));
        json_t *next = json_array();
        int64_t after = now;
        for (int k = 0; k < 3; k++) {
            int64_t at;
            if (expr == NULL || dk_cron_next(expr, tz, after, &at, NULL) < 0)
                break;
            char buf[32];
            json_array_append_new(next, json_string(dk_iso8601(at, buf, sizeof(buf))));
            after = at;
        }
        json_object_set_new(t, "nextRuns", next);
    }
    return tasks;
}

static json_t *snapshot(admin *a)
{
    dk_app *app = a->app;
    const dk_core *c = &app->core;
    json_t *routes = dk__metrics_routes_json(app);
    int64_t now = dk_wall_ms();
    pthread_mutex_lock(&a->lock);
    decorate_routes(a, routes, now);
    pthread_mutex_unlock(&a->lock);

    json_t *jobs = c->jobs != NULL ? dk__jobs_stats(c->jobs, true) : json_object();
    json_t *fails = NULL;
    if (c->jobs == NULL || dk__jobs_list_recent(c->jobs, "failed", 10, &fails) < 0)
        fails = json_array();
    json_object_set_new(jobs, "failures", fails);

    dk_cache_stats cs = {0};
    if (c->cache != NULL)
        dk_cache_stats_get(c->cache, &cs);
    dk__db_pool_stats db = {0};
    if (c->db != NULL)
        dk__db_pool_stats_get(c->db, &db);
    uint64_t qc[DK__HIST_N + 1];
    dk__hist *qh = dk__db_hist();
    for (int k = 0; k <= DK__HIST_N; k++)
        qc[k] = atomic_load_explicit(&qh->bucket[k], memory_order_relaxed);
    uint64_t queries = 0;
    for (int k = 0; k <= DK__HIST_N; k++)
        queries += qc[k];

    json_t *limits = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(routes, i, r)
    {
        (void)i;
        json_int_t blocked = json_integer_value(json_object_get(r, "rateLimited"));
        if (blocked > 0)
            json_array_append_new(
                limits,
                json_pack("{s:O, s:I}", "route", json_object_get(r, "route"), "blocked", blocked));
    }
    char ts[32];
    return json_pack(
        "{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:{s:I, s:I, s:I, s:I, s:I}, "
        "s:{s:I, s:o}, s:{s:i, s:i, s:i, s:i, s:I, s:f, s:f}}",
        "now", dk_iso8601(now, ts, sizeof(ts)), "process", dk__metrics_process_json(), "http",
        dk__metrics_http_json(app), "routes", routes, "jobs", jobs, "cron", cron_json(c->cron),
        "sse", c->sse != NULL ? dk__sse_stats(c->sse) : json_object(), "cache", "hits",
        (json_int_t)cs.hits, "misses", (json_int_t)cs.misses, "size", (json_int_t)cs.size,
        "evictions", (json_int_t)cs.evictions, "sets", (json_int_t)cs.sets, "ratelimit", "keys",
        (json_int_t)(c->ratelimit != NULL ? dk_ratelimit_size(c->ratelimit) : 0), "routes", limits,
        "db", "size", db.size, "open", db.open, "inUse", db.in_use, "waiting", db.waiting,
        "queries", (json_int_t)queries, "p50", dk__hist_quantile(qc, 0.5), "p99",
        dk__hist_quantile(qc, 0.99));
}

/* ---- the service-loop timer: samples and the live stream ---- */

static void on_tick(uv_timer_t *t)
{
    admin *a = t->data;
    int64_t now = dk_wall_ms();
    pthread_mutex_lock(&a->lock);
    bool due = a->count == 0 || now - a->stamp[(a->next + SAMPLES - 1) % SAMPLES] >= SAMPLE_MS;
    size_t n = a->nclients;
    pthread_mutex_unlock(&a->lock);
    if (due) {
        json_t *routes = dk__metrics_routes_json(a->app);
        pthread_mutex_lock(&a->lock);
        sample(a, routes, now);
        pthread_mutex_unlock(&a->lock);
        json_decref(routes);
    }
    if (n == 0 || a->app->core.sse == NULL)
        return;
    json_t *snap = snapshot(a);
    if (snap == NULL)
        return;
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < a->nclients;) {
        int rc = dk_sse_send(a->app->core.sse, a->clients[i], "snapshot", snap, NULL);
        if (rc == DK_ENOTFOUND || rc == DK_ESTATE) {
            memmove(a->clients[i], a->clients[i + 1],
                    (a->nclients - i - 1) * sizeof(a->clients[0]));
            a->nclients--;
        } else {
            i++;
        }
    }
    pthread_mutex_unlock(&a->lock);
    json_decref(snap);
}

static void timer_start(void *arg)
{
    admin *a = arg;
    a->timer = malloc(sizeof(*a->timer));
    if (a->timer == NULL)
        return;
    uv_timer_init(dk_loop_uv(a->app->core.loop), a->timer);
    a->timer->data = a;
    uv_timer_start(a->timer, on_tick, 0, a->interval);
}

static void timer_closed(uv_handle_t *h) { free(h); }

static void timer_stop(void *arg)
{
    admin *a = arg;
    if (a->timer != NULL) {
        uv_timer_stop(a->timer);
        uv_close((uv_handle_t *)a->timer, timer_closed);
        a->timer = NULL;
    }
}

/* ---- routes ---- */

static int r_overview(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    (void)in;
    admin *a = user;
    *out = snapshot(a);
    if (*out == NULL)
        return DK_ENOMEM;
    json_object_set_new(*out, "role", json_string(is_admin(ctx) ? "admin" : "viewer"));
    return 0;
}

static int r_whoami(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    (void)in;
    (void)user;
    *out = json_pack("{s:s}", "role", is_admin(ctx) ? "admin" : "viewer");
    return *out ? 0 : DK_ENOMEM;
}

static int jobs_rc(dk_ctx *ctx, int rc)
{
    if (rc == DK_ENOTFOUND)
        return dk_fail(ctx, 404, "No such job");
    if (rc == DK_ESTATE)
        return dk_fail(ctx, 409, "The job is not in a state that allows this");
    return dk_fail_internal(ctx, "jobs: %s", dk_strerror(rc));
}

static int r_jobs_list(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    admin *a = user;
    if (a->app->core.jobs == NULL)
        return dk_fail(ctx, 404, "No jobs service");
    json_t *st = json_object_get(in, "status");
    json_int_t limit = json_integer_value(json_object_get(in, "limit"));
    json_t *list = NULL;
    int rc = dk__jobs_list_recent(a->app->core.jobs, json_string_value(st),
                                  (size_t)(limit > 0 ? limit : 50), &list);
    if (rc < 0)
        return jobs_rc(ctx, rc);
    *out = json_pack("{s:o}", "jobs", list);
    return *out ? 0 : DK_ENOMEM;
}

static int r_jobs_get(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    admin *a = user;
    if (a->app->core.jobs == NULL)
        return dk_fail(ctx, 404, "No jobs service");
    json_t *job = NULL;
    json_int_t id = json_integer_value(json_object_get(in, "id"));
    int rc = dk_jobs_get(a->app->core.jobs, id, &job);
    if (rc < 0)
        return jobs_rc(ctx, rc);
    /* Its history: the job.completed / job.failed events still in the
     * events service's history (one per finished attempt). */
    json_t *history = json_array(), *all = NULL;
    if (a->app->core.events != NULL &&
        dk_events_history(a->app->core.events, "job.*", DK_EVENTS_LIMIT_DEFAULT, &all) == 0) {
        size_t i;
        json_t *e;
        json_array_foreach(all, i, e)
        {
            const char *name = json_string_value(json_object_get(e, "event"));
            json_t *d = json_object_get(e, "data");
            if (name == NULL || (strcmp(name, "job.completed") && strcmp(name, "job.failed")) ||
                json_integer_value(json_object_get(d, "jobId")) != id)
                continue;
            json_t *h =
                json_pack("{s:s, s:O}", "event", name + 4, "at", json_object_get(e, "timestamp"));
            if (json_object_get(d, "error"))
                json_object_set(h, "error", json_object_get(d, "error"));
            if (json_object_get(d, "attempts"))
                json_object_set(h, "attempt", json_object_get(d, "attempts"));
            json_array_append_new(history, h);
        }
    }
    json_decref(all);
    *out = json_pack("{s:o, s:o}", "job", job, "history", history);
    return *out ? 0 : DK_ENOMEM;
}

static int r_jobs_act(dk_ctx *ctx, const json_t *in, json_t **out, void *user,
                      int (*fn)(dk_jobs *, int64_t))
{
    admin *a = user;
    if (!is_admin(ctx))
        return dk_fail(ctx, 403, "Read-only access: this action needs the admin role");
    if (a->app->core.jobs == NULL)
        return dk_fail(ctx, 404, "No jobs service");
    int64_t id = json_integer_value(json_object_get(in, "id"));
    int rc = fn(a->app->core.jobs, id);
    if (rc < 0)
        return jobs_rc(ctx, rc);
    dk_log(dk_ctx_log(ctx), DK_LOG_INFO, "admin: job action",
           json_pack("{s:s, s:I}", "action", dk_ctx_route(ctx), "jobId", (json_int_t)id));
    *out = json_pack("{s:b}", "ok", 1);
    return 0;
}

static int r_jobs_retry(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    return r_jobs_act(ctx, in, out, user, dk_jobs_retry);
}

static int r_jobs_cancel(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    return r_jobs_act(ctx, in, out, user, dk_jobs_cancel);
}

static int r_jobs_delete(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    return r_jobs_act(ctx, in, out, user, dk_jobs_delete);
}

static int r_cron_run(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    admin *a = user;
    if (!is_admin(ctx))
        return dk_fail(ctx, 403, "Read-only access: this action needs the admin role");
    if (a->app->core.cron == NULL)
        return dk_fail(ctx, 404, "No cron service");
    const char *id = json_string_value(json_object_get(in, "id"));
    int rc = dk_cron_trigger(a->app->core.cron, id, NULL);
    if (rc == DK_ENOTFOUND)
        return dk_fail(ctx, 404, "No such cron task");
    if (rc == DK_EBUSY)
        return dk_fail(ctx, 409, "The task is running");
    if (rc < 0)
        return dk_fail_internal(ctx, "cron: %s", dk_strerror(rc));
    dk_log(dk_ctx_log(ctx), DK_LOG_INFO, "admin: cron task run now",
           json_pack("{s:s}", "task", id));
    *out = json_pack("{s:b}", "ok", 1);
    return 0;
}

static int r_live(dk_ctx *ctx, dk_request *req, dk_response *res, void *user)
{
    admin *a = user;
    if (a->app->core.sse == NULL)
        return dk_fail(ctx, 503, "No SSE service");
    const char *ch[] = {LIVE_CHANNEL};
    char id[DK_SSE_ID_LEN];
    int rc = dk_sse_accept(a->app->core.sse, ctx, req, res, ch, 1, id);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&a->lock);
    if (a->nclients == a->ccap) {
        size_t cap = a->ccap ? a->ccap * 2 : 8;
        void *n = realloc(a->clients, cap * sizeof(a->clients[0]));
        if (n != NULL) {
            a->clients = n;
            a->ccap = cap;
        }
    }
    if (a->nclients < a->ccap)
        memcpy(a->clients[a->nclients++], id, DK_SSE_ID_LEN);
    pthread_mutex_unlock(&a->lock);
    return 0;
}

/* ---- the page ---- */

bool dk__admin_page(dk_app *app, dk_ctx *ctx, dk_request *req, dk_response *res)
{
    admin *a = app->admin;
    if (a == NULL)
        return false;
    size_t n = strlen(a->path);
    if (strncmp(req->path, "/admin.", 7) == 0) {
        /* No such admin.* route: 401 to strangers (nothing to learn about
         * which exist), the usual 404 to the authorised. */
        if (who(a, ctx, req) != DK_ADMIN_DENY)
            return false;
        unauthorized(ctx, res);
        dk__render_failure(ctx, res, DK_EHTTP);
        return true;
    }
    if (strncmp(req->path, a->path, n) != 0 || (req->path[n] != '\0' && strcmp(req->path + n, "/")))
        return false;
    bool ok = who(a, ctx, req) != DK_ADMIN_DENY;
    if (!ok && strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        unauthorized(ctx, res);
        dk__render_failure(ctx, res, DK_EHTTP);
        return true;
    }
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        dk_fail(ctx, 405, NULL);
        dk__render_failure(ctx, res, DK_EHTTP);
        dk_response_set_header(res, "Allow", "GET, HEAD");
        return true;
    }
    /* Without credentials the page still comes (status 401): it asks for the
     * token and sends it with every call of its own. */
    res->status = ok ? 200 : 401;
    if (!ok)
        dk_response_set_header(res, "WWW-Authenticate", "Bearer realm=\"donkey admin\"");
    dk_response_set_header(res, "Content-Type", "text/html; charset=utf-8");
    dk_response_set_header(res, "Cache-Control", "no-store");
    dk_response_set_header(res, "Content-Security-Policy",
                           "default-src 'self'; script-src 'unsafe-inline'; style-src "
                           "'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'");
    dk_response_set_header(res, "X-Content-Type-Options", "nosniff");
    dk_response_set_header(res, "Referrer-Policy", "no-referrer");
    dk_response_set_body(res, dk__admin_page_html, dk__admin_page_html_len);
    return true;
}

/* ---- installation ---- */

static int admin_init(dk_plugin_ctx *p, void *service, dk_err *err)
{
    (void)err;
    admin *a = dk_app_service(dk_plugin_app(p), "donkey.admin");
    (void)service;
    if (a == NULL)
        return 0;
    a->nroutes = a->app->table.n + 1;
    a->samples = calloc(SAMPLES * a->nroutes, sizeof(uint64_t));
    a->errors = calloc(SAMPLES * a->nroutes, sizeof(uint64_t));
    if (a->samples == NULL || a->errors == NULL)
        return DK_ENOMEM;
    return dk_loop_call(a->app->core.loop, timer_start, a);
}

static void admin_teardown(dk_plugin_ctx *p, void *service)
{
    admin *a = service;
    (void)p;
    if (a != NULL)
        dk_loop_call(a->app->core.loop, timer_stop, a);
}

static int admin_create(dk_plugin_ctx *p, void **out, dk_err *err)
{
    (void)err;
    *out = dk_plugin_app(p)->admin;
    return 0;
}

static void admin_destroy(dk_plugin_ctx *p, void *service)
{
    admin *a = service;
    (void)p;
    if (a == NULL)
        return;
    a->app->admin = NULL;
    free(a->path);
    free(a->token);
    free(a->clients);
    free(a->samples);
    free(a->errors);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

void dk__admin_free(dk_app *app)
{
    /* Installed but never started (--routes-json, a failed start). */
    if (app->admin != NULL)
        admin_destroy(NULL, app->admin);
}

static const dk_plugin admin_plugin = {
    .name = "donkey.admin",
    .version = "1",
    .create = admin_create,
    .destroy = admin_destroy,
    .init = admin_init,
    .teardown = admin_teardown,
};

#define OBJ "{\"type\":\"object\"}"
#define ID_IN                                                                                      \
    "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\",\"minimum\":1}},"           \
    "\"required\":[\"id\"],\"additionalProperties\":false}"
#define OK_OUT                                                                                     \
    "{\"type\":\"object\",\"properties\":{\"ok\":{\"type\":\"boolean\"}},"                         \
    "\"required\":[\"ok\"]}"

int dk_app_use_admin(dk_app *app, const dk_admin_options *o)
{
    if (app == NULL || o == NULL || ((o->token == NULL || !*o->token) && o->auth == NULL))
        return DK_EINVAL;
    if (app->admin != NULL)
        return DK_EEXIST;
    const char *path = o->path && *o->path ? o->path : "/_donkey";
    if (path[0] != '/' || path[1] == '\0')
        return DK_EINVAL;
    admin *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return DK_ENOMEM;
    a->app = app;
    a->path = strdup(path);
    a->token = o->token && *o->token ? strdup(o->token) : NULL;
    a->auth = o->auth;
    a->auth_user = o->auth_user;
    a->interval = o->live_interval_ms ? o->live_interval_ms : 1000;
    pthread_mutex_init(&a->lock, NULL);
    if (a->path == NULL || (o->token && *o->token && a->token == NULL)) {
        admin_destroy(NULL, a);
        return DK_ENOMEM;
    }
    app->admin = a;
    int rc = dk_app_add_middleware(app, "donkey.admin.auth", auth_mw, a);
    dk_router *r = rc == 0 ? dk_router_new("admin") : NULL;
    if (r == NULL) {
        app->admin = NULL;
        admin_destroy(NULL, a);
        return rc < 0 ? rc : DK_ENOMEM;
    }
    rc |= dk_router_use(r, "donkey.admin.auth", NULL);
    rc |= dk_route_typed(r, "overview", OBJ, OBJ, r_overview, a);
    rc |= dk_route_typed(r, "whoami", OBJ,
                         "{\"type\":\"object\",\"properties\":{\"role\":{\"enum\":[\"admin\","
                         "\"viewer\"]}},\"required\":[\"role\"]}",
                         r_whoami, a);
    rc |= dk_route_typed(r, "jobs.list",
                         "{\"type\":\"object\",\"properties\":{\"status\":{\"enum\":[\"pending\","
                         "\"scheduled\",\"running\",\"completed\",\"failed\",\"cancelled\"]},"
                         "\"limit\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":500}},"
                         "\"additionalProperties\":false}",
                         "{\"type\":\"object\",\"properties\":{\"jobs\":{\"type\":\"array\"}},"
                         "\"required\":[\"jobs\"]}",
                         r_jobs_list, a);
    rc |= dk_route_typed(r, "jobs.get", ID_IN,
                         "{\"type\":\"object\",\"properties\":{\"job\":{\"type\":\"object\"},"
                         "\"history\":{\"type\":\"array\"}},\"required\":[\"job\",\"history\"]}",
                         r_jobs_get, a);
    rc |= dk_route_typed(r, "jobs.retry", ID_IN, OK_OUT, r_jobs_retry, a);
    rc |= dk_route_typed(r, "jobs.cancel", ID_IN, OK_OUT, r_jobs_cancel, a);
    rc |= dk_route_typed(r, "jobs.delete", ID_IN, OK_OUT, r_jobs_delete, a);
    rc |= dk_route_typed(r, "cron.run",
                         "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\","
                         "\"minLength\":1}},\"required\":[\"id\"],\"additionalProperties\":false}",
                         OK_OUT, r_cron_run, a);
    rc |= dk_route_raw(r, "live", DK_METHOD_GET, r_live, a);
    dk_route_doc d = {.summary = "Operations page data: the whole snapshot"};
    rc |= dk_route_document(r, "overview", &d);
    d = (dk_route_doc){.summary = "The caller's role on the operations page"};
    rc |= dk_route_document(r, "whoami", &d);
    d = (dk_route_doc){.summary = "Latest jobs, newest first (optionally by status)"};
    rc |= dk_route_document(r, "jobs.list", &d);
    d = (dk_route_doc){.summary = "One job with its payload, result and error"};
    rc |= dk_route_document(r, "jobs.get", &d);
    d = (dk_route_doc){.summary = "Run a failed, cancelled or scheduled job again now (admin)"};
    rc |= dk_route_document(r, "jobs.retry", &d);
    d = (dk_route_doc){.summary = "Cancel a pending or scheduled job (admin)"};
    rc |= dk_route_document(r, "jobs.cancel", &d);
    d = (dk_route_doc){.summary = "Delete a job that is not running (admin)"};
    rc |= dk_route_document(r, "jobs.delete", &d);
    d = (dk_route_doc){.summary = "Run a cron task now (admin)"};
    rc |= dk_route_document(r, "cron.run", &d);
    d = (dk_route_doc){.summary = "Snapshots of the operations page, one a second", .sse = true};
    rc |= dk_route_document(r, "live", &d);
    rc |= dk_app_use(app, r);
    rc |= dk_app_add_plugin(app, &admin_plugin, NULL);
    return rc < 0 ? DK_EINVAL : 0;
}
