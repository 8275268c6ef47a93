/* The application's life cycle: one table of services, walked forward to
 * create (dk_app_new) and start (dk_app_start), backward to quiesce, stop
 * (dk_app_wait, or a failed start) and free (dk_app_free). The app records
 * how many entries it created and started, so a start that fails at entry i
 * undoes exactly entries i-1 .. 0 and nothing is left running (app.h).
 *
 *   entry         create              start                  quiesce / stop          free
 *   loop          service thread      -                      -                       loop, state
 *   redis         state, client       readers                readers stopped         client
 *   cache         cache               -                      -                       cache
 *   events        bus                 -                      -                       bus
 *   rateLimit     limiter, mw         -                      -                       limiter
 *   sse           registry            -                      shutdown                registry
 *   database      -                   open (app owns it)     -                       close
 *   plugins       -                   migrations, init       - / teardown            manager
 *   jobs          queue               workers, PG listener   stop (grace) + listener queue
 *   cron          scheduler           timers                 stop (grace)            scheduler
 *   housekeeping  -                   sweep timer, log line  timer stopped           -
 *   exec          -                   I/O and worker pools   - / pools stopped       -
 *   signals       -                   SIGINT/SIGTERM handler - / default if failed   -
 *   server        -                   HTTP threads           stop accepting, close   -
 *                                                            SSE / drain, hooks, free
 *
 * Back ends are chosen by URL: with a Redis URL (--redis, DONKEY_REDIS_URL,
 * dk_app_options.redis_url) cache, rate limiter, events, SSE and cron claims
 * use Redis (src/adapters/redis_*.c); with a PostgreSQL database the job
 * queue runs in shared mode (leases, SKIP LOCKED claims) and a LISTEN
 * connection wakes it on NOTIFY (src/adapters/pg_notify.c). Otherwise
 * everything stays in memory / SQLite as for a single instance. */
#include <uv.h>

#include "adapters/pg_notify.h"
#include "adapters/redis.h"
#include "db/internal.h"
#include "internal.h"
#include "donkey/admin.h"
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

/* State of the services beside dk_core: the shared-state clients behind the
 * back ends and the housekeeping timer on the service thread. */
struct dk__services {
    uv_timer_t timer;
    dk_app *app;
    char instance[96];           /* this process in the cluster: host-pid-random */
    dk__redis *redis;            /* NULL: in-memory services */
    dk_events_backend events_be; /* copies, to start their readers */
    dk_sse_backend sse_be;
    bool readers;              /* the Redis readers were started */
    dk__pg_listener *listener; /* jobs wake-up on PostgreSQL NOTIFY */
    bool pg;                   /* the database URL is PostgreSQL */
    char error[300];           /* configuration problem reported by start */
};

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

/* ---- loop ---- */

static int loop_create(dk_app *app, dk_err *err)
{
    app->core.loop = dk_loop_new();
    if (app->core.loop == NULL)
        return dk_err_set(err, DK_ENOMEM, "cannot start the service thread");
    return 0;
}

static void loop_free(dk_app *app)
{
    dk_loop_free(app->core.loop);
    app->core.loop = NULL;
    /* After the loop: it holds the housekeeping timer until it closes. */
    free(app->services);
    app->services = NULL;
}

/* ---- redis (and the services' own state) ---- */

static int redis_create(dk_app *app, dk_err *err)
{
    dk__services *sv = calloc(1, sizeof(*sv)); /* freed with the loop */
    if (sv == NULL)
        return dk_err_set(err, DK_ENOMEM, "out of memory");
    app->services = sv;
    sv->app = app;
    make_instance_id(sv->instance, sizeof(sv->instance));
    sv->pg = is_postgres_url(app->db_url);
    if (app->redis_url != NULL && app->redis_url[0] != '\0') {
        dk_err e = {0};
        /* A bad URL is a configuration error that dk_app_start() reports. */
        int rc = dk__redis_new(app->redis_url, sv->instance, app->core.loop, app->core.logger,
                               &sv->redis, &e);
        if (rc == DK_ENOMEM)
            return dk_err_set(err, rc, "out of memory");
        if (rc < 0)
            snprintf(sv->error, sizeof(sv->error), "%s", e.message);
    }
    return 0;
}

