/* {{name}}: plugins and routers, registered in one place. */
#include "app.h"

const dk_plugin *const app_plugins[] = {
#define APP_PLUGIN(name, config) &name##_plugin,
#include "plugins.def"
#undef APP_PLUGIN
    NULL,
};

const char *const app_plugin_configs[] = {
#define APP_PLUGIN(name, config) config,
#include "plugins.def"
#undef APP_PLUGIN
    NULL,
};

const size_t app_nplugins = sizeof(app_plugins) / sizeof(app_plugins[0]) - 1;

static dk_router *(*const plugin_routers[])(void) = {
#define APP_PLUGIN(name, config) name##_router,
#include "plugins.def"
#undef APP_PLUGIN
    NULL,
};

int app_setup(dk_app *app)
{
    int rc = 0;
    for (size_t i = 0; i < app_nplugins; i++) {
        int r = dk_app_add_plugin(app, app_plugins[i], app_plugin_configs[i]);
        if (r < 0 && rc == 0)
            rc = r;
    }
    int r = dk_app_use(app, health_router());
    if (r < 0 && rc == 0)
        rc = r;
    for (size_t i = 0; i < app_nplugins; i++) {
        r = dk_app_use(app, plugin_routers[i]());
        if (r < 0 && rc == 0)
            rc = r;
    }
    return rc;
}
