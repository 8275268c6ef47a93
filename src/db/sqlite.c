/* SQLite engine: URL parsing, connection set-up, a per-connection statement
 * cache, parameter binding and row conversion. */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "db/internal.h"

/* Prepared statements kept per connection, least recently used evicted. */
#define STMT_CACHE_SIZE 32
/* File databases get a pool of this many connections (WAL lets readers run
 * beside the writer); the in-memory database has exactly one. */
#define SQLITE_POOL_SIZE 8

typedef struct sqlite_cfg {
    char *path;
    bool memory;
} sqlite_cfg;

typedef struct cached_stmt {
    char *sql;
    sqlite3_stmt *stmt;
    uint64_t used;
} cached_stmt;

typedef struct sqlite_conn {
    sqlite3 *db;
    cached_stmt cache[STMT_CACHE_SIZE];
    uint64_t tick;
} sqlite_conn;

/* Engine result code -> DK_E*, recording the connection's message. */
static int fail(sqlite3 *db, int src)
{
    int code;
    switch (src & 0xff) {
    case SQLITE_CONSTRAINT:
        code = DK_ECONSTRAINT;
        break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        code = DK_EBUSY;
        break;
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
        code = DK_EUNAVAILABLE;
        break;
    case SQLITE_NOMEM:
        code = DK_ENOMEM;
        break;
    case SQLITE_RANGE:
    case SQLITE_MISUSE:
        code = DK_EINVAL;
        break;
    default:
        code = DK_EDB;
        break;
    }
    return dk__db_seterr(code, "%s", db ? sqlite3_errmsg(db) : sqlite3_errstr(src));
}

static int sq_parse(const char *url, void **out_cfg, int *out_max_conns, dk_err *err)
{
    const char *rest = url + strlen("sqlite:");
    sqlite_cfg *cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL)
        return dk_err_set(err, DK_ENOMEM, "out of memory");

    if (strcmp(rest, ":memory:") == 0) {
        cfg->memory = true;
        rest = ":memory:";
    } else if (strncmp(rest, "//", 2) == 0) {
        rest += 2; /* sqlite:///abs -> /abs, sqlite://rel -> rel */
    }
    if (*rest == '\0') {
        free(cfg);
        return dk_err_set(err, DK_EINVAL, "SQLite URL '%s' has no path", url);
    }
    cfg->path = strdup(rest);
    if (cfg->path == NULL) {
        free(cfg);
        return dk_err_set(err, DK_ENOMEM, "out of memory");
    }
    *out_cfg = cfg;
    *out_max_conns = cfg->memory ? 1 : SQLITE_POOL_SIZE;
    return 0;
}

static void sq_free_cfg(void *p)
{
    sqlite_cfg *cfg = p;
    if (cfg == NULL)
        return;
    free(cfg->path);
    free(cfg);
}

static void sq_disconnect(void *p)
{
    sqlite_conn *c = p;
    if (c == NULL)
        return;
    for (int i = 0; i < STMT_CACHE_SIZE; i++) {
        sqlite3_finalize(c->cache[i].stmt);
        free(c->cache[i].sql);
    }
    sqlite3_close_v2(c->db);
    free(c);
}

static int sq_connect(void *p, void **out_conn)
{
    sqlite_cfg *cfg = p;
    sqlite_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return dk__db_seterr(DK_ENOMEM, "out of memory");

    /* The pool hands a connection to one thread at a time, so SQLite's own
     * per-connection mutex is not needed. */
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(cfg->path, &c->db, flags, NULL);
    if (rc != SQLITE_OK) {
        int code = fail(c->db, rc);
        if (code == DK_EDB)
            code = dk__db_seterr(DK_EUNAVAILABLE, "%s", sqlite3_errmsg(c->db));
        sq_disconnect(c);
        return code;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, 5000);
    const char *pragmas = cfg->memory ? "PRAGMA foreign_keys=ON;"
                                      : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                                        " PRAGMA foreign_keys=ON;";
    rc = sqlite3_exec(c->db, pragmas, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        int code = fail(c->db, rc);
        sq_disconnect(c);
        return code;
    }
    *out_conn = c;
    return 0;
}

static bool sq_usable(void *conn)
{
    (void)conn;
    return true;
}

/* A prepared statement for `sql` from the cache (or newly prepared into it).
 * The statement is reset and unbound when returned to the cache by release(). */
static int prepare(sqlite_conn *c, const char *sql, sqlite3_stmt **out)
{
    cached_stmt *victim = &c->cache[0];
    for (int i = 0; i < STMT_CACHE_SIZE; i++) {
        cached_stmt *e = &c->cache[i];
        if (e->sql != NULL && strcmp(e->sql, sql) == 0) {
            e->used = ++c->tick;
            *out = e->stmt;
            return 0;
        }
        if (e->sql == NULL || (victim->sql != NULL && e->used < victim->used))
            victim = e;
    }

    sqlite3_stmt *stmt = NULL;
    const char *tail = NULL;
    int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, &tail);
    if (rc != SQLITE_OK)
        return fail(c->db, rc);
    if (stmt == NULL)
        return dk__db_seterr(DK_EINVAL, "empty SQL statement");
    while (tail && (*tail == ' ' || *tail == '\t' || *tail == '\n' || *tail == '\r' ||
                    *tail == ';'))
        tail++;
    if (tail && *tail) {
        sqlite3_finalize(stmt);
        return dk__db_seterr(DK_EINVAL, "more than one statement; use dk_db_exec_script()");
    }
    char *copy = strdup(sql);
    if (copy == NULL) {
        sqlite3_finalize(stmt);
        return dk__db_seterr(DK_ENOMEM, "out of memory");
    }
    sqlite3_finalize(victim->stmt);
    free(victim->sql);
    victim->sql = copy;
    victim->stmt = stmt;
    victim->used = ++c->tick;
    *out = stmt;
    return 0;
}

