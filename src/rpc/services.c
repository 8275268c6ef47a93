/* Wiring of the core services into the application's life cycle.
 *
 * Created with the app (not started): loop, cache, events, rate limiter,
 * cron, jobs, SSE. Start: plugins (database, migrations, services, init
 * hooks), then cron and jobs. Quiesce at shutdown: housekeeping, cron, jobs
 * (grace period), SSE. Free in reverse dependency order, the loop last.
 *
 * Back ends are chosen by URL: with a Redis URL (--redis, DONKEY_REDIS_URL,
 * dk_app_options.redis_url) cache, rate limiter, events, SSE and cron claims
 * use Redis (src/adapters/redis_*.c); with a PostgreSQL database the job
 * queue runs in shared mode (leases, SKIP LOCKED claims) and a LISTEN
 * connection wakes it on NOTIFY (src/adapters/pg_notify.c). Otherwise
 * everything stays in memory / SQLite as for a single instance. */
#include <uv.h>

#include "../adapters/pg_notify.h"
#include "../adapters/redis.h"
#include "../internal.h"
#include "donkey/cache.h"
#include "donkey/cron.h"
#include "donkey/db.h"
#include "donkey/events.h"
#include "donkey/jobs.h"
#include "donkey/loop.h"
#include "donkey/ratelimit.h"
#include "donkey/sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Periodic housekeeping on the service loop (reclaim expired cache entries),
 * and the shared-state clients behind the back ends. */
typedef struct housekeeping {
    uv_timer_t timer;
    dk_app *app;
    char instance[96];          /* this process in the cluster: host-pid-random */
    dk__redis *redis;           /* NULL: in-memory services */
    dk_events_backend events_be; /* copies, to start their readers */
    dk_sse_backend sse_be;
    dk__pg_listener *listener;  /* jobs wake-up on PostgreSQL NOTIFY */
    bool pg;                    /* the database URL is PostgreSQL */
    char error[300];            /* configuration problem reported by start */
} housekeeping;

static housekeeping *hk_of(dk_app *app)
{
    return (housekeeping *)app->housekeeping;
}

static void on_housekeeping(uv_timer_t *t)
{
    housekeeping *hk = t->data;
    dk_cache_sweep(hk->app->core.cache);
}

static void start_housekeeping(void *arg)
{
    dk_app *app = arg;
    housekeeping *hk = hk_of(app);
    uv_timer_init(dk_loop_uv(app->core.loop), &hk->timer);
    hk->timer.data = hk;
    uv_timer_start(&hk->timer, on_housekeeping, 10000, 10000);
}

static void stop_housekeeping(void *arg)
{
    housekeeping *hk = hk_of(arg);
    if (uv_is_active((uv_handle_t *)&hk->timer))
        uv_timer_stop(&hk->timer);
}

static uint64_t env_ms(const char *name, uint64_t def)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        return def;
    uint64_t ms;
    return dk_duration_parse(v, &ms, NULL) == 0 ? ms : def;
}

static uint64_t env_num(const char *name, uint64_t def)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        return def;
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    return *end == '\0' ? (uint64_t)n : def;
}

static void make_instance_id(char *out, size_t len)
{
    char host[64] = "host";
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    char uuid[37];
    dk_uuid_v4(uuid);
    snprintf(out, len, "%s-%ld-%.8s", host, (long)getpid(), uuid);
}

static bool is_postgres_url(const char *url)
{
    return url != NULL &&
           (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0);
}