static int redis_start(dk_app *app, dk_err *err)
{
    dk__services *sv = app->services;
    if (sv->error[0] != '\0')
        return dk_err_set(err, DK_EINVAL, "%s", sv->error);
    if (sv->redis == NULL)
        return 0;
    sv->readers = true; /* stopped as a whole, also when only one started */
    if (dk__redis_events_start(sv->redis, &sv->events_be) < 0 ||
        dk__redis_sse_start(sv->redis, &sv->sse_be) < 0) {
        dk__redis_stop_readers(sv->redis);
        sv->readers = false;
        return dk_err_set(err, DK_ENOMEM, "redis: cannot start the readers");
    }
    /* Not fatal: requests that need Redis answer 503 until it is reachable. */
    if (dk__redis_ping(sv->redis) < 0)
        dk_logf(app->core.logger, DK_LOG_WARN, "[Redis] %s is not reachable yet; retrying",
                dk__redis_describe(sv->redis));
    return 0;
}

static void redis_quiesce(dk_app *app, uint64_t deadline_ms)
{
    dk__services *sv = app->services;
    /* No remote event or broadcast is delivered from here on. */
    if (sv->readers)
        dk__redis_stop_readers(sv->redis);
    sv->readers = false;
}

static void redis_free(dk_app *app)
{
    dk__services *sv = app->services;
    if (sv == NULL)
        return;
    dk__redis_free(sv->redis); /* after every back end that uses it */
    sv->redis = NULL;
}

/* ---- cache, events, rate limiter, SSE ---- */

static int cache_create(dk_app *app, dk_err *err)
{
    dk__redis *rd = app->services->redis;
    dk_cache_options co;
    dk_cache_options_init(&co);
    if (rd != NULL) {
        dk_cache_backend cb;
        int rc = dk__redis_cache_backend(rd, &cb);
        if (rc < 0)
            return dk_err_set(err, rc, "cache: %s", dk_strerror(rc));
        app->core.cache = dk_cache_new_with_backend(&co, &cb);
    } else {
        app->core.cache = dk_cache_new(&co);
    }
    return app->core.cache != NULL ? 0 : dk_err_set(err, DK_ENOMEM, "out of memory");
}

static void cache_free(dk_app *app)
{
    dk_cache_free(app->core.cache);
    app->core.cache = NULL;
}

static int events_create(dk_app *app, dk_err *err)
{
    dk__services *sv = app->services;
    dk_core *c = &app->core;
    dk_events_options eo;
    dk_events_options_init(&eo);
    eo.logger = c->logger;
    eo.loop = c->loop;
    if (sv->redis != NULL) {
        int rc = dk__redis_events_backend(sv->redis, &c->events, eo.history_size, &sv->events_be);
        if (rc < 0)
            return dk_err_set(err, rc, "events: %s", dk_strerror(rc));
        eo.backend = &sv->events_be;
    }
    c->events = dk_events_new(&eo);
    return c->events != NULL ? 0 : dk_err_set(err, DK_ENOMEM, "out of memory");
}

static void events_free(dk_app *app)
{
    /* The bus goes before the loop: queued async deliveries are skipped. */
    dk_events_free(app->core.events);
    app->core.events = NULL;
}

static int ratelimit_create(dk_app *app, dk_err *err)
{
    dk__redis *rd = app->services->redis;
    dk_ratelimit_options ro;
    dk_ratelimit_options_init(&ro);
    if (rd != NULL) {
        dk_ratelimit_backend rb;
        int rc = dk__redis_ratelimit_backend(rd, &rb);
        if (rc < 0)
            return dk_err_set(err, rc, "rate limiter: %s", dk_strerror(rc));
        app->core.ratelimit = dk_ratelimit_new_with_backend(&ro, &rb);
    } else {
        app->core.ratelimit = dk_ratelimit_new(&ro);
    }
    if (app->core.ratelimit == NULL)
        return dk_err_set(err, DK_ENOMEM, "out of memory");
    /* The built-in middleware: names are resolved at start-up like any other. */
    int rc = dk_app_add_middleware(app, "rateLimit", dk_ratelimit_middleware, app->core.ratelimit);
    return rc < 0 ? dk_err_set(err, rc, "rateLimit middleware: %s", dk_strerror(rc)) : 0;
}

