/* Plugin manager: registration, dependency ordering, migrations, services,
 * init and teardown. Lives in app->plugins. The database is the app's: it is
 * open before dk__plugins_start() and closed after dk__plugins_free(). */
#include "app/plugin_internal.h"
#include "db/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static dk__plugins *manager(dk_app *app)
{
    if (app->plugins == NULL)
        app->plugins = calloc(1, sizeof(dk__plugins));
    return app->plugins;
}

static void record_error(dk__plugins *m, const char *msg)
{
    if (m != NULL && m->error == NULL)
        m->error = strdup(msg);
}

static dk_plugin_ctx *find(const dk__plugins *m, const char *name)
{
    if (m == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->list[i]->def->name, name) == 0)
            return m->list[i];
    return NULL;
}

int dk_app_add_plugin(dk_app *app, const dk_plugin *plugin, const char *config_json)
{
    dk__plugins *m = manager(app);
    char msg[256];
    if (m == NULL)
        return DK_ENOMEM;
    if (m->prepared) {
        snprintf(msg, sizeof(msg), "plugin '%s' registered after start-up",
                 plugin && plugin->name ? plugin->name : "?");
        record_error(m, msg);
        return DK_ESTATE;
    }
    if (plugin == NULL || plugin->name == NULL || plugin->name[0] == '\0') {
        record_error(m, "a plugin without a name was registered");
        return DK_EINVAL;
    }
    if (find(m, plugin->name) != NULL) {
        snprintf(msg, sizeof(msg), "plugin '%s' is already registered", plugin->name);
        record_error(m, msg);
        return DK_EEXIST;
    }
    json_t *config = NULL;
    if (config_json != NULL) {
        json_error_t jerr;
        config = json_loads(config_json, JSON_DECODE_ANY, &jerr);
        if (config == NULL) {
            snprintf(msg, sizeof(msg), "plugin '%s': invalid configuration JSON: %s", plugin->name,
                     jerr.text);
            record_error(m, msg);
            return DK_EINVAL;
        }
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        dk_plugin_ctx **v = realloc(m->list, cap * sizeof(*v));
        if (v == NULL) {
            json_decref(config);
            record_error(m, "out of memory registering a plugin");
            return DK_ENOMEM;
        }
        m->list = v;
        m->cap = cap;
    }
    dk_plugin_ctx *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        json_decref(config);
        record_error(m, "out of memory registering a plugin");
        return DK_ENOMEM;
    }
    p->app = app;
    p->def = plugin;
    p->config = config;
    m->list[m->n++] = p;
    return 0;
}

/* ---- validation and ordering ---- */

static size_t count_strv(const char *const *v)
{
    size_t n = 0;
    if (v != NULL)
        while (v[n] != NULL)
            n++;
    return n;
}

static size_t index_of(const dk__plugins *m, const dk_plugin_ctx *p)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->list[i] == p)
            return i;
    return SIZE_MAX;
}

/* Depth-first visit: dependencies (declared order) before the plugin. On a
 * cycle, `err` names the whole loop, "a -> b -> c -> a". */
static int visit(dk__plugins *m, size_t i, unsigned char *state, size_t *path, size_t depth,
                 dk_err *err)
{
    if (state[i] == 2)
        return 0;
    if (state[i] == 1) {
        dk__buf b = {0};
        size_t start = 0;
        while (start < depth && path[start] != i)
            start++;
        for (size_t k = start; k < depth; k++)
            dk__buf_appendf(&b, "%s -> ", m->list[path[k]]->def->name);
        dk__buf_appends(&b, m->list[i]->def->name);
        int rc = dk_err_set(err, DK_EINVAL, "circular plugin dependency: %s",
                            b.data ? b.data : m->list[i]->def->name);
        dk__buf_free(&b);
        return rc;
    }
    state[i] = 1;
    path[depth] = i;
    const char *const *deps = m->list[i]->def->dependencies;
    for (size_t d = 0; d < count_strv(deps); d++) {
        size_t j = index_of(m, find(m, deps[d]));
        int rc = visit(m, j, state, path, depth + 1, err);
        if (rc < 0)
            return rc;
    }
    state[i] = 2;
    m->order[m->norder++] = m->list[i];
    return 0;
}

static int check_and_order(dk__plugins *m, dk_err *err)
{
    for (size_t i = 0; i < m->n; i++) {
        const dk_plugin *def = m->list[i]->def;
        const char *const *deps = def->dependencies;
        for (size_t d = 0; d < count_strv(deps); d++) {
            if (strcmp(deps[d], def->name) == 0)
                return dk_err_set(err, DK_EINVAL, "plugin '%s' depends on itself (%s -> %s)",
                                  def->name, def->name, def->name);
            if (find(m, deps[d]) == NULL)
                return dk_err_set(err, DK_ENOTFOUND,
                                  "plugin '%s' depends on '%s', but it is not registered",
                                  def->name, deps[d]);
        }
    }
    m->order = calloc(m->n + 1, sizeof(*m->order));
    unsigned char *state = calloc(m->n + 1, 1);
    size_t *path = calloc(m->n + 1, sizeof(*path));
    int rc = 0;
    if (m->order == NULL || state == NULL || path == NULL)
        rc = dk_err_set(err, DK_ENOMEM, "out of memory ordering plugins");
    m->norder = 0;
    for (size_t i = 0; rc == 0 && i < m->n; i++)
        rc = visit(m, i, state, path, 0, err);
    free(state);
    free(path);
    if (rc < 0) {
        free(m->order);
        m->order = NULL;
        m->norder = 0;
    }
    return rc;
}