int dk__services_new(dk_app *app)
{
    dk_core *c = &app->core;
    c->loop = dk_loop_new();
    if (c->loop == NULL)
        return DK_ENOMEM;
    app->housekeeping = calloc(1, sizeof(housekeeping));
    if (app->housekeeping == NULL)
        return DK_ENOMEM;
    housekeeping *hk = hk_of(app);
    hk->app = app;
    make_instance_id(hk->instance, sizeof(hk->instance));
    hk->pg = is_postgres_url(app->db_url);

    if (app->redis_url != NULL && app->redis_url[0] != '\0') {
        dk_err err = {0};
        if (dk__redis_new(app->redis_url, hk->instance, c->loop, c->logger, &hk->redis, &err) < 0)
            snprintf(hk->error, sizeof(hk->error), "%s", err.message);
    }
    dk__redis *rd = hk->redis;
    int rc = 0;

    dk_cache_options co;
    dk_cache_options_init(&co);
    if (rd != NULL) {
        dk_cache_backend cb;
        rc = dk__redis_cache_backend(rd, &cb);
        c->cache = rc == 0 ? dk_cache_new_with_backend(&co, &cb) : NULL;
    } else {
        c->cache = dk_cache_new(&co);
    }

    dk_events_options eo;
    dk_events_options_init(&eo);
    eo.logger = c->logger;
    eo.loop = c->loop;
    if (rd != NULL && dk__redis_events_backend(rd, &c->events, eo.history_size,
                                               &hk->events_be) == 0)
        eo.backend = &hk->events_be;
    c->events = rd == NULL || eo.backend != NULL ? dk_events_new(&eo) : NULL;

    dk_ratelimit_options ro;
    dk_ratelimit_options_init(&ro);
    if (rd != NULL) {
        dk_ratelimit_backend rb;
        rc = dk__redis_ratelimit_backend(rd, &rb);
        c->ratelimit = rc == 0 ? dk_ratelimit_new_with_backend(&ro, &rb) : NULL;
    } else {
        c->ratelimit = dk_ratelimit_new(&ro);
    }

    dk_cron_options cro;
    dk_cron_options_init(&cro);
    cro.loop = c->loop;
    cro.logger = c->logger;
    if (rd != NULL) {
        dk_cron_backend crb;
        rc = dk__redis_cron_backend(rd, &crb);
        c->cron = rc == 0 ? dk_cron_new_with_backend(&cro, &crb) : NULL;
    } else {
        c->cron = dk_cron_new(&cro);
    }

    dk_jobs_options jo;
    dk_jobs_options_init(&jo);
    jo.core = c; /* database, events and logger are read from the core */
    jo.instance_id = hk->instance;
    /* Several instances may share a PostgreSQL queue: claim with leases and
     * only take back the running jobs whose lease expired. */
    jo.shared = hk->pg;
    jo.lease_ms = env_ms("DK_JOBS_LEASE_MS", jo.lease_ms);
    jo.poll_interval_ms = env_ms("DK_JOBS_POLL_MS", jo.poll_interval_ms);
    c->jobs = dk_jobs_new(&jo);

    dk_sse_options so;
    dk_sse_options_init(&so);
    so.loop = c->loop;
    so.logger = c->logger;
    /* Environment overrides (used by tests and for tuning without a rebuild). */
    so.heartbeat_ms = env_ms("DK_SSE_HEARTBEAT_MS", so.heartbeat_ms);
    so.send_limit = (size_t)env_num("DK_SSE_SEND_LIMIT", so.send_limit);
    so.max_clients = (size_t)env_num("DK_SSE_MAX_CLIENTS", so.max_clients);
    so.max_clients_per_channel = (size_t)env_num("DK_SSE_MAX_PER_CHANNEL",
                                                 so.max_clients_per_channel);
    so.max_per_identity = (size_t)env_num("DK_SSE_MAX_PER_IDENTITY", so.max_per_identity);
    so.replay_max_bytes = (size_t)env_num("DK_SSE_REPLAY_MAX_BYTES", so.replay_max_bytes);
    so.replay_max_total_bytes = (size_t)env_num("DK_SSE_REPLAY_TOTAL_BYTES",
                                                so.replay_max_total_bytes);
    so.replay_idle_channels = env_num("DK_SSE_REPLAY_IDLE_CHANNELS", 0) != 0;
    if (rd != NULL &&
        dk__redis_sse_backend(rd, &c->sse, (size_t)env_num("DK_SSE_STREAM_MAX", 10000),
                              so.replay_max_age_ms, &hk->sse_be) == 0) {
        so.backend = &hk->sse_be;
        /* Scale-out: a client may resume on any instance, so every instance
         * keeps a window for every channel (still bounded by the byte caps),
         * unless DK_SSE_REPLAY_IDLE_CHANNELS=0 says otherwise. */
        so.replay_idle_channels = env_num("DK_SSE_REPLAY_IDLE_CHANNELS", 1) != 0;
    }
    c->sse = rd == NULL || so.backend != NULL ? dk_sse_new(&so) : NULL;

    if (c->cache == NULL || c->events == NULL || c->ratelimit == NULL || c->cron == NULL ||
        c->jobs == NULL || c->sse == NULL)
        return DK_ENOMEM;
    /* The built-in middleware: names are resolved at start-up like any other. */
    return dk_app_add_middleware(app, "rateLimit", dk_ratelimit_middleware, c->ratelimit);
}

static void wake_jobs(void *user)
{
    dk_jobs_wake(user);
}

int dk__app_prepare(dk_app *app, dk_err *err)
{
    int rc = dk__plugins_prepare(app, err);
    if (rc < 0)
        return rc;
    return dk__routes_build(app, err);
}