static void ratelimit_free(dk_app *app)
{
    dk_ratelimit_free(app->core.ratelimit);
    app->core.ratelimit = NULL;
}

static int sse_create(dk_app *app, dk_err *err)
{
    dk__services *sv = app->services;
    dk_core *c = &app->core;
    dk_sse_options so;
    dk_sse_options_init(&so);
    so.loop = c->loop;
    so.logger = c->logger;
    /* Environment overrides (used by tests and for tuning without a rebuild). */
    so.heartbeat_ms = env_ms("DK_SSE_HEARTBEAT_MS", so.heartbeat_ms);
    so.send_limit = (size_t)env_num("DK_SSE_SEND_LIMIT", so.send_limit);
    so.max_clients = (size_t)env_num("DK_SSE_MAX_CLIENTS", so.max_clients);
    so.max_clients_per_channel =
        (size_t)env_num("DK_SSE_MAX_PER_CHANNEL", so.max_clients_per_channel);
    so.max_per_identity = (size_t)env_num("DK_SSE_MAX_PER_IDENTITY", so.max_per_identity);
    so.replay_max_bytes = (size_t)env_num("DK_SSE_REPLAY_MAX_BYTES", so.replay_max_bytes);
    so.replay_max_total_bytes =
        (size_t)env_num("DK_SSE_REPLAY_TOTAL_BYTES", so.replay_max_total_bytes);
    so.replay_idle_channels = env_num("DK_SSE_REPLAY_IDLE_CHANNELS", 0) != 0;
    if (sv->redis != NULL) {
        int rc =
            dk__redis_sse_backend(sv->redis, &c->sse, (size_t)env_num("DK_SSE_STREAM_MAX", 10000),
                                  so.replay_max_age_ms, &sv->sse_be);
        if (rc < 0)
            return dk_err_set(err, rc, "sse: %s", dk_strerror(rc));
        so.backend = &sv->sse_be;
        /* Scale-out: a client may resume on any instance, so every instance
         * keeps a window for every channel (still bounded by the byte caps),
         * unless DK_SSE_REPLAY_IDLE_CHANNELS=0 says otherwise. */
        so.replay_idle_channels = env_num("DK_SSE_REPLAY_IDLE_CHANNELS", 1) != 0;
    }
    c->sse = dk_sse_new(&so);
    return c->sse != NULL ? 0 : dk_err_set(err, DK_ENOMEM, "out of memory");
}

static void sse_quiesce(dk_app *app, uint64_t deadline_ms) { dk_sse_shutdown(app->core.sse); }

static void sse_free(dk_app *app)
{
    /* After the HTTP server stopped (the server entry is freed first). */
    dk_sse_free(app->core.sse);
    app->core.sse = NULL;
}

/* ---- database: the app opens it and hands it to the plugins ---- */

static int database_start(dk_app *app, dk_err *err)
{
    if (app->core.db != NULL)
        return 0; /* kept from an earlier start (dk_app_start after dk_app_wait) */
    dk_err e = {0};
    app->core.db = dk_db_open(app->db_url, &e);
    if (app->core.db == NULL)
        return dk_err_set(err, e.code < 0 ? e.code : DK_EUNAVAILABLE, "%s",
                          e.message[0] ? e.message : "cannot open the database");
    dk__db_set_pool_size(app->core.db, app->opts.db_pool);
    return 0;
}

static void database_free(dk_app *app)
{
    /* At free, not at stop: the jobs queue and plugin destructors freed
     * before it may still use the database. */
    dk_db_close(app->core.db);
    app->core.db = NULL;
}

/* ---- plugins ---- */

