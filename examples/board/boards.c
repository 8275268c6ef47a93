/* Plugin "boards": boards and their tasks (columns todo, doing, done), an
 * event for every change, live updates over Server-Sent Events (one channel
 * "board:<id>" per board, plus "boards" for new boards), and a background job
 * exporting a board as a JSON file that can then be downloaded.
 *
 * Every signed-in user sees every board: the board is shared by design. */
#include "board.h"

#include <donkey/cron.h>
#include <donkey/db.h>
#include <donkey/events.h>
#include <donkey/jobs.h>
#include <donkey/sse.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct boards_svc {
    dk_db *db;
    dk_logger *log;
    dk_events *events;
    dk_sse *sse;   /* the core's, or our own until the core has one */
    dk_jobs *jobs; /* likewise */
    dk_cron *cron;
    int64_t sub_id, done_id;
    char purge_id[DK_CRON_ID_SIZE];
    char exports[1024]; /* <data dir>/exports */
} boards_svc;

static const char *const boards_deps[] = {"auth", NULL};

/* SQLite first, then PostgreSQL (BIGSERIAL / BIGINT: ids and epoch
 * milliseconds; same constraints). */
static const dk_migration boards_migrations[] = {
    {1, "create_boards_and_tasks",
     "CREATE TABLE board_boards ("
     " id INTEGER PRIMARY KEY AUTOINCREMENT,"
     " name TEXT NOT NULL,"
     " owner_id INTEGER NOT NULL REFERENCES board_users(id),"
     " created_at INTEGER NOT NULL);"
     "CREATE TABLE board_tasks ("
     " id INTEGER PRIMARY KEY AUTOINCREMENT,"
     " board_id INTEGER NOT NULL REFERENCES board_boards(id) ON DELETE CASCADE,"
     " title TEXT NOT NULL,"
     " col TEXT NOT NULL CHECK (col IN ('todo', 'doing', 'done')),"
     " created_by INTEGER NOT NULL REFERENCES board_users(id),"
     " created_at INTEGER NOT NULL,"
     " updated_at INTEGER NOT NULL);"
     "CREATE INDEX board_tasks_board ON board_tasks(board_id);",
     /* PostgreSQL */
     "CREATE TABLE board_boards ("
     " id BIGSERIAL PRIMARY KEY,"
     " name TEXT NOT NULL,"
     " owner_id BIGINT NOT NULL REFERENCES board_users(id),"
     " created_at BIGINT NOT NULL);"
     "CREATE TABLE board_tasks ("
     " id BIGSERIAL PRIMARY KEY,"
     " board_id BIGINT NOT NULL REFERENCES board_boards(id) ON DELETE CASCADE,"
     " title TEXT NOT NULL,"
     " col TEXT NOT NULL CHECK (col IN ('todo', 'doing', 'done')),"
     " created_by BIGINT NOT NULL REFERENCES board_users(id),"
     " created_at BIGINT NOT NULL,"
     " updated_at BIGINT NOT NULL);"
     "CREATE INDEX board_tasks_board ON board_tasks(board_id);"},
    /* The per-user quotas count by owner and by creator. */
    {2, "quota_indexes",
     "CREATE INDEX board_boards_owner ON board_boards(owner_id);"
     "CREATE INDEX board_tasks_creator ON board_tasks(created_by);",
     "CREATE INDEX board_boards_owner ON board_boards(owner_id);"
     "CREATE INDEX board_tasks_creator ON board_tasks(created_by);"},
    /* The activity list, so that it survives a reload (boards.activity). */
    {3, "create_activity",
     "CREATE TABLE board_activity ("
     " id INTEGER PRIMARY KEY AUTOINCREMENT,"
     " board_id INTEGER NOT NULL REFERENCES board_boards(id) ON DELETE CASCADE,"
     " at INTEGER NOT NULL,"
     " text TEXT NOT NULL);"
     "CREATE INDEX board_activity_board ON board_activity(board_id, id);",
     "CREATE TABLE board_activity ("
     " id BIGSERIAL PRIMARY KEY,"
     " board_id BIGINT NOT NULL REFERENCES board_boards(id) ON DELETE CASCADE,"
     " at BIGINT NOT NULL,"
     " text TEXT NOT NULL);"
     "CREATE INDEX board_activity_board ON board_activity(board_id, id);"},
    {0},
};

/* Entries kept per board; boards.activity answers the newest ACTIVITY_SHOWN. */
#define ACTIVITY_KEPT 200
#define ACTIVITY_SHOWN 50

/* Portable SQL (SQLite and PostgreSQL): camelCase aliases are quoted, or
 * PostgreSQL would fold them to lower case; new ids come from RETURNING id. */