int dk__services_start(dk_app *app, dk_err *err)
{
    dk_core *c = &app->core;
    housekeeping *hk = hk_of(app);
    if (hk->error[0] != '\0')
        return dk_err_set(err, DK_EINVAL, "%s", hk->error);
    int rc = dk__plugins_start(app, err);
    if (rc < 0)
        return rc;
    rc = dk_jobs_start(c->jobs, err);
    if (rc < 0)
        return rc;
    rc = dk_cron_start(c->cron);
    if (rc < 0)
        return dk_err_set(err, rc, "cron: cannot start: %s", dk_strerror(rc));
    dk_loop_call(c->loop, start_housekeeping, app);

    bool pg = strcmp(dk_db_engine(c->db), "postgres") == 0;
    if (pg && hk->pg && hk->listener == NULL) {
        hk->listener = dk__pg_listen_start(app->db_url, "donkey_jobs", wake_jobs, c->jobs,
                                           c->logger);
        if (hk->listener == NULL)
            return dk_err_set(err, DK_ENOMEM, "jobs: cannot start the PostgreSQL listener");
    }
    const char *shared = hk->redis != NULL ? "redis" : "memory";
    if (hk->redis != NULL) {
        if (dk__redis_events_start(hk->redis, &hk->events_be) < 0 ||
            dk__redis_sse_start(hk->redis, &hk->sse_be) < 0)
            return dk_err_set(err, DK_ENOMEM, "redis: cannot start the readers");
        /* Not fatal: requests that need Redis answer 503 until it is reachable. */
        if (dk__redis_ping(hk->redis) < 0)
            dk_logf(c->logger, DK_LOG_WARN, "[Redis] %s is not reachable yet; retrying",
                    dk__redis_describe(hk->redis));
    }
    json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "database",
                          dk_db_engine(c->db), "cache", shared, "events", shared, "rateLimit",
                          shared, "sse", shared, "cron", shared,
                          "jobs", pg ? (hk->pg ? "postgres (shared, LISTEN/NOTIFY)" : "postgres")
                                     : dk_db_engine(c->db),
                          "instance", hk->instance);
    if (d != NULL && hk->redis != NULL)
        json_object_set_new(d, "redis", json_string(dk__redis_describe(hk->redis)));
    dk_log(c->logger, DK_LOG_INFO, "Background services started (cron, jobs)", d);
    return 0;
}

void dk__services_quiesce(dk_app *app, uint64_t deadline_ms)
{
    dk_core *c = &app->core;
    if (c->loop && app->housekeeping)
        dk_loop_call(c->loop, stop_housekeeping, app);
    uint64_t now = dk_now_ms();
    int64_t left = deadline_ms > now ? (int64_t)(deadline_ms - now) : 0;
    if (c->cron)
        dk_cron_stop(c->cron, left);
    now = dk_now_ms();
    left = deadline_ms > now ? (int64_t)(deadline_ms - now) : 0;
    if (c->jobs)
        dk_jobs_stop(c->jobs, left);
    if (c->sse)
        dk_sse_shutdown(c->sse);
    housekeeping *hk = hk_of(app);
    if (hk != NULL) {
        dk__pg_listen_stop(hk->listener);
        hk->listener = NULL;
        /* No remote event or broadcast is delivered from here on. */
        dk__redis_stop_readers(hk->redis);
    }
}

void dk__services_stop(dk_app *app)
{
    dk__plugins_stop(app);
}

void dk__services_free(dk_app *app)
{
    dk_core *c = &app->core;
    housekeeping *hk = hk_of(app);
    if (hk != NULL) {
        dk__pg_listen_stop(hk->listener);
        hk->listener = NULL;
        dk__redis_stop_readers(hk->redis);
    }
    /* Jobs first: their handlers use the database the plugin manager closes. */
    dk_jobs_free(c->jobs);
    c->jobs = NULL;
    dk_cron_free(c->cron);
    c->cron = NULL;
    dk__plugins_free(app);
    /* SSE after the HTTP server stopped (dk__server_free ran before). */
    dk_sse_free(c->sse);
    c->sse = NULL;
    dk_ratelimit_free(c->ratelimit);
    c->ratelimit = NULL;
    /* The bus goes before the loop: queued async deliveries are skipped. */
    dk_events_free(c->events);
    c->events = NULL;
    dk_cache_free(c->cache);
    c->cache = NULL;
    if (hk != NULL) {
        dk__redis_free(hk->redis); /* after every back end that uses it */
        hk->redis = NULL;
    }
    dk_loop_free(c->loop);
    c->loop = NULL;
    free(app->housekeeping);
    app->housekeeping = NULL;
}

int dk__services_ready(dk_app *app, json_t *checks)
{
    int rc = 0;
    if (app->core.db == NULL || dk_db_ping(app->core.db) < 0) {
        json_object_set_new(checks, "database", json_string("unreachable"));
        rc = DK_EUNAVAILABLE;
    } else {
        json_object_set_new(checks, "database", json_string("ok"));
    }
    housekeeping *hk = hk_of(app);
    if (hk != NULL && hk->redis != NULL) {
        if (dk__redis_ping(hk->redis) < 0) {
            json_object_set_new(checks, "redis", json_string("unreachable"));
            rc = DK_EUNAVAILABLE;
        } else {
            json_object_set_new(checks, "redis", json_string("ok"));
        }
    }
    return rc;
}
