/* Wiring of the core services into the application's life cycle. */
#include <uv.h>

#include "../internal.h"
#include "donkey/cache.h"
#include "donkey/events.h"
#include "donkey/loop.h"

#include <stdlib.h>

/* Periodic housekeeping on the service loop: reclaim expired cache entries. */
typedef struct housekeeping {
    uv_timer_t timer;
    dk_app *app;
} housekeeping;

static housekeeping *hk_of(dk_app *app);

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

static housekeeping *hk_of(dk_app *app)
{
    return (housekeeping *)app->housekeeping;
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
    if (c->cache == NULL || c->events == NULL)
        return DK_ENOMEM;
    return 0;
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
    int rc = dk__plugins_start(app, err);
    if (rc < 0)
        return rc;
    dk_loop_call(app->core.loop, start_housekeeping, app);
    return 0;
}

void dk__services_quiesce(dk_app *app, uint64_t deadline_ms)
{
    if (app->core.loop && app->housekeeping)
        dk_loop_call(app->core.loop, stop_housekeeping, app);
}

void dk__services_stop(dk_app *app)
{
    dk__plugins_stop(app);
}

void dk__services_free(dk_app *app)
{
    dk_core *c = &app->core;
    dk__plugins_free(app);
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