#define TASK_COLUMNS                                                                             \
    "t.id AS id, t.board_id AS \"boardId\", t.title AS title, t.col AS \"column\","              \
    " t.created_at AS \"createdAt\", t.updated_at AS \"updatedAt\","                            \
    " u.username AS \"createdBy\""
#define TASK_FROM " FROM board_tasks t JOIN board_users u ON u.id = t.created_by"

/* ------------------------------------------------------------------ */
/* Events -> SSE                                                       */

/* Every change is an event "boards.<what>" with {boardId, ...}; this
 * subscriber forwards it to the board's SSE channel as event "<what>". */
static int forward_to_sse(const char *event, const json_t *data, void *user)
{
    boards_svc *b = user;
    const char *what = event + strlen("boards.");
    if (strcmp(what, "board.created") == 0)
        return dk_sse_broadcast(b->sse, "boards", what, data, NULL);
    json_int_t board = json_integer_value(json_object_get(data, "boardId"));
    char channel[40];
    snprintf(channel, sizeof(channel), "board:%" JSON_INTEGER_FORMAT, board);
    return dk_sse_broadcast(b->sse, channel, what, data, NULL);
}

static void emit(dk_ctx *ctx, boards_svc *b, const char *event, json_t *data)
{
    json_object_set_new(data, "by", json_deep_copy(dk_ctx_user(ctx)));
    dk_events_emit(b->events, event, data);
    json_decref(data);
}

/* Stores one line of a board's activity ("ann added “Buy milk”") and returns
 * it as {at, text} for the live event (new reference; NULL when it could not
 * be stored: the change itself stands, only its history line is missing). */
static json_t *record(dk_ctx *ctx, boards_svc *b, json_int_t board, const char *what,
                      const json_t *task, const char *tail)
{
    const char *who = json_string_value(json_object_get(dk_ctx_user(ctx), "username"));
    const char *title = json_string_value(json_object_get(task, "title"));
    char *text = dk_ctx_printf(ctx, "%s %s \u201c%s\u201d%s", who ? who : "someone", what,
                               title ? title : "", tail ? tail : "");
    json_int_t at = (json_int_t)dk_wall_ms();
    json_t *params = json_pack("[I, I, s]", board, at, text ? text : "");
    int rc = text != NULL && params != NULL
                 ? dk_db_exec(b->db, "INSERT INTO board_activity (board_id, at, text)"
                                     " VALUES (?, ?, ?)", params, NULL, NULL)
                 : DK_ENOMEM;
    json_decref(params);
    if (rc < 0) {
        dk_log(dk_ctx_log(ctx), DK_LOG_WARN, "activity not recorded",
               json_pack("{s:I, s:s}", "boardId", board, "error", dk_strerror(rc)));
        return NULL;
    }
    /* Keep the newest ACTIVITY_KEPT lines of the board. */
    params = json_pack("[I, I, i]", board, board, ACTIVITY_KEPT);
    dk_db_exec(b->db,
               "DELETE FROM board_activity WHERE board_id = ? AND id <= (SELECT id FROM"
               " board_activity WHERE board_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
               params, NULL, NULL);
    json_decref(params);
    return json_pack("{s:I, s:s}", "at", at, "text", text);
}

/* ------------------------------------------------------------------ */
/* The export job                                                      */

static void progress(boards_svc *b, json_int_t board, int64_t job, const char *event, json_t *extra)
{
    char channel[40];
    snprintf(channel, sizeof(channel), "board:%" JSON_INTEGER_FORMAT, board);
    json_t *d = json_pack("{s:I, s:I}", "boardId", board, "jobId", (json_int_t)job);
    if (d != NULL && extra != NULL)
        json_object_update(d, extra);
    dk_sse_broadcast(b->sse, channel, event, d, NULL);
    json_decref(d);
    json_decref(extra);
}

/* "board.export" {boardId}: writes <exports>/board-<board>-job-<job>.json
 * (through a temporary file, so a download never sees half a file) and
 * reports progress to the board's channel. Idempotent: a retry rewrites the
 * same file. */