static void release(sqlite3_stmt *stmt)
{
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
}

static int bind(sqlite_conn *c, sqlite3_stmt *stmt, const json_t *params)
{
    int want = sqlite3_bind_parameter_count(stmt);
    int have = params ? (int)json_array_size(params) : 0;
    if (want != have)
        return dk__db_seterr(DK_EINVAL, "statement has %d placeholders but %d parameters given",
                             want, have);
    for (int i = 0; i < have; i++) {
        const json_t *v = json_array_get(params, (size_t)i);
        int rc;
        switch (json_typeof(v)) {
        case JSON_STRING:
            rc = sqlite3_bind_text64(stmt, i + 1, json_string_value(v), json_string_length(v),
                                     SQLITE_STATIC, SQLITE_UTF8);
            break;
        case JSON_INTEGER:
            rc = sqlite3_bind_int64(stmt, i + 1, json_integer_value(v));
            break;
        case JSON_REAL:
            rc = sqlite3_bind_double(stmt, i + 1, json_real_value(v));
            break;
        case JSON_TRUE:
            rc = sqlite3_bind_int(stmt, i + 1, 1);
            break;
        case JSON_FALSE:
            rc = sqlite3_bind_int(stmt, i + 1, 0);
            break;
        case JSON_NULL:
            rc = sqlite3_bind_null(stmt, i + 1);
            break;
        default: {
            char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            if (text == NULL)
                return dk__db_seterr(DK_ENOMEM, "out of memory");
            rc = sqlite3_bind_text(stmt, i + 1, text, -1, free);
            break;
        }
        }
        if (rc != SQLITE_OK)
            return fail(c->db, rc);
    }
    return 0;
}

static int sq_exec(void *p, const char *sql, const json_t *params, int64_t *out_changes,
                   int64_t *out_last_id)
{
    sqlite_conn *c = p;
    sqlite3_stmt *stmt;

    int rc = prepare(c, sql, &stmt);
    if (rc != 0)
        return rc;
    rc = bind(c, stmt, params);
    if (rc == 0) {
        int src;
        while ((src = sqlite3_step(stmt)) == SQLITE_ROW)
            ;
        if (src != SQLITE_DONE) {
            rc = fail(c->db, src);
        } else {
            *out_changes = sqlite3_changes64(c->db);
            *out_last_id = sqlite3_last_insert_rowid(c->db);
        }
    }
    release(stmt);
    return rc;
}

static json_t *column_value(sqlite3_stmt *stmt, int i)
{
    switch (sqlite3_column_type(stmt, i)) {
    case SQLITE_INTEGER:
        return json_integer(sqlite3_column_int64(stmt, i));
    case SQLITE_FLOAT:
        return json_real(sqlite3_column_double(stmt, i));
    case SQLITE_NULL:
        return json_null();
    default: {
        /* TEXT, and BLOB read as text: both must be valid UTF-8 for JSON. */
        const unsigned char *text = sqlite3_column_text(stmt, i);
        int len = sqlite3_column_bytes(stmt, i);
        return json_stringn(text ? (const char *)text : "", (size_t)len);
    }
    }
}

static json_t *sq_cell(void *row, int i, const char **name)
{
    *name = sqlite3_column_name(row, i);
    return column_value(row, i);
}

static int sq_query(void *p, const char *sql, const json_t *params, size_t max_rows,
                    json_t **out_rows)
{
    sqlite_conn *c = p;
    sqlite3_stmt *stmt;

    int rc = prepare(c, sql, &stmt);
    if (rc != 0)
        return rc;
    json_t *rows = json_array();
    if (rows == NULL) {
        release(stmt);
        return dk__db_seterr(DK_ENOMEM, "out of memory");
    }
    rc = bind(c, stmt, params);
    int ncol = sqlite3_column_count(stmt);
    while (rc == 0) {
        if (max_rows > 0 && json_array_size(rows) >= max_rows)
            break;
        int src = sqlite3_step(stmt);
        if (src == SQLITE_DONE)
            break;
        if (src != SQLITE_ROW) {
            rc = fail(c->db, src);
            break;
        }
        rc = dk__db_add_row(rows, ncol, sq_cell, stmt, "column '%s' is not valid UTF-8 text");
    }
    release(stmt);
    if (rc != 0) {
        json_decref(rows);
        return rc;
    }
    *out_rows = rows;
    return 0;
}

static int sq_script(void *p, const char *sql)
{
    sqlite_conn *c = p;
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : fail(c->db, rc);
}

const dk__db_engine dk__db_sqlite = {
    .name = "sqlite",
    .begin_sql = "BEGIN IMMEDIATE",
    .parse = sq_parse,
    .free_cfg = sq_free_cfg,
    .connect = sq_connect,
    .disconnect = sq_disconnect,
    .usable = sq_usable,
    .exec = sq_exec,
    .query = sq_query,
    .script = sq_script,
};