/* Registers what the plugin provides to the app: errors, middleware, kinds. */
static int register_parts(dk_app *app, dk_plugin_ctx *p, dk_err *err)
{
    const dk_plugin *def = p->def;
    for (const dk_plugin_error *e = def->errors; e && e->name; e++) {
        int rc = dk_errors_register(app->core.errors, e->name, e->status, e->code, e->message);
        if (rc == DK_EEXIST)
            return dk_err_set(err, rc,
                              "plugin '%s': custom error '%s' is already registered "
                              "with a different definition",
                              def->name, e->name);
        if (rc < 0)
            return dk_err_set(err, rc, "plugin '%s': cannot register custom error '%s': %s",
                              def->name, e->name, dk_strerror(rc));
        dk_log(p->log, DK_LOG_DEBUG, "Registered custom error",
               json_pack("{s:s, s:i, s:s}", "error", e->name, "status", e->status, "code",
                         e->code ? e->code : ""));
    }
    for (const dk_plugin_middleware *mw = def->middleware; mw && mw->name; mw++) {
        int rc = dk_app_add_middleware(app, mw->name, mw->fn, p);
        if (rc == DK_EEXIST)
            return dk_err_set(err, rc,
                              "plugin '%s': middleware '%s' is already provided by "
                              "another plugin",
                              def->name, mw->name);
        if (rc < 0)
            return dk_err_set(err, rc, "plugin '%s': cannot register middleware '%s': %s",
                              def->name, mw->name, dk_strerror(rc));
    }
    for (const dk_plugin_kind *k = def->kinds; k && k->name; k++) {
        int rc = dk_app_add_kind(app, k->name, k->fn, p);
        if (rc == DK_EEXIST)
            return dk_err_set(err, rc,
                              "plugin '%s': handler kind '%s' is already provided by "
                              "another plugin",
                              def->name, k->name);
        if (rc < 0)
            return dk_err_set(err, rc, "plugin '%s': cannot register handler kind '%s': %s",
                              def->name, k->name, dk_strerror(rc));
    }
    return 0;
}

int dk__plugins_prepare(dk_app *app, dk_err *err)
{
    dk__plugins *m = manager(app);
    if (m == NULL)
        return dk_err_set(err, DK_ENOMEM, "out of memory");
    if (m->error != NULL)
        return dk_err_set(err, DK_EINVAL, "%s", m->error);
    if (m->prepared)
        return 0;
    int rc = check_and_order(m, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < m->norder; i++) {
        dk_plugin_ctx *p = m->order[i];
        json_t *c = json_pack("{s:s}", "plugin", p->def->name);
        p->log = dk_logger_child(app->core.logger, c);
        json_decref(c);
        if (p->log == NULL)
            return dk_err_set(err, DK_ENOMEM, "out of memory");
        rc = register_parts(app, p, err);
        if (rc < 0) {
            /* Remember it: a later prepare must fail the same way. */
            record_error(m, err ? err->message : "plugin registration failed");
            return rc;
        }
    }
    m->prepared = true;
    return 0;
}

/* ---- start and stop ---- */

static size_t count_migrations(const dk_migration *migs)
{
    size_t n = 0;
    if (migs != NULL)
        while (migs[n].name != NULL)
            n++;
    return n;
}

/* Undoes what start ran: teardown hooks (reverse order), then destructors
 * (reverse order). Safe to call more than once. */
static void stop_all(dk__plugins *m)
{
    for (size_t i = m->norder; i-- > 0;) {
        dk_plugin_ctx *p = m->order[i];
        if (p->inited) {
            p->inited = false;
            if (p->def->teardown)
                p->def->teardown(p, p->service);
        }
    }
    for (size_t i = m->norder; i-- > 0;) {
        dk_plugin_ctx *p = m->order[i];
        if (p->created) {
            p->created = false;
            if (p->def->destroy)
                p->def->destroy(p, p->service);
            p->service = NULL;
        }
    }
}

static int hook_failed(dk_err *err, dk_err *e, int rc, const char *plugin, const char *what)
{
    if (rc >= 0)
        rc = DK_EINTERNAL;
    if (e->message[0])
        return dk_err_set(err, rc, "plugin '%s': %s failed: %s", plugin, what, e->message);
    return dk_err_set(err, rc, "plugin '%s': %s failed: %s", plugin, what, dk_strerror(rc));
}

