/* {{name}}: the application's parts, shared by main.c and the tests. */
#ifndef APP_H
#define APP_H

#include <donkey/donkey.h>

/* Every plugin listed in plugins.def, in that order, NULL-terminated, and
 * its configuration (JSON text or NULL) at the same index. */
extern const dk_plugin *const app_plugins[];
extern const char *const app_plugin_configs[];
extern const size_t app_nplugins;

/** Registers the plugins and every router with `app`. Returns 0 or the
 *  first error (also recorded: dk_app_start() reports it). */
int app_setup(dk_app *app);

/** The routers of the application (the app or harness takes ownership). */
dk_router *health_router(void);

/* Each plugin NAME provides `NAME_plugin` and `NAME_router()` (plugins.def). */
#define APP_PLUGIN(name, config) \
    extern const dk_plugin name##_plugin; \
    dk_router *name##_router(void);
#include "plugins.def"
#undef APP_PLUGIN

#endif
