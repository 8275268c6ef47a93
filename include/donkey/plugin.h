/* donkey: plugins, the unit of business logic.
 *
 * A plugin is described once, usually as a static `dk_plugin`, and registered
 * with dk_app_add_plugin(). It may own a service object (reachable from
 * handlers with dk_ctx_service() and from dependent plugins with
 * dk_plugin_dep()), database migrations, middleware, custom handler kinds,
 * custom errors, and hooks run at start-up (init) and shutdown (teardown).
 *
 * Start-up (dk_app_start()):
 *   1. prepare: every dependency is checked (missing, self, cycle), plugins
 *      are ordered (dependencies first, registration order otherwise), custom
 *      errors, middleware and handler kinds are registered; then the route
 *      table is built, which refuses unknown middleware or kinds;
 *   2. the database (app db_url) is opened and each plugin's migrations run,
 *      in dependency order (dk_db_migrate(): tracked, one transaction each);
 *   3. per plugin, in dependency order: the service constructor, then init.
 * Any failure stops start-up with one message naming the plugin; what already
 * ran is undone (teardown and destructors, reverse order). Shutdown runs every
 * teardown in reverse dependency order, then every destructor, then closes
 * the database.
 *
 * Threads: the constructor, init, teardown and destructor run on the thread
 * calling dk_app_start()/dk_app_wait(). Middleware and kind executors run on
 * HTTP threads, so a service used from them must be thread-safe. */
#ifndef DONKEY_PLUGIN_H
#define DONKEY_PLUGIN_H

#include "app.h"
#include "common.h"
#include "db.h"
#include "log.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What a plugin's hooks, middleware and kind executors receive. One per
 *  registered plugin, owned by the app; valid until dk_app_free(). */
typedef struct dk_plugin_ctx dk_plugin_ctx;

/** Service constructor: on 0 store the service in `*out_service` (NULL is
 *  allowed: a plugin without a service). On failure return a negative DK_E*
 *  code and optionally describe it with dk_err_set(err, ...); `err` is never
 *  NULL. */
typedef int (*dk_plugin_create_fn)(dk_plugin_ctx *pctx, void **out_service, dk_err *err);
/** Service destructor: frees what the constructor made. */
typedef void (*dk_plugin_destroy_fn)(dk_plugin_ctx *pctx, void *service);
/** Init hook, after the service exists: schedule cron tasks, register job
 *  handlers, subscribe to events. Errors as dk_plugin_create_fn. */
typedef int (*dk_plugin_init_fn)(dk_plugin_ctx *pctx, void *service, dk_err *err);
/** Teardown hook at shutdown (reverse dependency order, before destructors). */
typedef void (*dk_plugin_teardown_fn)(dk_plugin_ctx *pctx, void *service);

/** A middleware the plugin provides. The middleware's `user` argument is the
 *  plugin's dk_plugin_ctx (dk_plugin_service() gives its service). */
typedef struct dk_plugin_middleware {
    const char *name;
    dk_middleware_fn fn;
} dk_plugin_middleware;

/** A handler kind the plugin provides. The executor's `user` argument is the
 *  plugin's dk_plugin_ctx. "typed" and "raw" are reserved. */
typedef struct dk_plugin_kind {
    const char *name;
    dk_kind_fn fn;
} dk_plugin_kind;

/** A custom error registered into the app's error registry (dk_errors_make()
 *  on dk_ctx_core(ctx)->errors). `message` is the default message (may be NULL). */
typedef struct dk_plugin_error {
    const char *name;
    int status;
    const char *code;
    const char *message;
} dk_plugin_error;

/** A plugin definition. Every pointer is borrowed and must stay valid until
 *  dk_app_free() (a static definition is the usual form). The arrays are
 *  terminated by an entry whose name is NULL (`{0}`); NULL means none. */
typedef struct dk_plugin {
    const char *name;                      /* required, unique */
    const char *version;                   /* informational */
    const char *const *dependencies;       /* NULL-terminated plugin names */
    dk_plugin_create_fn create;            /* NULL: no service */
    dk_plugin_destroy_fn destroy;
    dk_plugin_init_fn init;
    dk_plugin_teardown_fn teardown;
    const dk_plugin_middleware *middleware;
    const dk_plugin_kind *kinds;
    const dk_plugin_error *errors;
    const dk_migration *migrations;        /* ends at {0} (name NULL) */
    const char *const *events;             /* NULL-terminated; published as "<plugin>.<event>" */
    const char *const *sse_channels;       /* NULL-terminated channel names */
} dk_plugin;

