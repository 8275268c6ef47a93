/* Database layer: URL dispatch, the connection pool, thread-bound
 * transactions and the engine-independent parts of the API. */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "db/internal.h"
#include "base/internal.h"
#include "base/offload.h"
#include "base/stats.h"

/* How long a call waits for a free connection before giving up (DK_EBUSY). */
#define DK_DB_CHECKOUT_TIMEOUT_MS 30000

struct dk_db {
    const dk__db_engine *engine;
    void *cfg;
    uint64_t id; /* unique per handle, so thread-local state never matches a reused address */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    void **idle; /* stack of idle connections, capacity max_conns */
    int n_idle;
    int n_open; /* idle + checked out + being opened */
    int max_conns;
    int n_waiting; /* callers waiting for a connection (metrics) */
};

static dk__hist db_hist; /* statement durations, every handle (base/prom.h) */

dk__hist *dk__db_hist(void)
{
    return &db_hist;
}

/* A transaction open on the calling thread: the connection it holds and its depth. */
typedef struct tx_binding {
    uint64_t db_id;
    void *conn;
    int depth;
    struct tx_binding *next;
} tx_binding;

static _Thread_local tx_binding *tls_tx;
static _Thread_local char tls_errmsg[512];
static _Thread_local uint64_t tls_err_db;
static atomic_uint_fast64_t next_db_id = 1;

int dk__db_seterr(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tls_errmsg, sizeof(tls_errmsg), fmt, ap);
    va_end(ap);
    tls_err_db = 0;
    return code;
}

/* Attributes a failure the engine just recorded to `db`. */
static int tag(const dk_db *db, int rc)
{
    if (rc < 0)
        tls_err_db = db->id;
    return rc;
}

const char *dk_db_errmsg(const dk_db *db)
{
    if (db == NULL || tls_err_db != db->id)
        return "";
    return tls_errmsg;
}

/* ------------------------------------------------------------------ */
/* Placeholder rewriting (PostgreSQL)                                  */

/* Length of a dollar-quote tag at `p` ("$$" or "$name$"), or 0. */
static size_t dollar_tag_len(const char *p)
{
    size_t i = 1;
    if (p[0] != '$')
        return 0;
    if ((p[1] >= '0' && p[1] <= '9'))
        return 0; /* $1 is a parameter, not a tag */
    while (p[i] == '_' || (p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
           (p[i] >= '0' && p[i] <= '9') || (unsigned char)p[i] >= 0x80)
        i++;
    return p[i] == '$' ? i + 1 : 0;
}

static bool ident_char(char c)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (unsigned char)c >= 0x80;
}

