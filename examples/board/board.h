/* board: a small real-time task board built on donkey (issue 6).
 *
 *   auth.c    plugin "auth": users, sessions in the database, the "auth"
 *             middleware, rate-limited log-in, a cron task purging expired
 *             sessions;
 *   boards.c  plugin "boards": boards and tasks, events, live updates over
 *             SSE, the "board.export" background job and its download;
 *   web.c     the page and its static files, embedded at build time;
 *   main.c    flags, wiring, start-up. */
#ifndef BOARD_H
#define BOARD_H

#include <donkey/donkey.h>

/* Settings from the command line, shared by the plugins (read-only after main()). */
typedef struct board_settings {
    const char *data_dir;      /* exports go to <data_dir>/exports */
    int64_t session_ttl_ms;    /* session lifetime */
    int login_limit;           /* log-in attempts per IP and minute */
    int signup_limit;          /* sign-up attempts per IP and minute */
    int max_streams_per_user;  /* open /boards.live streams per user */
    int max_boards_per_user;   /* boards a user may own */
    int max_tasks_per_user;    /* tasks a user may have created (deleted ones do not count) */
    int64_t export_ttl_ms;     /* export files are deleted this long after they were written */
    const char *purge_cron;    /* cron expression of the session purge */
} board_settings;

extern board_settings board_cfg;

/* auth.c */
const dk_plugin *board_auth_plugin(void);
int board_auth_routes(dk_app *app);
/* The signed-in user's id (0 when none); the user is set by the "auth" middleware. */
int64_t board_user_id(dk_ctx *ctx);

/* boards.c */
const dk_plugin *board_boards_plugin(void);
int board_boards_routes(dk_app *app);

/* web.c */
typedef struct board_asset {
    const char *name;          /* route name, e.g. "app.js" */
    const char *content_type;
    const unsigned char *data;
    size_t len;
} board_asset;

/* Generated from web/ at build time (embed.cmake); ends with a NULL name. */
extern const board_asset board_assets[];

int board_web_routes(dk_app *app);
/* Attaches the guards every board router starts with: "securityHeaders"
 * (CSP, X-Frame-Options...) and "originCheck" (cross-site POSTs refused). */
int board_router_guards(dk_router *r);

#endif