int dk__plugins_migrate(dk_app *app, dk_err *err)
{
    dk__plugins *m = app->plugins;
    if (app->core.db == NULL) /* the app opens it (src/app/lifecycle.c) */
        return dk_err_set(err, DK_ESTATE, "the database is not open");
    if (m == NULL)
        return 0;
    for (size_t i = 0; i < m->norder; i++) {
        dk_plugin_ctx *p = m->order[i];
        size_t n = count_migrations(p->def->migrations);
        if (n == 0)
            continue;
        dk_err e = {0};
        int rc = dk_db_migrate(app->core.db, p->def->name, p->def->migrations, n, p->log, &e);
        if (rc < 0)
            return dk_err_set(err, rc, "migrations failed: %s",
                              e.message[0] ? e.message : dk_strerror(rc));
    }
    return 0;
}

int dk__plugins_start(dk_app *app, dk_err *err)
{
    dk__plugins *m = manager(app);
    if (m == NULL)
        return dk_err_set(err, DK_ENOMEM, "out of memory");
    if (!m->prepared) {
        int rc = dk__plugins_prepare(app, err);
        if (rc < 0)
            return rc;
    }
    if (m->started)
        return 0;
    int rc = dk__plugins_migrate(app, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < m->norder; i++) {
        dk_plugin_ctx *p = m->order[i];
        dk_err e = {0};
        if (p->def->create != NULL) {
            void *svc = NULL;
            rc = p->def->create(p, &svc, &e);
            if (rc < 0) {
                rc = hook_failed(err, &e, rc, p->def->name, "service constructor");
                stop_all(m);
                return rc;
            }
            p->service = svc;
        }
        p->created = true;
        if (p->def->init != NULL) {
            rc = p->def->init(p, p->service, &e);
            if (rc < 0) {
                rc = hook_failed(err, &e, rc, p->def->name, "init hook");
                stop_all(m);
                return rc;
            }
        }
        p->inited = true;
        dk_log(p->log, DK_LOG_DEBUG, "Plugin initialized",
               json_pack("{s:s}", "version", p->def->version ? p->def->version : ""));
    }
    m->started = true;
    if (m->norder > 0)
        dk_log(app->core.logger, DK_LOG_INFO, "All plugins initialized",
               json_pack("{s:i}", "plugins", (int)m->norder));
    return 0;
}

void dk__plugins_stop(dk_app *app)
{
    dk__plugins *m = app->plugins;
    if (m == NULL)
        return;
    stop_all(m);
    m->started = false;
}

void dk__plugins_free(dk_app *app)
{
    dk__plugins *m = app->plugins;
    if (m != NULL) {
        stop_all(m);
        for (size_t i = 0; i < m->n; i++) {
            json_decref(m->list[i]->config);
            dk_logger_free(m->list[i]->log);
            free(m->list[i]);
        }
        free(m->list);
        free(m->order);
        free(m->error);
        free(m);
        app->plugins = NULL;
    }
}

void dk__plugins_describe(dk_app *app, json_t *doc)
{
    json_t *events = json_array(), *channels = json_array();
    dk__plugins *m = app->plugins;
    for (size_t i = 0; m != NULL && i < m->n; i++) {
        const dk_plugin *def = m->list[i]->def;
        for (size_t k = 0; k < count_strv(def->events); k++) {
            char *name = NULL;
            if (asprintf(&name, "%s.%s", def->name, def->events[k]) >= 0) {
                json_array_append_new(events, json_string(name));
                free(name);
            }
        }
        for (size_t k = 0; k < count_strv(def->sse_channels); k++)
            json_array_append_new(channels, json_string(def->sse_channels[k]));
    }
    json_object_set_new(doc, "events", events);
    json_object_set_new(doc, "sseChannels", channels);
}

/* ---- lookups ---- */

void *dk_app_service(dk_app *app, const char *name)
{
    dk_plugin_ctx *p = find(app->plugins, name);
    return p != NULL && p->created ? p->service : NULL;
}

void *dk_ctx_service(dk_ctx *ctx, const char *plugin) { return dk_app_service(ctx->app, plugin); }

const char *dk_plugin_name(const dk_plugin_ctx *pctx) { return pctx->def->name; }
const json_t *dk_plugin_config(const dk_plugin_ctx *pctx) { return pctx->config; }
const dk_core *dk_plugin_core(const dk_plugin_ctx *pctx) { return &pctx->app->core; }
dk_db *dk_plugin_db(const dk_plugin_ctx *pctx) { return pctx->app->core.db; }
dk_app *dk_plugin_app(const dk_plugin_ctx *pctx) { return pctx->app; }
void *dk_plugin_service(const dk_plugin_ctx *pctx) { return pctx->service; }

dk_logger *dk_plugin_log(dk_plugin_ctx *pctx)
{
    return pctx->log != NULL ? pctx->log : pctx->app->core.logger;
}

void *dk_plugin_dep(dk_plugin_ctx *pctx, const char *name)
{
    const char *const *deps = pctx->def->dependencies;
    for (size_t d = 0; name != NULL && d < count_strv(deps); d++)
        if (strcmp(deps[d], name) == 0)
            return dk_app_service(pctx->app, name);
    dk_log(dk_plugin_log(pctx), DK_LOG_ERROR, "Access to an undeclared dependency",
           json_pack("{s:s, s:s}", "plugin", pctx->def->name, "dependency", name ? name : ""));
    return NULL;
}
