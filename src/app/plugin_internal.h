/* Plugin manager internals shared by src/app/plugin.c, harness.c and admin.c. Not installed. */
#ifndef DK_PLUGIN_INTERNAL_H
#define DK_PLUGIN_INTERNAL_H

#include "internal.h"
#include "donkey/db.h"
#include "donkey/plugin.h"

struct dk_plugin_ctx {
    dk_app *app;
    const dk_plugin *def; /* borrowed from the user */
    json_t *config;       /* NULL when none */
    dk_logger *log;       /* child {"plugin": name}, created at prepare */
    void *service;
    bool created, inited;
};

/* app->plugins */
struct dk__plugins {
    dk_plugin_ctx **list; /* registration order */
    size_t n, cap;
    dk_plugin_ctx **order; /* dependency order, after prepare */
    size_t norder;
    char *error; /* first registration error: start-up fails with it */
    bool prepared, started;
};

/* Runs every plugin's migrations on the app's (open) database. */
int dk__plugins_migrate(dk_app *app, dk_err *err);

#endif