int dk__db_rewrite_placeholders(const char *sql, char **out, int *out_count)
{
    dk__buf b = {0};
    int n = 0;
    const char *p = sql;
    int rc = 0;

    while (*p && rc == 0) {
        const char *start = p;
        if (*p == '\'' || *p == '"') {
            char q = *p;
            /* E'...' strings treat backslash as an escape. */
            bool esc = q == '\'' && p > sql && (p[-1] == 'E' || p[-1] == 'e') &&
                       (p - 1 == sql || !ident_char(p[-2]));
            p++;
            while (*p) {
                if (esc && *p == '\\' && p[1]) {
                    p += 2;
                } else if (*p == q) {
                    if (p[1] == q) {
                        p += 2; /* doubled quote */
                    } else {
                        p++;
                        break;
                    }
                } else {
                    p++;
                }
            }
            rc = dk__buf_append(&b, start, (size_t)(p - start));
        } else if (dk__sql_comment_end(p) != p) {
            p = dk__sql_comment_end(p);
            rc = dk__buf_append(&b, start, (size_t)(p - start));
        } else if (*p == '$' && (p == sql || !ident_char(p[-1])) && dollar_tag_len(p) > 0) {
            size_t tl = dollar_tag_len(p);
            const char *end = p + tl;
            while (*end && strncmp(end, p, tl) != 0)
                end++;
            p = *end ? end + tl : end;
            rc = dk__buf_append(&b, start, (size_t)(p - start));
        } else if (*p == '?') {
            rc = dk__buf_appendf(&b, "$%d", ++n);
            p++;
        } else {
            while (*p && *p != '\'' && *p != '"' && *p != '-' && *p != '/' && *p != '$' &&
                   *p != '?')
                p++;
            if (p == start)
                p++; /* a lone '-', '/' or '$' */
            rc = dk__buf_append(&b, start, (size_t)(p - start));
        }
    }
    if (rc == 0 && b.data == NULL)
        rc = dk__buf_append(&b, "", 0);
    if (rc != 0) {
        dk__buf_free(&b);
        return DK_ENOMEM;
    }
    *out = b.data;
    *out_count = n;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Open / close                                                        */

/* The URL for messages: a password ("postgres://u:secret@h/db") is masked. */
static void url_for_message(const char *url, char *out, size_t len)
{
    const char *scheme = strstr(url, "://");
    const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
    const char *colon = at ? memchr(scheme + 3, ':', (size_t)(at - scheme - 3)) : NULL;
    if (colon != NULL)
        snprintf(out, len, "%.*s:***%s", (int)(colon - url), url, at);
    else
        snprintf(out, len, "%s", url);
}

/* A hint for a SQLite file that cannot be opened: its directory is missing. */
static const char *sqlite_hint(const char *url, char *buf, size_t len)
{
    const char *path = url + 7;
    if (strncmp(path, "//", 2) == 0)
        path += 2;
    const char *slash = strrchr(path, '/');
    if (strcmp(path, ":memory:") == 0 || slash == NULL || slash == path)
        return "";
    char dir[512];
    snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    struct stat st;
    if (stat(dir, &st) != 0)
        snprintf(buf, len, " (directory %s does not exist)", dir);
    else if (!S_ISDIR(st.st_mode))
        snprintf(buf, len, " (%s is not a directory)", dir);
    else
        return "";
    return buf;
}

dk_db *dk_db_open(const char *url, dk_err *err)
{
    const dk__db_engine *engine;

    if (url == NULL) {
        dk_err_set(err, DK_EINVAL, "database URL is missing");
        return NULL;
    }
    if (strncmp(url, "sqlite:", 7) == 0) {
        engine = &dk__db_sqlite;
    } else if (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0) {
        engine = &dk__db_pg;
    } else {
        char shown[300];
        url_for_message(url, shown, sizeof(shown));
        if (strstr(url, "://") == NULL && url[0] != '\0')
            dk_err_set(err, DK_EINVAL,
                       "unsupported database URL '%s': did you mean sqlite:%s? (URLs are "
                       "sqlite:PATH, sqlite::memory: or postgres://...)",
                       shown, shown);
        else
            dk_err_set(err, DK_EINVAL,
                       "unsupported database URL '%s' (expected sqlite:PATH, sqlite::memory: or "
                       "postgres://...)",
                       shown);
        return NULL;
    }

    dk_db *db = calloc(1, sizeof(*db));
    if (db == NULL) {
        dk_err_set(err, DK_ENOMEM, "out of memory");
        return NULL;
    }
    db->engine = engine;
    db->id = atomic_fetch_add(&next_db_id, 1);
    if (engine->parse(url, &db->cfg, &db->max_conns, err) != 0)
        goto fail_free;
    if (db->max_conns < 1)
        db->max_conns = 1;
    db->idle = calloc((size_t)db->max_conns, sizeof(void *));
    if (db->idle == NULL) {
        dk_err_set(err, DK_ENOMEM, "out of memory");
        goto fail_cfg;
    }

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int prc = pthread_cond_init(&db->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (prc != 0) {
        dk_err_set(err, DK_ENOMEM, "cannot create condition variable");
        goto fail_idle;
    }
    if (pthread_mutex_init(&db->lock, NULL) != 0) {
        dk_err_set(err, DK_ENOMEM, "cannot create mutex");
        goto fail_cond;
    }

    /* Open the first connection now so a bad URL or password fails at start-up. */
    void *conn = NULL;
    int rc = engine->connect(db->cfg, &conn);
    if (rc != 0) {
        char shown[300], hint[600];
        url_for_message(url, shown, sizeof(shown));
        /* libpq's messages span lines ("...failed: refused\n\tIs the server
         * running..."): one line. */
        char *w = tls_errmsg;
        for (const char *c = tls_errmsg; *c; c++) {
            bool space = *c == '\n' || *c == '\t' || *c == ' ';
            if (!space)
                *w++ = *c;
            else if (w > tls_errmsg && w[-1] != ' ')
                *w++ = ' ';
        }
        while (w > tls_errmsg && w[-1] == ' ')
            w--;
        *w = '\0';
        dk_err_set(err, rc, "cannot open database %s: %s%s", shown, tls_errmsg,
                   engine == &dk__db_sqlite ? sqlite_hint(url, hint, sizeof(hint)) : "");
        goto fail_lock;
    }
    db->idle[db->n_idle++] = conn;
    db->n_open = 1;
    return db;

fail_lock:
    pthread_mutex_destroy(&db->lock);
fail_cond:
    pthread_cond_destroy(&db->cond);
fail_idle:
    free(db->idle);
fail_cfg:
    engine->free_cfg(db->cfg);
fail_free:
    free(db);
    return NULL;
}

void dk_db_close(dk_db *db)
{
    if (db == NULL)
        return;
    for (int i = 0; i < db->n_idle; i++)
        db->engine->disconnect(db->idle[i]);
    pthread_mutex_destroy(&db->lock);
    pthread_cond_destroy(&db->cond);
    free(db->idle);
    db->engine->free_cfg(db->cfg);
    free(db);
}

const char *dk_db_engine(const dk_db *db)
{
    return db ? db->engine->name : "";
}

/* ------------------------------------------------------------------ */
/* Pool                                                                */

static tx_binding *find_tx(const dk_db *db)
{
    for (tx_binding *t = tls_tx; t; t = t->next)
        if (t->db_id == db->id)
            return t;
    return NULL;
}

/* Takes a connection: an idle one, a new one while under the limit, or waits. */
static int checkout(dk_db *db, void **out_conn)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += DK_DB_CHECKOUT_TIMEOUT_MS / 1000;

    pthread_mutex_lock(&db->lock);
    for (;;) {
        if (db->n_idle > 0) {
            void *conn = db->idle[--db->n_idle];
            pthread_mutex_unlock(&db->lock);
            if (db->engine->usable(conn)) {
                *out_conn = conn;
                return 0;
            }
            /* The server dropped it: replace it with a fresh connection. */
            db->engine->disconnect(conn);
            int rc = db->engine->connect(db->cfg, out_conn);
            if (rc != 0) {
                pthread_mutex_lock(&db->lock);
                db->n_open--;
                pthread_cond_signal(&db->cond);
                pthread_mutex_unlock(&db->lock);
            }
            return rc;
        }
        if (db->n_open < db->max_conns) {
            db->n_open++;
            pthread_mutex_unlock(&db->lock);
            int rc = db->engine->connect(db->cfg, out_conn);
            if (rc != 0) {
                pthread_mutex_lock(&db->lock);
                db->n_open--;
                pthread_cond_signal(&db->cond);
                pthread_mutex_unlock(&db->lock);
            }
            return rc;
        }
        db->n_waiting++;
        int wrc = pthread_cond_timedwait(&db->cond, &db->lock, &deadline);
        db->n_waiting--;
        if (wrc == ETIMEDOUT && db->n_idle == 0 && db->n_open >= db->max_conns) {
            pthread_mutex_unlock(&db->lock);
            return dk__db_seterr(DK_EBUSY, "no free database connection after %d ms",
                                 DK_DB_CHECKOUT_TIMEOUT_MS);
        }
    }
}

static void checkin(dk_db *db, void *conn)
{
    bool keep = db->engine->usable(conn);
    pthread_mutex_lock(&db->lock);
    if (keep && db->n_open > db->max_conns)
        keep = false; /* the pool was made smaller */
    if (keep)
        db->idle[db->n_idle++] = conn;
    else
        db->n_open--;
    pthread_cond_signal(&db->cond);
    pthread_mutex_unlock(&db->lock);
    if (!keep)
        db->engine->disconnect(conn);
}

/* The connection for a call: the thread's transaction connection, or a pooled
 * one (*pooled set so the caller returns it). */
static int acquire(dk_db *db, void **conn, bool *pooled)
{
    tx_binding *t = find_tx(db);
    if (t != NULL) {
        *conn = t->conn;
        *pooled = false;
        return 0;
    }
    *pooled = true;
    return checkout(db, conn);
}

/* ------------------------------------------------------------------ */
/* Statements                                                          */

static int check_params(const json_t *params)
{
    if (params != NULL && !json_is_array(params))
        return dk__db_seterr(DK_EINVAL, "parameters must be a JSON array");
    return 0;
}

static int do_exec(dk_db *db, const char *sql, const json_t *params, int64_t *out_changes,
                   int64_t *out_last_id)
{
    void *conn;
    bool pooled;
    int64_t changes = 0, last_id = 0;

    if (db == NULL || sql == NULL)
        return dk__db_seterr(DK_EINVAL, "missing database or SQL");
    int rc = check_params(params);
    if (rc == 0)
        rc = acquire(db, &conn, &pooled);
    if (rc == 0) {
        uint64_t t0 = dk__mono_us();
        rc = db->engine->exec(conn, sql, params, &changes, &last_id);
        dk__hist_add(&db_hist, dk__mono_us() - t0);
        if (pooled)
            checkin(db, conn);
    }
    if (out_changes)
        *out_changes = rc == 0 ? changes : 0;
    if (out_last_id)
        *out_last_id = rc == 0 ? last_id : 0;
    return tag(db, rc);
}

static int do_query_rows(dk_db *db, const char *sql, const json_t *params, size_t max_rows,
                         json_t **out_rows)
{
    void *conn;
    bool pooled;

    *out_rows = NULL;
    if (db == NULL || sql == NULL)
        return dk__db_seterr(DK_EINVAL, "missing database or SQL");
    int rc = check_params(params);
    if (rc == 0)
        rc = acquire(db, &conn, &pooled);
    if (rc == 0) {
        uint64_t t0 = dk__mono_us();
        rc = db->engine->query(conn, sql, params, max_rows, out_rows);
        dk__hist_add(&db_hist, dk__mono_us() - t0);
        if (pooled)
            checkin(db, conn);
    }
    return tag(db, rc);
}

static int query_rows(dk_db *db, const char *sql, const json_t *params, size_t max_rows,
                      json_t **out_rows);

int dk_db_query(dk_db *db, const char *sql, const json_t *params, json_t **out_rows)
{
    if (out_rows == NULL)
        return dk__db_seterr(DK_EINVAL, "out_rows is NULL");
    return query_rows(db, sql, params, 0, out_rows);
}

int dk_db_query_one(dk_db *db, const char *sql, const json_t *params, json_t **out_row)
{
    json_t *rows;

    if (out_row == NULL)
        return dk__db_seterr(DK_EINVAL, "out_row is NULL");
    *out_row = NULL;
    int rc = query_rows(db, sql, params, 1, &rows);
    if (rc != 0)
        return rc;
    json_t *row = json_array_get(rows, 0);
    if (row == NULL) {
        json_decref(rows);
        return DK_ENOTFOUND;
    }
    *out_row = json_incref(row);
    json_decref(rows);
    return 0;
}

static int run_script(dk_db *db, void *conn, const char *sql)
{
    return db->engine->script(conn, sql);
}

static int do_exec_script(dk_db *db, const char *sql)
{
    void *conn;
    bool pooled;

    if (db == NULL || sql == NULL)
        return dk__db_seterr(DK_EINVAL, "missing database or SQL");
    int rc = acquire(db, &conn, &pooled);
    if (rc == 0) {
        rc = run_script(db, conn, sql);
        if (pooled)
            checkin(db, conn);
    }
    return tag(db, rc);
}

int dk_db_ping(dk_db *db)
{
    json_t *rows = NULL;
    int rc = dk_db_query(db, "SELECT 1", NULL, &rows);
    json_decref(rows);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Transactions                                                        */

static void unbind(tx_binding *t)
{
    for (tx_binding **pp = &tls_tx; *pp; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    }
    free(t);
}

static int do_begin(dk_db *db)
{
    char sql[48];

    if (db == NULL)
        return dk__db_seterr(DK_EINVAL, "missing database");
    tx_binding *t = find_tx(db);
    if (t != NULL) {
        snprintf(sql, sizeof(sql), "SAVEPOINT sp_%d", t->depth + 1);
        int rc = run_script(db, t->conn, sql);
        if (rc == 0)
            t->depth++;
        return tag(db, rc);
    }

    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return tag(db, dk__db_seterr(DK_ENOMEM, "out of memory"));
    int rc = checkout(db, &t->conn);
    if (rc != 0) {
        free(t);
        return tag(db, rc);
    }
    rc = run_script(db, t->conn, db->engine->begin_sql);
    if (rc != 0) {
        checkin(db, t->conn);
        free(t);
        return tag(db, rc);
    }
    t->db_id = db->id;
    t->depth = 1;
    t->next = tls_tx;
    tls_tx = t;
    return 0;
}

static int do_commit(dk_db *db)
{
    char sql[48];

    if (db == NULL)
        return dk__db_seterr(DK_EINVAL, "missing database");
    tx_binding *t = find_tx(db);
    if (t == NULL)
        return tag(db, dk__db_seterr(DK_ESTATE, "no transaction is open on this thread"));
    if (t->depth > 1) {
        snprintf(sql, sizeof(sql), "RELEASE SAVEPOINT sp_%d", t->depth);
        int rc = run_script(db, t->conn, sql);
        t->depth--; /* the level ends either way; a failure surfaces at the outer commit */
        return tag(db, rc);
    }
    int rc = run_script(db, t->conn, "COMMIT");
    if (rc != 0) {
        /* Keep the commit error for the caller; the rollback only cleans up. */
        char saved[sizeof(tls_errmsg)];
        memcpy(saved, tls_errmsg, sizeof(saved));
        run_script(db, t->conn, "ROLLBACK");
        memcpy(tls_errmsg, saved, sizeof(saved));
    }
    checkin(db, t->conn);
    unbind(t);
    return tag(db, rc);
}

static int do_rollback(dk_db *db)
{
    char sql[96];

    if (db == NULL)
        return dk__db_seterr(DK_EINVAL, "missing database");
    tx_binding *t = find_tx(db);
    if (t == NULL)
        return tag(db, dk__db_seterr(DK_ESTATE, "no transaction is open on this thread"));
    if (t->depth > 1) {
        snprintf(sql, sizeof(sql), "ROLLBACK TO SAVEPOINT sp_%d; RELEASE SAVEPOINT sp_%d",
                 t->depth, t->depth);
        int rc = run_script(db, t->conn, sql);
        t->depth--;
        return tag(db, rc);
    }
    int rc = run_script(db, t->conn, "ROLLBACK");
    checkin(db, t->conn);
    unbind(t);
    return tag(db, rc);
}

static int do_transaction(dk_db *db, dk_db_tx_fn fn, void *user)
{
    if (fn == NULL)
        return dk__db_seterr(DK_EINVAL, "missing transaction function");
    int rc = do_begin(db);
    if (rc != 0)
        return rc;
    int frc = fn(db, user);
    if (frc != 0) {
        char saved[sizeof(tls_errmsg)];
        uint64_t saved_db = tls_err_db;
        memcpy(saved, tls_errmsg, sizeof(saved));
        do_rollback(db);
        memcpy(tls_errmsg, saved, sizeof(saved));
        tls_err_db = saved_db;
        return frc;
    }
    return do_commit(db);
}

/* ------------------------------------------------------------------ */
/* Calls from a request's fiber (src/base/offload.h)                   */

/* In a request handler, each call runs on an I/O thread while the HTTP
 * thread serves other requests. The request's open transactions travel with
 * the call (tls_tx is swapped in and out), so a transaction belongs to the
 * request, not to whichever thread runs its statements; the error message
 * comes back to the calling thread for dk_db_errmsg(). */
enum { OP_EXEC, OP_QUERY, OP_SCRIPT, OP_BEGIN, OP_COMMIT, OP_ROLLBACK, OP_TX };

typedef struct db_call {
    int op;
    dk_db *db;
    const char *sql;
    const json_t *params;
    int64_t *changes, *last_id;
    size_t max_rows;
    json_t **rows;
    dk_db_tx_fn fn;
    void *user;
    dk__waiter *w;
    uint64_t err_db;
    char errmsg[sizeof(tls_errmsg)];
} db_call;

static int db_call_run(void *arg)
{
    db_call *c = arg;
    tx_binding *own = tls_tx;
    tls_tx = c->w->db_tx;
    int rc = DK_EINVAL;
    switch (c->op) {
    case OP_EXEC:
        rc = do_exec(c->db, c->sql, c->params, c->changes, c->last_id);
        break;
    case OP_QUERY:
        rc = do_query_rows(c->db, c->sql, c->params, c->max_rows, c->rows);
        break;
    case OP_SCRIPT:
        rc = do_exec_script(c->db, c->sql);
        break;
    case OP_BEGIN:
        rc = do_begin(c->db);
        break;
    case OP_COMMIT:
        rc = do_commit(c->db);
        break;
    case OP_ROLLBACK:
        rc = do_rollback(c->db);
        break;
    case OP_TX:
        rc = do_transaction(c->db, c->fn, c->user);
        break;
    }
    c->w->db_tx = tls_tx;
    tls_tx = own;
    c->err_db = tls_err_db;
    if (rc < 0)
        memcpy(c->errmsg, tls_errmsg, sizeof(c->errmsg));
    return rc;
}

static int db_call_offload(db_call *c)
{
    int rc = dk__offload(DK__POOL_IO, db_call_run, c);
    tls_err_db = c->err_db;
    if (rc < 0)
        memcpy(tls_errmsg, c->errmsg, sizeof(tls_errmsg));
    return rc;
}

#define DB_CALL(...)                                                                             \
    do {                                                                                         \
        dk__waiter *w_ = dk__waiter_current();                                                   \
        if (w_ != NULL) {                                                                        \
            db_call c_ = {__VA_ARGS__, .w = w_};                                                 \
            return db_call_offload(&c_);                                                         \
        }                                                                                        \
    } while (0)

int dk_db_exec(dk_db *db, const char *sql, const json_t *params, int64_t *out_changes,
               int64_t *out_last_id)
{
    DB_CALL(.op = OP_EXEC, .db = db, .sql = sql, .params = params, .changes = out_changes,
            .last_id = out_last_id);
    return do_exec(db, sql, params, out_changes, out_last_id);
}

static int query_rows(dk_db *db, const char *sql, const json_t *params, size_t max_rows,
                      json_t **out_rows)
{
    DB_CALL(.op = OP_QUERY, .db = db, .sql = sql, .params = params, .max_rows = max_rows,
            .rows = out_rows);
    return do_query_rows(db, sql, params, max_rows, out_rows);
}

int dk_db_exec_script(dk_db *db, const char *sql)
{
    DB_CALL(.op = OP_SCRIPT, .db = db, .sql = sql);
    return do_exec_script(db, sql);
}

int dk_db_begin(dk_db *db)
{
    DB_CALL(.op = OP_BEGIN, .db = db);
    return do_begin(db);
}

int dk_db_commit(dk_db *db)
{
    DB_CALL(.op = OP_COMMIT, .db = db);
    return do_commit(db);
}

int dk_db_rollback(dk_db *db)
{
    DB_CALL(.op = OP_ROLLBACK, .db = db);
    return do_rollback(db);
}

int dk_db_transaction(dk_db *db, dk_db_tx_fn fn, void *user)
{
    DB_CALL(.op = OP_TX, .db = db, .fn = fn, .user = user);
    return do_transaction(db, fn, user);
}

void dk__db_set_pool_size(dk_db *db, int n)
{
    if (db == NULL || n < 1 || db->max_conns <= 1)
        return; /* an in-memory SQLite database has exactly one connection */
    pthread_mutex_lock(&db->lock);
    if (n > db->max_conns) {
        void **idle = realloc(db->idle, (size_t)n * sizeof(void *));
        if (idle == NULL) {
            pthread_mutex_unlock(&db->lock);
            return;
        }
        db->idle = idle;
    }
    db->max_conns = n; /* surplus idle connections close as they come back */
    pthread_mutex_unlock(&db->lock);
}

void dk__db_pool_stats_get(dk_db *db, dk__db_pool_stats *out)
{
    pthread_mutex_lock(&db->lock);
    out->size = db->max_conns;
    out->open = db->n_open;
    out->in_use = db->n_open - db->n_idle;
    out->waiting = db->n_waiting;
    pthread_mutex_unlock(&db->lock);
}

int dk__db_add_row(json_t *rows, int ncol, dk__db_cell_fn cell, void *row, const char *bad_fmt)
{
    json_t *obj = json_object();
    if (obj == NULL || json_array_append_new(rows, obj) != 0)
        return dk__db_seterr(DK_ENOMEM, "out of memory");
    for (int i = 0; i < ncol; i++) {
        const char *name = "";
        json_t *v = cell(row, i, &name);
        if (v == NULL)
            return dk__db_seterr(DK_EDB, bad_fmt, name);
        if (json_object_set_new(obj, name, v) != 0)
            return dk__db_seterr(DK_ENOMEM, "out of memory");
    }
    return 0;
}