/** Registers `plugin` (borrowed, see dk_plugin) with configuration
 *  `config_json` (JSON text, copied; NULL for none). Call before
 *  dk_app_start(). Returns 0, DK_EINVAL (no name, invalid config JSON) or
 *  DK_EEXIST (a plugin of that name is already registered), or DK_ENOMEM.
 *  Every failure is also recorded, so dk_app_start() then fails with the same
 *  message. Not thread-safe; call from the thread that owns the app. */
DK_API int dk_app_add_plugin(dk_app *app, const dk_plugin *plugin, const char *config_json);

/** Service of plugin `name` (NULL when unknown, not yet created or when the
 *  plugin has none). Borrowed. Any thread after start-up. */
DK_API void *dk_app_service(dk_app *app, const char *name);

/* ---- plugin context ---- */

/** The plugin's name (borrowed, static for the app's life). */
DK_API const char *dk_plugin_name(const dk_plugin_ctx *pctx);
/** The configuration given to dk_app_add_plugin(), or NULL when none. Borrowed. */
DK_API const json_t *dk_plugin_config(const dk_plugin_ctx *pctx);
/** The core services (logger, db, cache, events, cron, jobs, errors...). The
 *  db is open from migrations on (not during prepare). Borrowed. */
DK_API const dk_core *dk_plugin_core(const dk_plugin_ctx *pctx);
/** Shortcut for dk_plugin_core(pctx)->db. */
DK_API dk_db *dk_plugin_db(const dk_plugin_ctx *pctx);
DK_API dk_app *dk_plugin_app(const dk_plugin_ctx *pctx);
/** The plugin's own service (NULL before its constructor ran). */
DK_API void *dk_plugin_service(const dk_plugin_ctx *pctx);
/** The service of dependency `name`. Only plugins listed in the plugin's
 *  `dependencies` can be reached: any other name returns NULL and logs an
 *  error. Borrowed. */
DK_API void *dk_plugin_dep(dk_plugin_ctx *pctx, const char *name);
/** A child logger with context {"plugin": name}. Borrowed; lives with the app. */
DK_API dk_logger *dk_plugin_log(dk_plugin_ctx *pctx);

/* ---- ready-made plugins ---- */

/** `cors`: middleware "cors". Per-route config (dk_router_use(r, "cors",
 *  ...)): {"origins": ["http://a", ...] or "*", "credentials": bool,
 *  "methods": "POST, GET", "headers": "Content-Type, Authorization",
 *  "maxAge": seconds}. Without config every origin is allowed. An OPTIONS
 *  preflight is answered 204 with Access-Control-Allow-Origin/-Methods/
 *  -Headers/-Max-Age (403 when the origin is not allowed); other requests run
 *  and get Access-Control-Allow-Origin when their Origin is allowed. Every
 *  answer carries Vary: Origin. Static definition. */
DK_API const dk_plugin *dk_plugin_cors(void);

/** `securityHeaders`: middleware "securityHeaders". After the handler, sets
 *  Content-Security-Policy ("default-src 'self'; img-src 'self' data:;
 *  object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors
 *  'none'"), X-Frame-Options (DENY), X-Content-Type-Options (nosniff),
 *  Referrer-Policy (no-referrer) and Cross-Origin-Opener-Policy (same-origin),
 *  on every answer including errors, unless the handler set that header.
 *  Config keys contentSecurityPolicy, frameOptions, contentTypeOptions,
 *  referrerPolicy, crossOriginOpenerPolicy: a string replaces the default,
 *  false leaves the header out. Static definition. */
DK_API const dk_plugin *dk_plugin_security_headers(void);

/** `originCheck`: middleware "originCheck" against cross-site request
 *  forgery. Config {"origins": ["https://app.example", ...]} (other origins
 *  allowed besides the request's own). A POST, PUT, PATCH or DELETE is
 *  answered 403 FORBIDDEN when its Origin header is present and is neither
 *  the request's own (host[:port] equal to the Host header, http or https)
 *  nor listed, or, without Origin, when Sec-Fetch-Site is cross-site or
 *  same-site. Other methods and requests with neither header pass. Put it
 *  before middleware that counts or authenticates. Static definition. */
DK_API const dk_plugin *dk_plugin_origin_check(void);

/** `requestLog`: middleware "requestLog". Logs one info entry "Request
 *  completed" {method, route, status, durationMs} through dk_ctx_log() (which
 *  adds requestId). Config {"level": "debug"|"info"} (default info). */
DK_API const dk_plugin *dk_plugin_request_log(void);

#ifdef __cplusplus
}
#endif
#endif