static int export_job(dk_job_ctx *jc, const json_t *data, json_t **result, void *user)
{
    boards_svc *b = user;
    dk_db *db = dk_job_db(jc);
    int64_t job = dk_job_id(jc);
    json_int_t board = json_integer_value(json_object_get(data, "boardId"));
    progress(b, board, job, "export.progress", json_pack("{s:i, s:s}", "percent", 0, "step", "start"));

    json_t *params = json_pack("[I]", board);
    json_t *row = NULL, *tasks = NULL;
    int rc = dk_db_query_one(db,
                             "SELECT b.id AS id, b.name AS name, u.username AS owner,"
                             " b.created_at AS \"createdAt\""
                             " FROM board_boards b JOIN board_users u ON u.id = b.owner_id"
                             " WHERE b.id = ?",
                             params, &row);
    if (rc == 0)
        rc = dk_db_query(db, "SELECT " TASK_COLUMNS TASK_FROM " WHERE t.board_id = ? ORDER BY t.id",
                         params, &tasks);
    json_decref(params);
    if (rc == DK_ENOTFOUND)
        return dk_job_fail_final(jc, "board %" JSON_INTEGER_FORMAT " does not exist", board);
    if (rc < 0)
        return dk_job_fail(jc, "database: %s", dk_strerror(rc));
    progress(b, board, job, "export.progress",
             json_pack("{s:i, s:s, s:I}", "percent", 50, "step", "read", "tasks",
                       (json_int_t)json_array_size(tasks)));

    json_t *doc = json_pack("{s:s, s:I, s:o, s:o}", "format", "donkey-board/1", "exportedAt",
                            (json_int_t)dk_wall_ms(), "board", row, "tasks", tasks);
    if (doc == NULL)
        return DK_ENOMEM;
    char name[96], path[1200], tmp[1210];
    snprintf(name, sizeof(name), "board-%" JSON_INTEGER_FORMAT "-job-%" PRId64 ".json", board, job);
    snprintf(path, sizeof(path), "%s/%s", b->exports, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (mkdir(b->exports, 0755) != 0 && errno != EEXIST) {
        json_decref(doc);
        return dk_job_fail(jc, "cannot create %s: %s", b->exports, strerror(errno));
    }
    rc = json_dump_file(doc, tmp, JSON_INDENT(2));
    json_decref(doc);
    if (rc != 0 || rename(tmp, path) != 0) {
        remove(tmp);
        return dk_job_fail(jc, "cannot write %s", path);
    }
    char url[64];
    snprintf(url, sizeof(url), "/boards.download?job=%" PRId64, job);
    *result = json_pack("{s:s, s:I, s:s}", "file", name, "boardId", board, "url", url);
    progress(b, board, job, "export.progress", json_pack("{s:i, s:s}", "percent", 100, "step", "written"));
    /* "export.done" follows the job.board.export.completed event (export_done),
     * which the jobs service emits once the result is committed, so a client
     * that downloads on "export.done" always finds the job completed. */
    return *result != NULL ? 0 : DK_ENOMEM;
}

static int export_done(const char *event, const json_t *data, void *user)
{
    boards_svc *b = user;
    const json_t *r = json_object_get(data, "result");
    const char *url = json_string_value(json_object_get(r, "url"));
    const char *file = json_string_value(json_object_get(r, "file"));
    if (url == NULL || file == NULL)
        return 0;
    progress(b, json_integer_value(json_object_get(r, "boardId")),
             (int64_t)json_integer_value(json_object_get(data, "jobId")), "export.done",
             json_pack("{s:s, s:s}", "url", url, "file", file));
    return 0;
}

/* Cron: deletes export files (and leftover temporaries) older than
 * --export-ttl; a later download of one answers 404. */
static int purge_exports(const char *name, void *user)
{
    boards_svc *b = user;
    DIR *d = opendir(b->exports);
    if (d == NULL)
        return 0;
    time_t cutoff = time(NULL) - (time_t)(board_cfg.export_ttl_ms / 1000);
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "board-", 6) != 0 || strstr(e->d_name, ".json") == NULL)
            continue;
        char path[1400];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", b->exports, e->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_mtime <= cutoff &&
            unlink(path) == 0)
            removed++;
    }
    closedir(d);
    if (removed > 0)
        dk_log(b->log, DK_LOG_INFO, "Deleted old export files",
               json_pack("{s:i}", "deleted", removed));
    return 0;
}

/* ------------------------------------------------------------------ */
/* Plugin life cycle                                                   */

