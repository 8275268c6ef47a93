/* Wiring of the core services into the application's life cycle.
 *
 * Created with the app (not started): loop, cache, events, rate limiter,
 * cron, jobs, SSE. Start: plugins (database, migrations, services, init
 * hooks), then cron and jobs. Quiesce at shutdown: housekeeping, cron, jobs
 * (grace period), SSE. Free in reverse dependency order, the loop last. */
#include <uv.h>

#include "../internal.h"
#include "donkey/cache.h"
#include "donkey/cron.h"
#include "donkey/db.h"
#include "donkey/events.h"
#include "donkey/jobs.h"
#include "donkey/loop.h"
#include "donkey/ratelimit.h"
#include "donkey/sse.h"

#include <stdlib.h>

/* Periodic housekeeping on the service loop: reclaim expired cache entries. */
typedef struct housekeeping {
    uv_timer_t timer;
    dk_app *app;
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

int dk__services_new(dk_app *app)
{
    dk_core *c = &app->core;
    c->loop = dk_loop_new();
    if (c->loop == NULL)
        return DK_ENOMEM;
    app->housekeeping = calloc(1, sizeof(housekeeping));
    if (app->housekeeping == NULL)
        return DK_ENOMEM;
    hk_of(app)->app = app;

    dk_cache_options co;
    dk_cache_options_init(&co);
    c->cache = dk_cache_new(&co);

    dk_events_options eo;
    dk_events_options_init(&eo);
    eo.logger = c->logger;
    eo.loop = c->loop;
    c->events = dk_events_new(&eo);

    dk_ratelimit_options ro;
    dk_ratelimit_options_init(&ro);
    c->ratelimit = dk_ratelimit_new(&ro);

    dk_cron_options cro;
    dk_cron_options_init(&cro);
    cro.loop = c->loop;
    cro.logger = c->logger;
    c->cron = dk_cron_new(&cro);

    dk_jobs_options jo;
    dk_jobs_options_init(&jo);
    jo.core = c; /* database, events and logger are read from the core */
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
    c->sse = dk_sse_new(&so);

    if (c->cache == NULL || c->events == NULL || c->ratelimit == NULL || c->cron == NULL ||
        c->jobs == NULL || c->sse == NULL)
        return DK_ENOMEM;
    /* The built-in middleware: names are resolved at start-up like any other. */
    return dk_app_add_middleware(app, "rateLimit", dk_ratelimit_middleware, c->ratelimit);
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
    json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:s}", "database", dk_db_engine(c->db), "cache",
                          "memory", "events", "memory", "rateLimit", "memory", "sse", "memory");
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
}

void dk__services_stop(dk_app *app)
{
    dk__plugins_stop(app);
}

void dk__services_free(dk_app *app)
{
    dk_core *c = &app->core;
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
    dk_loop_free(c->loop);
    c->loop = NULL;
    free(app->housekeeping);
    app->housekeeping = NULL;
}