static int plugins_start(dk_app *app, dk_err *err) { return dk__plugins_start(app, err); }

static void plugins_stop(dk_app *app, uint64_t deadline_ms) { dk__plugins_stop(app); }

/* ---- jobs and cron ---- */

static int jobs_create(dk_app *app, dk_err *err)
{
    dk__services *sv = app->services;
    dk_jobs_options jo;
    dk_jobs_options_init(&jo);
    jo.core = &app->core; /* database, events and logger are read from the core */
    jo.instance_id = sv->instance;
    /* Several instances may share a PostgreSQL queue: claim with leases and
     * only take back the running jobs whose lease expired. */
    jo.shared = sv->pg;
    jo.lease_ms = env_ms("DK_JOBS_LEASE_MS", jo.lease_ms);
    jo.poll_interval_ms = env_ms("DK_JOBS_POLL_MS", jo.poll_interval_ms);
    app->core.jobs = dk_jobs_new(&jo);
    return app->core.jobs != NULL ? 0 : dk_err_set(err, DK_ENOMEM, "out of memory");
}

static void wake_jobs(void *user) { dk_jobs_wake(user); }

static int jobs_start(dk_app *app, dk_err *err)
{
    dk__services *sv = app->services;
    dk_core *c = &app->core;
    int rc = dk_jobs_start(c->jobs, err);
    if (rc < 0)
        return rc;
    bool pg = strcmp(dk_db_engine(c->db), "postgres") == 0;
    if (pg && sv->pg && sv->listener == NULL) {
        sv->listener =
            dk__pg_listen_start(app->db_url, "donkey_jobs", wake_jobs, c->jobs, c->logger);
        if (sv->listener == NULL) {
            dk_jobs_stop(c->jobs, 0);
            return dk_err_set(err, DK_ENOMEM, "jobs: cannot start the PostgreSQL listener");
        }
    }
    return 0;
}

static uint64_t left_ms(uint64_t deadline_ms)
{
    uint64_t now = dk_now_ms();
    return deadline_ms > now ? deadline_ms - now : 0;
}

static void jobs_quiesce(dk_app *app, uint64_t deadline_ms)
{
    dk__services *sv = app->services;
    dk_jobs_stop(app->core.jobs, (int64_t)left_ms(deadline_ms));
    dk__pg_listen_stop(sv->listener);
    sv->listener = NULL;
}

static void jobs_free(dk_app *app)
{
    /* Before the database: job handlers use it. */
    dk_jobs_free(app->core.jobs);
    app->core.jobs = NULL;
}

static int cron_create(dk_app *app, dk_err *err)
{
    dk__redis *rd = app->services->redis;
    dk_cron_options cro;
    dk_cron_options_init(&cro);
    cro.loop = app->core.loop;
    cro.logger = app->core.logger;
    if (rd != NULL) {
        dk_cron_backend crb;
        int rc = dk__redis_cron_backend(rd, &crb);
        if (rc < 0)
            return dk_err_set(err, rc, "cron: %s", dk_strerror(rc));
        app->core.cron = dk_cron_new_with_backend(&cro, &crb);
    } else {
        app->core.cron = dk_cron_new(&cro);
    }
    return app->core.cron != NULL ? 0 : dk_err_set(err, DK_ENOMEM, "out of memory");
}

static int cron_start(dk_app *app, dk_err *err)
{
    int rc = dk_cron_start(app->core.cron);
    return rc < 0 ? dk_err_set(err, rc, "cron: cannot start: %s", dk_strerror(rc)) : 0;
}

static void cron_quiesce(dk_app *app, uint64_t deadline_ms)
{
    dk_cron_stop(app->core.cron, left_ms(deadline_ms));
}

static void cron_free(dk_app *app)
{
    dk_cron_free(app->core.cron);
    app->core.cron = NULL;
}

/* ---- housekeeping: periodic sweeps on the service thread ---- */

static void on_housekeeping(uv_timer_t *t)
{
    dk__services *sv = t->data;
    dk_cache_sweep(sv->app->core.cache);
}