static int mkdir_p(const char *dir)
{
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static int boards_create(dk_plugin_ctx *p, void **out, dk_err *err)
{
    boards_svc *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return DK_ENOMEM;
    const dk_core *core = dk_plugin_core(p);
    b->db = dk_plugin_db(p);
    b->log = dk_plugin_log(p);
    b->events = core->events;
    snprintf(b->exports, sizeof(b->exports), "%s/exports", board_cfg.data_dir);
    if (mkdir_p(b->exports) != 0) {
        free(b);
        return dk_err_set(err, DK_EINVAL, "cannot create the exports directory %s: %s",
                          board_cfg.data_dir, strerror(errno));
    }
    /* The app's services: the core creates both and starts the jobs after
     * the plugins are initialised. */
    b->sse = core->sse;
    b->jobs = core->jobs;
    b->cron = core->cron;
    if (b->sse == NULL || b->jobs == NULL || b->cron == NULL) {
        const char *missing = b->sse == NULL ? "SSE" : b->jobs == NULL ? "jobs" : "cron";
        free(b);
        return dk_err_set(err, DK_ESTATE, "boards: the application has no %s service", missing);
    }
    *out = b;
    return 0;
}

static int boards_init(dk_plugin_ctx *p, void *service, dk_err *err)
{
    boards_svc *b = service;
    int rc = dk_jobs_register(b->jobs, "board.export", export_job, b, NULL);
    if (rc < 0)
        return rc;
    b->sub_id = dk_events_on(b->events, "boards.*", forward_to_sse, b, NULL);
    if (b->sub_id < 0)
        return (int)b->sub_id;
    b->done_id = dk_events_on(b->events, "job.board.export.completed", export_done, b, NULL);
    if (b->done_id < 0)
        return (int)b->done_id;
    return dk_cron_schedule(b->cron, "boards.purgeExports", board_cfg.purge_cron, purge_exports,
                            b, NULL, NULL, b->purge_id, err);
}

static void boards_teardown(dk_plugin_ctx *p, void *service)
{
    boards_svc *b = service;
    if (b->sub_id > 0)
        dk_events_off(b->events, b->sub_id);
    if (b->done_id > 0)
        dk_events_off(b->events, b->done_id);
    b->sub_id = b->done_id = 0;
    if (b->purge_id[0] != '\0')
        dk_cron_unschedule(b->cron, b->purge_id);
    b->purge_id[0] = '\0';
}

static void boards_destroy(dk_plugin_ctx *p, void *service)
{
    free(service);
}

static const dk_plugin boards_plugin = {
    .name = "boards",
    .version = "1.0.0",
    .dependencies = boards_deps,
    .create = boards_create,
    .destroy = boards_destroy,
    .init = boards_init,
    .teardown = boards_teardown,
    .migrations = boards_migrations,
    .events = (const char *const[]){"board.created", "task.added", "task.moved", "task.deleted",
                                    NULL},
    .sse_channels = (const char *const[]){"boards", "board:<id>", NULL},
};

const dk_plugin *board_boards_plugin(void)
{
    return &boards_plugin;
}

/* ------------------------------------------------------------------ */
/* Routes                                                              */

static boards_svc *svc_of(dk_ctx *ctx)
{
    return dk_ctx_service(ctx, "boards");
}

static int board_row(dk_ctx *ctx, boards_svc *b, json_int_t id, json_t **row)
{
    json_t *params = json_pack("[I]", id);
    int rc = dk_db_query_one(b->db,
                             "SELECT b.id AS id, b.name AS name, u.username AS owner,"
                             " b.created_at AS \"createdAt\","
                             " (SELECT COUNT(*) FROM board_tasks t WHERE t.board_id = b.id)"
                             " AS \"taskCount\""
                             " FROM board_boards b JOIN board_users u ON u.id = b.owner_id"
                             " WHERE b.id = ?",
                             params, row);
    json_decref(params);
    if (rc == DK_ENOTFOUND)
        return dk_fail(ctx, DK_HTTP_NOT_FOUND, "No such board");
    return rc < 0 ? dk_fail_code(ctx, rc, "board lookup") : 0;
}

static int task_row(dk_ctx *ctx, boards_svc *b, json_int_t id, json_t **row)
{
    json_t *params = json_pack("[I]", id);
    int rc = dk_db_query_one(b->db, "SELECT " TASK_COLUMNS TASK_FROM " WHERE t.id = ?", params,
                             row);
    json_decref(params);
    if (rc == DK_ENOTFOUND)
        return dk_fail(ctx, DK_HTTP_NOT_FOUND, "No such task");
    return rc < 0 ? dk_fail_code(ctx, rc, "task lookup") : 0;
}

/* {limit?, after?} -> {boards: [...], nextCursor}: boards in id order after
 * the cursor (a board id), one page at a time; nextCursor is null on the
 * last page. A keyset cursor stays right while boards are added. */
static int boards_list(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    boards_svc *b = svc_of(ctx);
    json_int_t limit = json_integer_value(json_object_get(in, "limit"));
    json_int_t after = json_integer_value(json_object_get(in, "after"));
    json_t *rows = NULL;
    /* One row more than asked tells whether another page follows. */
    json_t *params = json_pack("[I, I]", after, limit + 1);
    int rc = dk_db_query(b->db,
                         "SELECT b.id AS id, b.name AS name, u.username AS owner,"
                         " b.created_at AS \"createdAt\","
                         " (SELECT COUNT(*) FROM board_tasks t WHERE t.board_id = b.id)"
                         " AS \"taskCount\""
                         " FROM board_boards b JOIN board_users u ON u.id = b.owner_id"
                         " WHERE b.id > ? ORDER BY b.id LIMIT ?",
                         params, &rows);
    json_decref(params);
    if (rc < 0)
        return dk_fail_code(ctx, rc, "board list");
    json_t *next = json_null();
    if (json_array_size(rows) > (size_t)limit) {
        json_array_remove(rows, (size_t)limit);
        next = json_incref(json_object_get(json_array_get(rows, (size_t)limit - 1), "id"));
    }
    *out = json_pack("{s:o, s:o}", "boards", rows, "nextCursor", next);
    return *out != NULL ? 0 : DK_ENOMEM;
}

/* 403 with {"quota", "limit"} when a per-user quota stopped an insert. */
static int quota_reached(dk_ctx *ctx, const char *what, int limit)
{
    return dk_fail_details(ctx, DK_HTTP_FORBIDDEN,
                           dk_ctx_printf(ctx, "Quota reached: at most %d %s per user", limit, what),
                           json_pack("{s:s, s:i}", "quota", what, "limit", limit));
}

/* {name} -> board */
static int boards_create_route(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    boards_svc *b = svc_of(ctx);
    json_int_t uid = (json_int_t)board_user_id(ctx);
    json_t *params = json_pack("[O, I, I, I, i]", json_object_get(in, "name"), uid,
                               (json_int_t)dk_wall_ms(), uid, board_cfg.max_boards_per_user);
    int64_t id = 0, added = 0;
    /* The count and the insert are one statement, so parallel requests of
     * one user cannot all pass the check on SQLite; on PostgreSQL (read
     * committed) they can overshoot by the requests running at once. */
    int rc = dk_db_exec(b->db,
                        "INSERT INTO board_boards (name, owner_id, created_at)"
                        " SELECT CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS BIGINT)"
                        " WHERE (SELECT COUNT(*) FROM board_boards WHERE owner_id = ?)"
                        " < CAST(? AS BIGINT) RETURNING id",
                        params, &added, &id);
    json_decref(params);
    if (rc < 0)
        return dk_fail_code(ctx, rc, "cannot create the board");
    if (added == 0)
        return quota_reached(ctx, "boards", board_cfg.max_boards_per_user);
    rc = board_row(ctx, b, id, out);
    if (rc < 0)
        return rc;
    emit(ctx, b, "boards.board.created", json_pack("{s:I, s:O}", "boardId", (json_int_t)id, "board", *out));
    return 0;
}

/* {id} -> {board, tasks} */
static int boards_get(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    boards_svc *b = svc_of(ctx);
    json_int_t id = json_integer_value(json_object_get(in, "id"));
    json_t *board = NULL, *tasks = NULL;
    int rc = board_row(ctx, b, id, &board);
    if (rc < 0)
        return rc;
    json_t *params = json_pack("[I]", id);
    rc = dk_db_query(b->db, "SELECT " TASK_COLUMNS TASK_FROM " WHERE t.board_id = ? ORDER BY t.id",
                     params, &tasks);
    json_decref(params);
    if (rc < 0) {
        json_decref(board);
        return dk_fail_code(ctx, rc, "task list");
    }
    *out = json_pack("{s:o, s:o}", "board", board, "tasks", tasks);
    return *out != NULL ? 0 : DK_ENOMEM;
}

/* {boardId, title, column?} -> task */
static int tasks_add(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    boards_svc *b = svc_of(ctx);
    json_int_t board = json_integer_value(json_object_get(in, "boardId"));
    json_t *brow = NULL;
    int rc = board_row(ctx, b, board, &brow);
    if (rc < 0)
        return rc;
    json_decref(brow);
    int64_t now = dk_wall_ms();
    json_int_t uid = (json_int_t)board_user_id(ctx);
    json_t *params = json_pack("[I, O, O, I, I, I, I, i]", board, json_object_get(in, "title"),
                               json_object_get(in, "column"), uid, (json_int_t)now,
                               (json_int_t)now, uid, board_cfg.max_tasks_per_user);
    int64_t id = 0, added = 0;
    rc = dk_db_exec(b->db,
                    "INSERT INTO board_tasks (board_id, title, col, created_by, created_at,"
                    " updated_at) SELECT CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS TEXT),"
                    " CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT)"
                    " WHERE (SELECT COUNT(*) FROM board_tasks WHERE created_by = ?)"
                    " < CAST(? AS BIGINT) RETURNING id",
                    params, &added, &id);
    json_decref(params);
    if (rc < 0)
        return dk_fail_code(ctx, rc, "cannot add the task");
    if (added == 0)
        return quota_reached(ctx, "tasks", board_cfg.max_tasks_per_user);
    rc = task_row(ctx, b, id, out);
    if (rc < 0)
        return rc;
    json_t *line = record(ctx, b, board, "added", *out, NULL);
    emit(ctx, b, "boards.task.added",
         json_pack("{s:I, s:O, s:o*}", "boardId", board, "task", *out, "activity", line));
    return 0;
}

/* {id, column} -> task */
static int tasks_move(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    boards_svc *b = svc_of(ctx);
    json_int_t id = json_integer_value(json_object_get(in, "id"));
    json_t *params = json_pack("[O, I, I]", json_object_get(in, "column"), (json_int_t)dk_wall_ms(), id);
    int64_t changed = 0;
    int rc = dk_db_exec(b->db, "UPDATE board_tasks SET col = ?, updated_at = ? WHERE id = ?", params,
                        &changed, NULL);
    json_decref(params);
    if (rc < 0)
        return dk_fail_code(ctx, rc, "cannot move the task");
    rc = task_row(ctx, b, id, out); /* 404 when changed == 0 */
    if (rc < 0)
        return rc;
    json_int_t board = json_integer_value(json_object_get(*out, "boardId"));
    const char *col = json_string_value(json_object_get(*out, "column"));
    json_t *line = record(ctx, b, board, "moved", *out,
                          dk_ctx_printf(ctx, " to %s", col ? col : "?"));
    emit(ctx, b, "boards.task.moved",
         json_pack("{s:I, s:O, s:o*}", "boardId", board, "task", *out, "activity", line));
    return 0;
}

/* {id} -> {ok, id} */
static int tasks_delete(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    boards_svc *b = svc_of(ctx);
    json_int_t id = json_integer_value(json_object_get(in, "id"));
    json_t *task = NULL;
    int rc = task_row(ctx, b, id, &task);
    if (rc < 0)
        return rc;
    json_t *params = json_pack("[I]", id);
    rc = dk_db_exec(b->db, "DELETE FROM board_tasks WHERE id = ?", params, NULL, NULL);
    json_decref(params);
    if (rc < 0) {
        json_decref(task);
        return dk_fail_code(ctx, rc, "cannot delete the task");
    }
    json_int_t board = json_integer_value(json_object_get(task, "boardId"));
    json_t *line = record(ctx, b, board, "deleted", task, NULL);
    emit(ctx, b, "boards.task.deleted",
         json_pack("{s:I, s:I, s:O, s:o*}", "boardId", board, "id", id, "title",
                   json_object_get(task, "title"), "activity", line));
    json_decref(task);
    *out = json_pack("{s:b, s:I}", "ok", 1, "id", id);
    return *out != NULL ? 0 : DK_ENOMEM;
}

/* {id} -> {items: [{at, text}]}: the board's newest activity lines, newest first. */
static int boards_activity(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    boards_svc *b = svc_of(ctx);
    json_int_t id = json_integer_value(json_object_get(in, "id"));
    json_t *row = NULL, *items = NULL;
    int rc = board_row(ctx, b, id, &row);
    if (rc < 0)
        return rc;
    json_decref(row);
    json_t *params = json_pack("[I, i]", id, ACTIVITY_SHOWN);
    rc = dk_db_query(b->db,
                     "SELECT at, text FROM board_activity WHERE board_id = ?"
                     " ORDER BY id DESC LIMIT ?",
                     params, &items);
    json_decref(params);
    if (rc < 0)
        return dk_fail_code(ctx, rc, "activity list");
    *out = json_pack("{s:o}", "items", items);
    return *out != NULL ? 0 : DK_ENOMEM;
}

/* {id} -> {jobId}: queues "board.export"; progress arrives on the board's channel. */
static int boards_export(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    boards_svc *b = svc_of(ctx);
    json_int_t id = json_integer_value(json_object_get(in, "id"));
    json_t *row = NULL;
    int rc = board_row(ctx, b, id, &row);
    if (rc < 0)
        return rc;
    json_decref(row);
    json_t *data = json_pack("{s:I, s:I}", "boardId", id, "requestedBy", (json_int_t)board_user_id(ctx));
    int64_t job = 0;
    rc = dk_jobs_enqueue(b->jobs, "board.export", data, NULL, &job);
    json_decref(data);
    if (rc < 0)
        return dk_fail_code(ctx, rc, "cannot queue the export");
    *out = json_pack("{s:I}", "jobId", (json_int_t)job);
    return *out != NULL ? 0 : DK_ENOMEM;
}

static bool parse_id(const char *text, json_int_t *out)
{
    if (text == NULL || *text == '\0')
        return false;
    char *end;
    long long v = strtoll(text, &end, 10);
    if (*end != '\0' || v <= 0)
        return false;
    *out = v;
    return true;
}

/* GET /boards.live?board=ID: the board's event stream (channels "board:<id>"
 * and "boards"); without `board`, only "boards" (new boards appear). */
/* Streams are tied to the user (at most --max-streams-per-user open, more
 * are refused with 429) and to the session (log-out closes them). */
static int live_accept(dk_ctx *ctx, dk_request *req, dk_response *res, boards_svc *b,
                       const char *const *channels, size_t n)
{
    dk_sse_accept_options ao = {
        .identity = dk_ctx_printf(ctx, "user:%lld", (long long)board_user_id(ctx)),
        .max_per_identity = (size_t)board_cfg.max_streams_per_user,
        .session = json_string_value(dk_ctx_get(ctx, "board.sessionHash")),
    };
    if (ao.identity == NULL)
        return DK_ENOMEM;
    return dk_sse_accept_ex(b->sse, ctx, req, res, channels, n, &ao, NULL);
}

static int boards_live(dk_ctx *ctx, dk_request *req, dk_response *res, void *user)
{
    boards_svc *b = svc_of(ctx);
    const char *param = dk_request_query_param(req, "board");
    if (param == NULL || *param == '\0') {
        const char *lobby[] = {"boards"};
        return live_accept(ctx, req, res, b, lobby, 1);
    }
    json_int_t id;
    if (!parse_id(param, &id))
        return dk_fail(ctx, DK_HTTP_BAD_REQUEST, "Query parameter 'board' must be a board id");
    json_t *row = NULL;
    int rc = board_row(ctx, b, id, &row);
    if (rc < 0)
        return rc;
    json_decref(row);
    char channel[40];
    snprintf(channel, sizeof(channel), "board:%" JSON_INTEGER_FORMAT, id);
    const char *channels[] = {channel, "boards"};
    return live_accept(ctx, req, res, b, channels, 2);
}

/* GET /boards.download?job=ID: the file a finished export wrote. */
static int boards_download(dk_ctx *ctx, dk_request *req, dk_response *res, void *user)
{
    boards_svc *b = svc_of(ctx);
    json_int_t id;
    if (!parse_id(dk_request_query_param(req, "job"), &id))
        return dk_fail(ctx, DK_HTTP_BAD_REQUEST, "Query parameter 'job' must be a job id");
    json_t *job = NULL;
    int rc = dk_jobs_get(b->jobs, id, &job);
    if (rc == DK_ENOTFOUND)
        return dk_fail(ctx, DK_HTTP_NOT_FOUND, "No such export");
    if (rc < 0)
        return dk_fail_code(ctx, rc, "job lookup");
    const char *status = json_string_value(json_object_get(job, "status"));
    const char *file = json_string_value(json_object_get(json_object_get(job, "result"), "file"));
    bool is_export = strcmp(json_string_value(json_object_get(job, "name")), "board.export") == 0;
    if (!is_export || strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0) {
        json_decref(job);
        return dk_fail(ctx, DK_HTTP_NOT_FOUND, "No such export");
    }
    if (strcmp(status, "completed") != 0 || file == NULL || strchr(file, '/') != NULL) {
        json_decref(job);
        return dk_fail(ctx, DK_HTTP_CONFLICT, "The export is not finished yet");
    }
    char *path = dk_ctx_printf(ctx, "%s/%s", b->exports, file);
    char *disposition = dk_ctx_printf(ctx, "attachment; filename=\"%s\"", file);
    json_decref(job);
    if (path == NULL || disposition == NULL)
        return DK_ENOMEM;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return dk_fail(ctx, DK_HTTP_NOT_FOUND, "The export file is gone");
    char *buf = NULL;
    size_t len = 0;
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (size >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = dk_ctx_alloc(ctx, (size_t)size + 1)))
        len = fread(buf, 1, (size_t)size, f);
    fclose(f);
    if (buf == NULL || len != (size_t)size)
        return dk_fail_internal(ctx, "cannot read %s", path);
    dk_response_set_status(res, 200);
    dk_response_set_header(res, "Content-Type", "application/json");
    dk_response_set_header(res, "Content-Disposition", disposition);
    return dk_response_set_body(res, buf, len);
}

