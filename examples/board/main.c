/* board: a real-time task board, the donkey example application.
 *
 *   board [--port N] [--db URL] [--data-dir DIR] [--login-limit N] [--signup-limit N]
 *         [--session-ttl SECONDS] [--purge-cron EXPR] [standard donkey flags]
 *
 * SQLite file board.db in the working directory by default; PostgreSQL with
 * --db postgres://user:pass@host/db (or DONKEY_DATABASE_URL): the plugins'
 * migrations carry a PostgreSQL text and the queries are portable. The page
 * is at http://127.0.0.1:3000/app. */
#include "board.h"

#include <sodium.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

board_settings board_cfg = {
    .data_dir = ".",
    .session_ttl_ms = INT64_C(7) * 24 * 3600 * 1000,
    .login_limit = 10,
    .signup_limit = 10,
    .max_streams_per_user = 8,
    .max_boards_per_user = 100,
    .max_tasks_per_user = 5000,
    .export_ttl_ms = INT64_C(3600) * 1000,
    .purge_cron = "* * * * *",
};

/* Shown by `board --help` above the standard donkey options. */
static const char board_options[] =
    "Board options:\n"
    "  --data-dir DIR        where exports are written (default .)\n"
    "  --login-limit N       log-in attempts per IP and minute (default 10)\n"
    "  --signup-limit N      sign-up attempts per IP and minute (default 10)\n"
    "  --max-streams-per-user N  open live streams per user (default 8; more get 429)\n"
    "  --max-boards-per-user N   boards a user may own (default 100)\n"
    "  --max-tasks-per-user N    tasks a user may have created (default 5000)\n"
    "  --export-ttl SECS     export files are deleted after (default 3600)\n"
    "  --session-ttl SECS    session lifetime (default 604800, a week)\n"
    "  --purge-cron EXPR     when expired sessions are purged (default \"* * * * *\")\n";

static void usage(FILE *out)
{
    fprintf(out, "usage: board [options]\n%sand the standard donkey options (board --help)\n",
            board_options);
}

static bool parse_int(const char *text, long long min, long long *out)
{
    char *end;
    long long v = strtoll(text, &end, 10);
    if (*text == '\0' || *end != '\0' || v < min)
        return false;
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    dk_app_options opts;
    dk_app_options_init(&opts);
    opts.db_url = "sqlite:board.db";
    opts.usage = board_options;
    dk_err err = {0};
    if (dk_app_options_parse(&opts, &argc, argv, &err) < 0) {
        fprintf(stderr, "board: %s\n", err.message);
        return 2;
    }
    for (int i = 1; i < argc; i += 2) { /* every board option takes a value */
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long n = 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--data-dir") == 0 && v != NULL) {
            board_cfg.data_dir = v;
        } else if (strcmp(a, "--login-limit") == 0 && v != NULL && parse_int(v, 0, &n)) {
            board_cfg.login_limit = (int)n;
        } else if (strcmp(a, "--signup-limit") == 0 && v != NULL && parse_int(v, 0, &n)) {
            board_cfg.signup_limit = (int)n;
        } else if (strcmp(a, "--max-streams-per-user") == 0 && v != NULL && parse_int(v, 1, &n)) {
            board_cfg.max_streams_per_user = (int)n;
        } else if (strcmp(a, "--max-boards-per-user") == 0 && v != NULL && parse_int(v, 0, &n)) {
            board_cfg.max_boards_per_user = (int)n;
        } else if (strcmp(a, "--max-tasks-per-user") == 0 && v != NULL && parse_int(v, 0, &n)) {
            board_cfg.max_tasks_per_user = (int)n;
        } else if (strcmp(a, "--export-ttl") == 0 && v != NULL && parse_int(v, 1, &n)) {
            board_cfg.export_ttl_ms = n * 1000;
        } else if (strcmp(a, "--session-ttl") == 0 && v != NULL && parse_int(v, 1, &n)) {
            board_cfg.session_ttl_ms = n * 1000;
        } else if (strcmp(a, "--purge-cron") == 0 && v != NULL) {
            board_cfg.purge_cron = v;
        } else {
            fprintf(stderr, "board: bad or unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "board: libsodium failed to initialise\n");
        return 1;
    }

    dk_app *app = dk_app_new(&opts);
    if (app == NULL) {
        fprintf(stderr, "board: out of memory\n");
        return 1;
    }
    /* Definition errors are recorded by the app; start-up reports them. */
    dk_app_add_plugin(app, dk_plugin_security_headers(), NULL);
    dk_app_add_plugin(app, dk_plugin_origin_check(), NULL);
    dk_app_add_plugin(app, board_auth_plugin(), NULL);
    dk_app_add_plugin(app, board_boards_plugin(), NULL);
    board_auth_routes(app);
    board_boards_routes(app);
    board_web_routes(app);

    if (opts.routes_json) {
        int rc = dk_app_run(app);
        dk_app_free(app);
        return rc;
    }
    if (dk_app_start(app, &err) < 0) {
        fprintf(stderr, "board: start-up failed: %s\n", err.message);
        dk_app_free(app);
        return 1;
    }
    const char *host = opts.host != NULL ? opts.host : "127.0.0.1";
    if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
        host = "127.0.0.1";
    printf("Open http://%s:%d/app in your browser\n", host, dk_app_port(app));
    fflush(stdout);
    dk_app_wait(app);
    dk_app_free(app);
    return 0;
}