static void start_timer(void *arg)
{
    dk__services *sv = arg;
    uv_timer_init(dk_loop_uv(sv->app->core.loop), &sv->timer);
    sv->timer.data = sv;
    uv_timer_start(&sv->timer, on_housekeeping, 10000, 10000);
}

static void stop_timer(void *arg)
{
    dk__services *sv = arg;
    if (uv_is_active((uv_handle_t *)&sv->timer))
        uv_timer_stop(&sv->timer);
}

static int housekeeping_start(dk_app *app, dk_err *err)
{
    dk__services *sv = app->services;
    dk_core *c = &app->core;
    dk_loop_call(c->loop, start_timer, sv);
    const char *shared = sv->redis != NULL ? "redis" : "memory";
    bool pg = strcmp(dk_db_engine(c->db), "postgres") == 0;
    json_t *d = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "database", dk_db_engine(c->db), "cache",
        shared, "events", shared, "rateLimit", shared, "sse", shared, "cron", shared, "jobs",
        pg ? (sv->pg ? "postgres (shared, LISTEN/NOTIFY)" : "postgres") : dk_db_engine(c->db),
        "instance", sv->instance);
    if (d != NULL && sv->redis != NULL)
        json_object_set_new(d, "redis", json_string(dk__redis_describe(sv->redis)));
    dk_log(c->logger, DK_LOG_INFO, "Background services started (cron, jobs)", d);
    return 0;
}

static void housekeeping_quiesce(dk_app *app, uint64_t deadline_ms)
{
    dk_loop_call(app->core.loop, stop_timer, app->services);
}

/* ---- execution pools and the HTTP server ---- */

static int exec_start(dk_app *app, dk_err *err)
{
    return dk__exec_start(app, err); /* undoes itself on failure */
}

static void exec_stop(dk_app *app, uint64_t deadline_ms) { dk__exec_stop(app); }

static int signals_start(dk_app *app, dk_err *err)
{
    /* Before the first request can arrive: a SIGTERM sent as soon as the
     * port answers starts an orderly shutdown instead of killing the process. */
    dk__app_signals_install(app);
    return 0;
}

static void signals_stop(dk_app *app, uint64_t deadline_ms) { dk__app_signals_undo(app); }

static int server_start(dk_app *app, dk_err *err)
{
    int rc = dk__server_start(app, err);
    if (rc < 0)
        dk__server_free(app);
    return rc;
}

static void server_quiesce(dk_app *app, uint64_t deadline_ms)
{
    dk__server_stop_accepting(app);
    dk__server_close_streams(app);
}

static void server_stop(dk_app *app, uint64_t deadline_ms)
{
    dk__server_drain(app, deadline_ms);
    for (size_t i = app->nhooks; i-- > 0;)
        app->hooks[i].fn(app, app->hooks[i].user);
    dk__server_free(app);
}

static void server_free(dk_app *app) { dk__server_free(app); }

/* ---- the table ---- */

static const dk__service services[] = {
    {"loop", loop_create, NULL, NULL, NULL, loop_free},
    {"redis", redis_create, redis_start, redis_quiesce, NULL, redis_free},
    {"cache", cache_create, NULL, NULL, NULL, cache_free},
    {"events", events_create, NULL, NULL, NULL, events_free},
    {"rateLimit", ratelimit_create, NULL, NULL, NULL, ratelimit_free},
    {"sse", sse_create, NULL, sse_quiesce, NULL, sse_free},
    {"database", NULL, database_start, NULL, NULL, database_free},
    {"plugins", NULL, plugins_start, NULL, plugins_stop, dk__plugins_free},
    {"jobs", jobs_create, jobs_start, jobs_quiesce, NULL, jobs_free},
    {"cron", cron_create, cron_start, cron_quiesce, NULL, cron_free},
    {"housekeeping", NULL, housekeeping_start, housekeeping_quiesce, NULL, NULL},
    {"exec", NULL, exec_start, NULL, exec_stop, NULL},
    {"signals", NULL, signals_start, NULL, signals_stop, NULL},
    {"server", NULL, server_start, server_quiesce, server_stop, server_free},
};