#define ID_IN(key)                                                                               \
    "{\"type\":\"object\",\"properties\":{\"" key "\":{\"type\":\"integer\",\"minimum\":1}},"   \
    "\"required\":[\"" key "\"],\"additionalProperties\":false}"
#define COLUMN "{\"type\":\"string\",\"enum\":[\"todo\",\"doing\",\"done\"]}"
/* A name or title must hold something besides white space. */
#define NOT_BLANK "\"pattern\":\"\\\\S\""
#define BOARD                                                                                    \
    "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\"},"                       \
    "\"name\":{\"type\":\"string\"},\"owner\":{\"type\":\"string\"},"                           \
    "\"createdAt\":{\"type\":\"integer\"},\"taskCount\":{\"type\":\"integer\"}},"               \
    "\"required\":[\"id\",\"name\",\"owner\",\"createdAt\",\"taskCount\"]}"
#define TASK                                                                                     \
    "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\"},"                       \
    "\"boardId\":{\"type\":\"integer\"},\"title\":{\"type\":\"string\"},"                       \
    "\"column\":" COLUMN ",\"createdBy\":{\"type\":\"string\"},"                                \
    "\"createdAt\":{\"type\":\"integer\"},\"updatedAt\":{\"type\":\"integer\"}},"               \
    "\"required\":[\"id\",\"boardId\",\"title\",\"column\",\"createdBy\"]}"

