/* donkey: the operations page (docs/observability.md "The operations page").
 *
 * A page (HTML, CSS and JavaScript compiled into the library) served at a
 * path of its own (default /_donkey), fed by typed routes `admin.*` (so the
 * generated client and the OpenAPI document include them) and updated live
 * over an event stream (`GET /admin.live`). It shows routes (rate, error
 * rate, p50/p95/p99, a sparkline), jobs (counts by state, latest failures,
 * a job's payload; retry now, cancel, delete), cron (schedule as written and
 * in words, time zone, next runs, last result; run now), SSE channels, cache,
 * rate limiters, the database pool and the process.
 *
 * Every request to the page and the routes goes through an auth hook: a
 * bearer token (the `--admin-token` flag / dk_app_options.admin_token
 * installs the page with that token), or a function of the application (its
 * own sessions). The hook answers who the caller is: nobody (401), a viewer
 * (read-only) or an admin (the actions too; a viewer gets 403). */
#ifndef DONKEY_ADMIN_H
#define DONKEY_ADMIN_H

#include "app.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dk_admin_role {
    DK_ADMIN_DENY = 0,   /* 401 */
    DK_ADMIN_VIEWER = 1, /* read-only */
    DK_ADMIN_ADMIN = 2,  /* read and act */
} dk_admin_role;

/** Decides who the caller of the page or an admin.* route is. Runs on the
 *  request's HTTP thread (in its fiber: it may call dk_db_* and the like). */
typedef dk_admin_role (*dk_admin_auth_fn)(dk_ctx *ctx, dk_request *req, void *user);

typedef struct dk_admin_options {
    const char *path;     /* the page, default "/_donkey" (copied) */
    const char *token;    /* `Authorization: Bearer <token>` is an admin (copied); NULL: none */
    dk_admin_auth_fn auth;/* asked when the token does not match; NULL: deny */
    void *auth_user;
    uint64_t live_interval_ms; /* snapshot period of the live stream, default 1000 */
} dk_admin_options;

/** Installs the operations page and its admin.* routes on `app` (before
 *  dk_app_start()). `o` is copied. Returns 0, DK_EEXIST (already installed),
 *  DK_EINVAL (neither a token nor an auth function; bad path) or DK_ENOMEM. */
DK_API int dk_app_use_admin(dk_app *app, const dk_admin_options *o);

#ifdef __cplusplus
}
#endif
#endif