enum { NSERVICES = sizeof(services) / sizeof(services[0]) };

/* Tests: the start of the entry with this name fails (dk__lifecycle_fail_at). */
static const char *fail_at;

void dk__lifecycle_fail_at(const char *name) { fail_at = name; }

size_t dk__lifecycle_index(const char *name)
{
    for (size_t i = 0; i < NSERVICES; i++)
        if (strcmp(services[i].name, name) == 0)
            return i;
    return NSERVICES;
}

const char *dk__lifecycle_name(size_t i) { return i < NSERVICES ? services[i].name : NULL; }

int dk__lifecycle_create(dk_app *app, dk_err *err)
{
    for (size_t i = app->ncreated; i < NSERVICES; i++) {
        if (services[i].create != NULL) {
            dk_err e = {0};
            int rc = services[i].create(app, &e);
            if (rc < 0) {
                /* What the failed create made is released by its own free
                 * (every free takes a half-made entry); dk_app_free() frees
                 * entries 0 .. i-1. */
                if (services[i].free != NULL)
                    services[i].free(app);
                dk_err_set(err, rc, "%s: %s", services[i].name,
                           e.message[0] ? e.message : dk_strerror(rc));
                return rc;
            }
        }
        app->ncreated = i + 1;
    }
    return 0;
}

int dk__lifecycle_start(dk_app *app, const char *until, dk_err *err)
{
    size_t end = until != NULL ? dk__lifecycle_index(until) + 1 : NSERVICES;
    if (end > NSERVICES)
        end = NSERVICES;
    for (size_t i = app->nstarted; i < end; i++) {
        if (fail_at != NULL && strcmp(fail_at, services[i].name) == 0) {
            dk__lifecycle_stop(app, dk_now_ms());
            return dk_err_set(err, DK_EINTERNAL, "%s: start failed (injected)", services[i].name);
        }
        if (services[i].start != NULL) {
            /* A start that fails has undone its own part (STYLE rule 7). */
            int rc = services[i].start(app, err);
            if (rc < 0) {
                dk__lifecycle_stop(app, dk_now_ms());
                return rc;
            }
        }
        app->nstarted = i + 1;
    }
    return 0;
}

void dk__lifecycle_stop(dk_app *app, uint64_t deadline_ms)
{
    size_t n = app->nstarted;
    for (size_t i = n; i-- > 0;)
        if (services[i].quiesce != NULL)
            services[i].quiesce(app, deadline_ms);
    for (size_t i = n; i-- > 0;) {
        if (services[i].stop != NULL)
            services[i].stop(app, deadline_ms);
        app->nstarted = i;
    }
}

void dk__lifecycle_free(dk_app *app)
{
    dk__lifecycle_stop(app, dk_now_ms());
    for (size_t i = app->ncreated; i-- > 0;) {
        if (services[i].free != NULL)
            services[i].free(app);
        app->ncreated = i;
    }
}

int dk__app_prepare(dk_app *app, dk_err *err)
{
    /* --admin-token: the operations page with that bearer token. */
    const dk_app_options *o = &app->opts;
    if (o->admin_token != NULL && *o->admin_token != '\0' && app->admin == NULL) {
        dk_admin_options ao = {.path = o->admin_path, .token = o->admin_token};
        int arc = dk_app_use_admin(app, &ao);
        if (arc < 0)
            return dk_err_set(err, arc, "operations page: %s", dk_strerror(arc));
    }
    int rc = dk__plugins_prepare(app, err);
    if (rc < 0)
        return rc;
    return dk__routes_build(app, err);
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
    dk__services *sv = app->services;
    if (sv != NULL && sv->redis != NULL) {
        if (dk__redis_ping(sv->redis) < 0) {
            json_object_set_new(checks, "redis", json_string("unreachable"));
            rc = DK_EUNAVAILABLE;
        } else {
            json_object_set_new(checks, "redis", json_string("ok"));
        }
    }
    return rc;
}