int board_boards_routes(dk_app *app)
{
    int rc = 0;
    dk_router *r = dk_router_new("boards");
    if (r == NULL)
        return DK_ENOMEM;
    rc |= board_router_guards(r);
    rc |= dk_router_use(r, "auth", NULL);
    rc |= dk_route_typed(r, "list",
                         "{\"type\":\"object\",\"properties\":{"
                         "\"limit\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":200,"
                         "\"default\":50},"
                         "\"after\":{\"type\":\"integer\",\"minimum\":0,\"default\":0}},"
                         "\"additionalProperties\":false}",
                         "{\"type\":\"object\",\"properties\":{\"boards\":{\"type\":\"array\","
                         "\"items\":" BOARD "},\"nextCursor\":{\"type\":[\"integer\",\"null\"]}},"
                         "\"required\":[\"boards\",\"nextCursor\"]}",
                         boards_list, NULL);
    rc |= dk_route_typed(r, "create",
                         "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\","
                         "\"minLength\":1,\"maxLength\":100," NOT_BLANK "}},\"required\":[\"name\"],"
                         "\"additionalProperties\":false}",
                         BOARD, boards_create_route, NULL);
    rc |= dk_route_typed(r, "get", ID_IN("id"),
                         "{\"type\":\"object\",\"properties\":{\"board\":" BOARD ","
                         "\"tasks\":{\"type\":\"array\",\"items\":" TASK "}},"
                         "\"required\":[\"board\",\"tasks\"]}",
                         boards_get, NULL);
    rc |= dk_route_typed(r, "export", ID_IN("id"),
                         "{\"type\":\"object\",\"properties\":{\"jobId\":{\"type\":\"integer\"}},"
                         "\"required\":[\"jobId\"]}",
                         boards_export, NULL);
    rc |= dk_route_typed(r, "activity", ID_IN("id"),
                         "{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\","
                         "\"items\":{\"type\":\"object\",\"properties\":{"
                         "\"at\":{\"type\":\"integer\"},\"text\":{\"type\":\"string\"}},"
                         "\"required\":[\"at\",\"text\"]}}},\"required\":[\"items\"]}",
                         boards_activity, NULL);
    rc |= dk_route_raw(r, "live", DK_METHOD_GET, boards_live, NULL);
    rc |= dk_route_raw(r, "download", DK_METHOD_GET, boards_download, NULL);
    rc |= dk_app_use(app, r);

    dk_router *t = dk_router_new("tasks");
    if (t == NULL)
        return DK_ENOMEM;
    rc |= board_router_guards(t);
    rc |= dk_router_use(t, "auth", NULL);
    rc |= dk_route_typed(t, "add",
                         "{\"type\":\"object\",\"properties\":{"
                         "\"boardId\":{\"type\":\"integer\",\"minimum\":1},"
                         "\"title\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200,"
                         NOT_BLANK "},"
                         "\"column\":{\"type\":\"string\",\"enum\":[\"todo\",\"doing\",\"done\"],"
                         "\"default\":\"todo\"}},"
                         "\"required\":[\"boardId\",\"title\"],\"additionalProperties\":false}",
                         TASK, tasks_add, NULL);
    rc |= dk_route_typed(t, "move",
                         "{\"type\":\"object\",\"properties\":{"
                         "\"id\":{\"type\":\"integer\",\"minimum\":1},\"column\":" COLUMN "},"
                         "\"required\":[\"id\",\"column\"],\"additionalProperties\":false}",
                         TASK, tasks_move, NULL);
    rc |= dk_route_typed(t, "delete", ID_IN("id"),
                         "{\"type\":\"object\",\"properties\":{\"ok\":{\"type\":\"boolean\"},"
                         "\"id\":{\"type\":\"integer\"}},\"required\":[\"ok\",\"id\"]}",
                         tasks_delete, NULL);
    rc |= dk_app_use(app, t);
    return rc;
}
