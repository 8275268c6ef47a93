/* donkey: test harness. Runs plugins and routes in-process, without a socket,
 * so a plugin can be unit-tested on its own:
 *
 *     const dk_plugin *plugins[] = {&auth_plugin, &notes_plugin};
 *     dk_err err = {0};
 *     dk_harness *h = dk_harness_new(plugins, 2, &err);
 *     struct notes *svc = dk_harness_service(h, "notes");
 *     dk_harness_use(h, notes_router(), &err);
 *     char *out = NULL;
 *     int status = dk_harness_call(h, "notes.add", "{\"text\":\"x\"}", &out);
 *     free(out);
 *     dk_harness_free(h);
 *
 * The harness owns an application that is prepared but never listens: a
 * fresh database (default: in-memory SQLite) with the plugins' migrations
 * applied, every core service created (cron and jobs are not started; a test
 * starts them itself), log level warn, app config {"env": "test"}, and each
 * plugin's service and init hook run in dependency order.
 *
 * Threads: a harness belongs to the thread that created it; requests run
 * synchronously on that thread. */
#ifndef DONKEY_HARNESS_H
#define DONKEY_HARNESS_H

#include "app.h"
#include "common.h"
#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dk_harness dk_harness;

typedef struct dk_harness_options {
    const dk_plugin *const *plugins; /* borrowed until dk_harness_free() */
    size_t nplugins;
    const char *const *configs;      /* parallel to plugins, entries may be NULL; NULL: none */
    const char *db_url;              /* default "sqlite::memory:" */
    dk_log_level log_level;          /* default DK_LOG_WARN */
    const char *config_json;         /* application config, default {"env":"test"} */
} dk_harness_options;

/** Fills defaults (no plugins). */
DK_API void dk_harness_options_init(dk_harness_options *o);

/** New harness running `plugins` (n entries; borrowed until dk_harness_free();
 *  any order, dependencies are ordered for you). Returns NULL with `err`
 *  (may be NULL) naming the problem: the same start-up errors as
 *  dk_app_start() (missing or circular dependency, failing migration, failing
 *  constructor or init hook). Caller frees with dk_harness_free(). */
DK_API dk_harness *dk_harness_new(const dk_plugin *const *plugins, size_t n, dk_err *err);
DK_API dk_harness *dk_harness_new_opts(const dk_harness_options *o, dk_err *err);

/** Runs every teardown hook (reverse order), the destructors, closes the
 *  database and frees the application. NULL is ignored. */
DK_API void dk_harness_free(dk_harness *h);

/** The application, its core services and database. Borrowed. */
DK_API dk_app *dk_harness_app(dk_harness *h);
DK_API const dk_core *dk_harness_core(dk_harness *h);
DK_API dk_db *dk_harness_db(dk_harness *h);
/** Service of plugin `name` or NULL. Borrowed. */
DK_API void *dk_harness_service(dk_harness *h, const char *name);

/** Adds router `r` (the harness takes ownership, also on failure) and
 *  rebuilds the route table. Returns 0, or an error with `err` filled (unknown
 *  middleware or kind, duplicate route, invalid definition); the router stays
 *  registered but its routes are unreachable until the problem is fixed. */
DK_API int dk_harness_use(dk_harness *h, dk_router *r, dk_err *err);

/** The answer to one in-process request. Caller releases with
 *  dk_harness_response_free(). */
typedef struct dk_harness_response {
    int status;
    char *body;        /* NUL-terminated copy of the body */
    size_t body_len;
    json_t *json;      /* parsed body, NULL when not JSON */
    char **headers;    /* name, value, name, value ... (2 * nheaders entries) */
    size_t nheaders;
} dk_harness_response;

/** Runs one request through the full dispatch (route lookup, method policy,
 *  middleware, handler, error rendering). `method` NULL means POST; `route`
 *  is the full route name (a leading '/' is allowed); `headers` is a
 *  NULL-terminated list of "Name: value" strings or NULL; `body` may be NULL.
 *  Everything is borrowed for the call. Returns 0 with `*out` filled, or
 *  DK_EINVAL / DK_ENOMEM. */
DK_API int dk_harness_request(dk_harness *h, const char *method, const char *route,
                              const char *const *headers, const char *body,
                              dk_harness_response *out);

/** First response header `name` (case-insensitive) or NULL. Borrowed. */
DK_API const char *dk_harness_response_header(const dk_harness_response *res, const char *name);
DK_API void dk_harness_response_free(dk_harness_response *res);

/** Shortcut: POST `json_input` (NULL: empty body) to `route`. Returns the HTTP
 *  status (or a negative DK_E* code) and, when `out_json` is not NULL, the
 *  body text in `*out_json` (caller frees with free()). */
DK_API int dk_harness_call(dk_harness *h, const char *route, const char *json_input,
                           char **out_json);

#ifdef __cplusplus
}
#endif
#endif
