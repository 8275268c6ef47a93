/* Wiring of the core services into the application's life cycle. */
#include "../internal.h"
#include "donkey/loop.h"

int dk__services_new(dk_app *app)
{
    app->core.loop = dk_loop_new();
    if (app->core.loop == NULL)
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
    return 0;
}

void dk__services_quiesce(dk_app *app, uint64_t deadline_ms)
{
}

void dk__services_stop(dk_app *app)
{
    dk__plugins_stop(app);
}

void dk__services_free(dk_app *app)
{
    dk__plugins_free(app);
    dk_loop_free(app->core.loop);
    app->core.loop = NULL;
}

