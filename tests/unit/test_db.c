/* Database layer tests. Every case runs against SQLite in memory, SQLite in a
 * temporary file, and PostgreSQL when DK_TEST_PG_URL is set (see
 * tests/db/with-postgres.sh, registered as unit.test_db_pg). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "donkey/db.h"
#include "db/internal.h"

enum { BK_MEMORY, BK_FILE, BK_PG };

typedef struct backend {
    const char *label;
    int kind;
    char url[512];
    char dir[256]; /* BK_FILE: temporary directory */
    int counter;
} backend;

static const char *const pg_tables[] = {"t_items", "t_u",    "t_tx",   "t_thr",  "mig_a",
                                        "mig_b",   "mig_ok", "mig_bad", "donkey_migrations"};

/* Opens a database with nothing in it: a new memory database, a new file, or
 * the shared PostgreSQL test database with this suite's tables dropped. */
static dk_db *open_fresh(backend *b)
{
    dk_err err = {0};
    if (b->kind == BK_FILE)
        snprintf(b->url, sizeof(b->url), "sqlite:%s/t%d.db", b->dir, ++b->counter);
    dk_db *db = dk_db_open(b->url, &err);
    if (db == NULL)
        fail_msg("dk_db_open(%s): %s", b->url, err.message);
    if (b->kind == BK_PG) {
        for (size_t i = 0; i < sizeof(pg_tables) / sizeof(pg_tables[0]); i++) {
            char sql[128];
            snprintf(sql, sizeof(sql), "DROP TABLE IF EXISTS %s CASCADE", pg_tables[i]);
            assert_int_equal(dk_db_exec_script(db, sql), 0);
        }
    }
    return db;
}

static dk_db *reopen(backend *b, dk_db *db)
{
    if (b->kind == BK_MEMORY)
        return db; /* a memory database dies with its handle */
    dk_db_close(db);
    dk_err err = {0};
    dk_db *again = dk_db_open(b->url, &err);
    if (again == NULL)
        fail_msg("reopen %s: %s", b->url, err.message);
    return again;
}

static const char *id_column(dk_db *db)
{
    return strcmp(dk_db_engine(db), "postgres") == 0 ? "id BIGSERIAL PRIMARY KEY"
                                                     : "id INTEGER PRIMARY KEY AUTOINCREMENT";
}

static int64_t count_rows(dk_db *db, const char *table)
{
    char sql[128];
    json_t *row = NULL;
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) AS n FROM %s", table);
    int rc = dk_db_query_one(db, sql, NULL, &row);
    if (rc != 0)
        fail_msg("%s: %s", sql, dk_db_errmsg(db));
    assert_true(json_is_integer(json_object_get(row, "n")));
    int64_t n = json_integer_value(json_object_get(row, "n"));
    json_decref(row);
    return n;
}

static bool table_exists(dk_db *db, const char *table)
{
    char sql[128];
    json_t *rows = NULL;
    snprintf(sql, sizeof(sql), "SELECT * FROM %s", table);
    int rc = dk_db_query(db, sql, NULL, &rows);
    json_decref(rows);
    return rc == 0;
}

/* ------------------------------------------------------------------ */

static void test_open_errors(void **state)
{
    (void)state;
    dk_err err = {0};
    assert_null(dk_db_open("mysql://x", &err));
    assert_int_equal(err.code, DK_EINVAL);
    assert_null(dk_db_open("sqlite:", &err));
    assert_int_equal(err.code, DK_EINVAL);
    assert_null(dk_db_open("sqlite:/nonexistent-dir-dk/x/y.db", &err));
    assert_int_equal(err.code, DK_EUNAVAILABLE);
    assert_null(dk_db_open(NULL, NULL));
}

/* libpq is loaded on first use of a PostgreSQL URL (src/db/pq.c): the SQLite
 * cases never map it, a missing libpq is a clear error, and a failed load is
 * retried by the next open. Runs before any PostgreSQL case. */
static void test_libpq_on_demand(void **state)
{
    (void)state;
    assert_null(dlopen("libpq.so.5", RTLD_NOW | RTLD_NOLOAD));
    dk_db *db = dk_db_open("sqlite::memory:", NULL);
    assert_non_null(db);
    dk_db_close(db);
    assert_null(dlopen("libpq.so.5", RTLD_NOW | RTLD_NOLOAD));

    dk_err err = {0};
    setenv("DK_LIBPQ", "/nonexistent-dk/libpq.so.5", 1);
    assert_null(dk_db_open("postgres://127.0.0.1:1/x", &err));
    unsetenv("DK_LIBPQ");
    assert_int_equal(err.code, DK_EUNAVAILABLE);
    if (strstr(err.message, "PostgreSQL support needs libpq") == NULL ||
        strstr(err.message, "/nonexistent-dk/libpq.so.5") == NULL)
        fail_msg("unexpected message: %s", err.message);

    /* Loads now; port 1 refuses the connection. */
    assert_null(dk_db_open("postgres://127.0.0.1:1/x?connect_timeout=2", &err));
    assert_int_equal(err.code, DK_EUNAVAILABLE);
    if (strstr(err.message, "libpq") != NULL && strstr(err.message, "needs") != NULL)
        fail_msg("libpq was not loaded on retry: %s", err.message);
    void *h = dlopen("libpq.so.5", RTLD_NOW | RTLD_NOLOAD);
    assert_non_null(h);
    dlclose(h);
}

static void test_rewrite(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
        int n;
    } cases[] = {
        {"SELECT ?, ?", "SELECT $1, $2", 2},
        {"SELECT '?' , ?", "SELECT '?' , $1", 1},
        {"SELECT 'it''s ?', \"we?ird\" FROM t WHERE a = ?",
         "SELECT 'it''s ?', \"we?ird\" FROM t WHERE a = $1", 1},
        {"SELECT E'a\\'?' , ?", "SELECT E'a\\'?' , $1", 1},
        {"SELECT 1 -- what?\n, ?", "SELECT 1 -- what?\n, $1", 1},
        {"SELECT /* a /* ? */ ? */ ?", "SELECT /* a /* ? */ ? */ $1", 1},
        {"SELECT $$ ? $$, $tag$ '?' $tag$, ?", "SELECT $$ ? $$, $tag$ '?' $tag$, $1", 1},
        {"SELECT a-b/c, ?", "SELECT a-b/c, $1", 1},
        {"", "", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = NULL;
        int n = -1;
        assert_int_equal(dk__db_rewrite_placeholders(cases[i].in, &out, &n), 0);
        assert_string_equal(out, cases[i].out);
        assert_int_equal(n, cases[i].n);
        free(out);
    }
}

static void test_params_and_types(void **state)
{
    backend *b = *state;
    dk_db *db = open_fresh(b);
    bool pg = b->kind == BK_PG;
    char sql[512];
    assert_string_equal(dk_db_engine(db), pg ? "postgres" : "sqlite");
    assert_int_equal(dk_db_ping(db), 0);

    snprintf(sql, sizeof(sql),
             "CREATE TABLE t_items (%s, s TEXT, i BIGINT, r DOUBLE PRECISION, b BOOLEAN, "
             "n TEXT)",
             id_column(db));
    assert_int_equal(dk_db_exec_script(db, sql), 0);

    const char *ins = pg ? "INSERT INTO t_items (s, i, r, b, n) VALUES (?, ?, ?, ?, ?) RETURNING id"
                         : "INSERT INTO t_items (s, i, r, b, n) VALUES (?, ?, ?, ?, ?)";
    const int64_t big = INT64_C(9007199254740993); /* not representable as a double */
    json_t *p = json_pack("[sIfbn]", "it's \"quoted\" ? \xc3\xa9", (json_int_t)big, 1.5, 1);
    int64_t changes = -1, last = -1;
    assert_int_equal(dk_db_exec(db, ins, p, &changes, &last), 0);
    json_decref(p);
    assert_int_equal(changes, 1);
    assert_int_equal(last, 1);

    p = json_pack("[sIfbn]", "second", (json_int_t)INT64_MIN, -0.25, 0);
    assert_int_equal(dk_db_exec(db, ins, p, &changes, &last), 0);
    json_decref(p);
    assert_int_equal(last, 2);

    json_t *rows = NULL;
    p = json_pack("[I]", (json_int_t)big);
    assert_int_equal(dk_db_query(db, "SELECT * FROM t_items WHERE i = ?", p, &rows), 0);
    json_decref(p);
    assert_int_equal(json_array_size(rows), 1);
    json_t *row = json_array_get(rows, 0);
    assert_string_equal(json_string_value(json_object_get(row, "s")),
                        "it's \"quoted\" ? \xc3\xa9");
    assert_true(json_is_integer(json_object_get(row, "id")));
    assert_true(json_is_integer(json_object_get(row, "i")));
    assert_true(json_integer_value(json_object_get(row, "i")) == big);
    assert_true(json_is_real(json_object_get(row, "r")));
    assert_true(json_real_value(json_object_get(row, "r")) == 1.5);
    if (pg)
        assert_true(json_is_true(json_object_get(row, "b")));
    else
        assert_int_equal(json_integer_value(json_object_get(row, "b")), 1);
    assert_true(json_is_null(json_object_get(row, "n")));
    json_decref(rows);

    /* Every parameter type round-trips through a bare SELECT too. */
    p = json_pack("[IIsn]", (json_int_t)INT64_MAX, (json_int_t)-7, "x");
    assert_int_equal(dk_db_query_one(db, "SELECT ? AS a, ? AS b, ? AS c, ? AS d", p, &row), 0);
    json_decref(p);
    assert_true(json_integer_value(json_object_get(row, "a")) == INT64_MAX);
    assert_int_equal(json_integer_value(json_object_get(row, "b")), -7);
    assert_string_equal(json_string_value(json_object_get(row, "c")), "x");
    assert_true(json_is_null(json_object_get(row, "d")));
    json_decref(row);

    p = json_pack("[b]", 0);
    assert_int_equal(dk_db_query(db, "SELECT s FROM t_items WHERE b = ? ORDER BY id", p, &rows), 0);
    json_decref(p);
    assert_int_equal(json_array_size(rows), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "s")), "second");
    json_decref(rows);

    /* Update counts changed rows; wrong parameter counts are refused. */
    p = json_pack("[s]", "z");
    assert_int_equal(dk_db_exec(db, "UPDATE t_items SET n = ?", p, &changes, NULL), 0);
    assert_int_equal(changes, 2);
    assert_int_equal(dk_db_exec(db, "UPDATE t_items SET n = ?, s = ?", p, NULL, NULL), DK_EINVAL);
    json_decref(p);
    json_t *obj = json_pack("{si}", "a", 1);
    assert_int_equal(dk_db_exec(db, "SELECT 1", obj, NULL, NULL), DK_EINVAL);
    json_decref(obj);

    /* Syntax errors are DK_EDB with the engine's message. */
    assert_int_equal(dk_db_exec(db, "SELEKT 1", NULL, NULL, NULL), DK_EDB);
    assert_true(strlen(dk_db_errmsg(db)) > 0);
    dk_db_close(db);
}

static void test_placeholder_in_literal(void **state)
{
    backend *b = *state;
    dk_db *db = open_fresh(b);
    json_t *row = NULL;
    json_t *p = json_pack("[s]", "x");
    assert_int_equal(dk_db_query_one(db, "SELECT '?' AS q, ? AS p, 'a''?' AS r", p, &row), 0);
    json_decref(p);
    assert_string_equal(json_string_value(json_object_get(row, "q")), "?");
    assert_string_equal(json_string_value(json_object_get(row, "p")), "x");
    assert_string_equal(json_string_value(json_object_get(row, "r")), "a'?");
    json_decref(row);
    dk_db_close(db);
}

static void test_query_one_not_found(void **state)
{
    backend *b = *state;
    dk_db *db = open_fresh(b);
    assert_int_equal(dk_db_exec_script(db, "CREATE TABLE t_u (email TEXT)"), 0);
    json_t *row = (json_t *)1;
    json_t *p = json_pack("[s]", "nobody");
    assert_int_equal(dk_db_query_one(db, "SELECT * FROM t_u WHERE email = ?", p, &row),
                     DK_ENOTFOUND);
    json_decref(p);
    assert_null(row);
    dk_db_close(db);
}

static void test_constraints(void **state)
{
    backend *b = *state;
    dk_db *db = open_fresh(b);
    assert_int_equal(dk_db_exec_script(db, "CREATE TABLE t_u (email TEXT UNIQUE, "
                                           "age INTEGER CHECK (age >= 0))"),
                     0);
    json_t *p = json_pack("[si]", "a@example.com", 3);
    assert_int_equal(dk_db_exec(db, "INSERT INTO t_u (email, age) VALUES (?, ?)", p, NULL, NULL),
                     0);
    assert_int_equal(dk_db_exec(db, "INSERT INTO t_u (email, age) VALUES (?, ?)", p, NULL, NULL),
                     DK_ECONSTRAINT);
    assert_non_null(strstr(dk_db_errmsg(db), b->kind == BK_PG ? "unique" : "UNIQUE"));
    json_decref(p);
    p = json_pack("[si]", "b@example.com", -1);
    assert_int_equal(dk_db_exec(db, "INSERT INTO t_u (email, age) VALUES (?, ?)", p, NULL, NULL),
                     DK_ECONSTRAINT);
    json_decref(p);
    assert_int_equal(count_rows(db, "t_u"), 1);
    dk_db_close(db);
}

static int insert_name(dk_db *db, const char *name)
{
    json_t *p = json_pack("[s]", name);
    int rc = dk_db_exec(db, "INSERT INTO t_tx (name) VALUES (?)", p, NULL, NULL);
    json_decref(p);
    return rc;
}

static bool has_name(dk_db *db, const char *name)
{
    json_t *row = NULL;
    json_t *p = json_pack("[s]", name);
    int rc = dk_db_query_one(db, "SELECT name FROM t_tx WHERE name = ?", p, &row);
    json_decref(p);
    json_decref(row);
    assert_true(rc == 0 || rc == DK_ENOTFOUND);
    return rc == 0;
}

static void test_nested_transactions(void **state)
{
    backend *b = *state;
    dk_db *db = open_fresh(b);
    assert_int_equal(dk_db_exec_script(db, "CREATE TABLE t_tx (name TEXT)"), 0);

    assert_int_equal(dk_db_commit(db), DK_ESTATE);
    assert_int_equal(dk_db_rollback(db), DK_ESTATE);

    assert_int_equal(dk_db_begin(db), 0);
    assert_int_equal(insert_name(db, "outer"), 0);
    assert_int_equal(dk_db_begin(db), 0);
    assert_int_equal(insert_name(db, "inner-dropped"), 0);
    assert_int_equal(dk_db_begin(db), 0);
    assert_int_equal(insert_name(db, "innermost"), 0);
    assert_int_equal(dk_db_commit(db), 0);
    assert_true(has_name(db, "innermost"));
    assert_int_equal(dk_db_rollback(db), 0); /* drops inner-dropped and innermost */
    assert_false(has_name(db, "inner-dropped"));
    assert_int_equal(dk_db_begin(db), 0);
    assert_int_equal(insert_name(db, "inner-kept"), 0);
    assert_int_equal(dk_db_commit(db), 0);
    assert_int_equal(dk_db_commit(db), 0);

    assert_true(has_name(db, "outer"));
    assert_true(has_name(db, "inner-kept"));
    assert_false(has_name(db, "inner-dropped"));
    assert_false(has_name(db, "innermost"));

    assert_int_equal(dk_db_begin(db), 0);
    assert_int_equal(insert_name(db, "gone"), 0);
    assert_int_equal(dk_db_rollback(db), 0);
    assert_false(has_name(db, "gone"));
    assert_int_equal(count_rows(db, "t_tx"), 2);
    dk_db_close(db);
}

static int tx_insert_ok(dk_db *tx, void *user)
{
    return insert_name(tx, user);
}

static int tx_insert_fail(dk_db *tx, void *user)
{
    assert_int_equal(insert_name(tx, user), 0);
    return -42;
}

static int tx_outer(dk_db *tx, void *user)
{
    (void)user;
    assert_int_equal(insert_name(tx, "helper-outer"), 0);
    assert_int_equal(dk_db_transaction(tx, tx_insert_fail, "helper-inner"), -42);
    return dk_db_transaction(tx, tx_insert_ok, "helper-inner-ok");
}

static void test_transaction_helper(void **state)
{
    backend *b = *state;
    dk_db *db = open_fresh(b);
    assert_int_equal(dk_db_exec_script(db, "CREATE TABLE t_tx (name TEXT UNIQUE)"), 0);
    assert_int_equal(dk_db_transaction(db, tx_insert_ok, "a"), 0);
    assert_int_equal(dk_db_transaction(db, tx_insert_fail, "b"), -42);
    assert_true(has_name(db, "a"));
    assert_false(has_name(db, "b"));
    assert_int_equal(dk_db_transaction(db, tx_outer, NULL), 0);
    assert_true(has_name(db, "helper-outer"));
    assert_false(has_name(db, "helper-inner"));
    assert_true(has_name(db, "helper-inner-ok"));
    /* A constraint failure inside the body surfaces and rolls back. */
    assert_int_equal(dk_db_transaction(db, tx_insert_ok, "a"), DK_ECONSTRAINT);
    assert_int_equal(count_rows(db, "t_tx"), 3);
    dk_db_close(db);
}

/* ------------------------------------------------------------------ */
/* Migrations                                                          */

static void test_migrations_once_and_pending(void **state)
{
    backend *b = *state;
    dk_db *db = open_fresh(b);
    dk_err err = {0};
    /* Listed out of order: 002 only works after 001. */
    const dk_migration v1[] = {
        {2, "seed_a", "INSERT INTO mig_a (x) VALUES (1)", NULL},
        {1, "create_a", "CREATE TABLE mig_a (x INTEGER NOT NULL)", NULL},
    };
    assert_int_equal(dk_db_migrate(db, "notes", v1, 2, NULL, &err), 0);
    assert_int_equal(count_rows(db, "mig_a"), 1);

    json_t *rows = NULL;
    json_t *p = json_pack("[s]", "notes");
    assert_int_equal(dk_db_query(db, "SELECT name, applied_at FROM donkey_migrations "
                                     "WHERE plugin = ? ORDER BY name",
                                 p, &rows),
                     0);
    json_decref(p);
    assert_int_equal(json_array_size(rows), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "name")),
                        "001_create_a");
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 1), "name")),
                        "002_seed_a");
    assert_non_null(json_string_value(json_object_get(json_array_get(rows, 0), "applied_at")));
    json_decref(rows);

    db = reopen(b, db);
    assert_int_equal(dk_db_migrate(db, "notes", v1, 2, NULL, &err), 0);
    assert_int_equal(count_rows(db, "mig_a"), 1); /* nothing ran twice */

    /* Only the new one runs; another plugin's list is tracked separately. */
    const dk_migration v2[] = {
        {1, "create_a", "CREATE TABLE mig_a (x INTEGER NOT NULL)", NULL},
        {3, "seed_more", "INSERT INTO mig_a (x) VALUES (3)", NULL},
        {2, "seed_a", "INSERT INTO mig_a (x) VALUES (1)", NULL},
    };
    assert_int_equal(dk_db_migrate(db, "notes", v2, 3, NULL, &err), 0);
    assert_int_equal(count_rows(db, "mig_a"), 2);
    const dk_migration other[] = {{1, "create_b", "CREATE TABLE mig_b (y TEXT)", NULL}};
    assert_int_equal(dk_db_migrate(db, "other", other, 1, NULL, &err), 0);
    assert_int_equal(count_rows(db, "donkey_migrations"), 4);
    dk_db_close(db);
}

static void test_migrations_duplicates(void **state)
{
    backend *b = *state;
    dk_db *db = open_fresh(b);
    dk_err err = {0};
    const dk_migration dup[] = {
        {1, "create_a", "CREATE TABLE mig_a (x INTEGER)", NULL},
        {7, "x", "SELECT 1", NULL},
        {1, "create_b", "CREATE TABLE mig_b (x INTEGER)", NULL},
    };
    assert_int_equal(dk_db_migrate(db, "dupes", dup, 3, NULL, &err), DK_EINVAL);
    assert_non_null(strstr(err.message, "dupes"));
    assert_non_null(strstr(err.message, "001"));
    assert_false(table_exists(db, "mig_a"));
    assert_false(table_exists(db, "mig_b"));
    dk_db_close(db);
}

static void test_migrations_failure(void **state)
{
    backend *b = *state;
    dk_db *db = open_fresh(b);
    dk_err err = {0};
    const dk_migration migs[] = {
        {1, "create_ok", "CREATE TABLE mig_ok (x INTEGER)", NULL},
        {2, "broken", "CREATE TABLE mig_bad (x INTEGER);\n"
                      "INSERT INTO mig_bad (x) VALUES (1);\n"
                      "INSERT INTO no_such_table (x) VALUES (1);", NULL},
        {3, "never", "CREATE TABLE mig_b (x INTEGER)", NULL},
    };
    int rc = dk_db_migrate(db, "shop", migs, 3, NULL, &err);
    assert_true(rc < 0);
    assert_int_equal(err.code, rc);
    assert_non_null(strstr(err.message, "shop"));
    assert_non_null(strstr(err.message, "002_broken"));
    assert_non_null(strstr(err.message, "no_such_table"));
    assert_true(table_exists(db, "mig_ok"));
    assert_false(table_exists(db, "mig_bad"));
    assert_false(table_exists(db, "mig_b"));

    json_t *rows = NULL;
    assert_int_equal(dk_db_query(db, "SELECT name FROM donkey_migrations ORDER BY name", NULL,
                                 &rows),
                     0);
    assert_int_equal(json_array_size(rows), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "name")),
                        "001_create_ok");
    json_decref(rows);
    dk_db_close(db);
}

/* Issue 16: each applied migration's text is recorded as a SHA-256 checksum;
 * an applied migration whose text changed is an error naming plugin and
 * migration, before anything else runs. */
static void test_migrations_checksum(void **state)
{
    backend *b = *state;
    dk_db *db = open_fresh(b);
    dk_err err = {0};
    const dk_migration v1[] = {{1, "create_a", "CREATE TABLE mig_a (x INTEGER NOT NULL)", NULL}};
    assert_int_equal(dk_db_migrate(db, "notes", v1, 1, NULL, &err), 0);
    json_t *row = NULL;
    assert_int_equal(dk_db_query_one(db, "SELECT checksum FROM donkey_migrations", NULL, &row), 0);
    /* sha256("CREATE TABLE mig_a (x INTEGER NOT NULL)") */
    assert_string_equal(json_string_value(json_object_get(row, "checksum")),
                        "5e2ef9fc75af3bdeb520a4381864ce2e6ea7e2e22c87947d7a20106428e7c72f");
    json_decref(row);

    db = reopen(b, db);
    /* Edited after it was applied, with a new migration after it: refused,
     * and the new one does not run either. */
    const dk_migration edited[] = {
        {1, "create_a", "CREATE TABLE mig_a (x INTEGER NOT NULL, y TEXT)", NULL},
        {2, "create_b", "CREATE TABLE mig_b (y TEXT)", NULL},
    };
    assert_int_equal(dk_db_migrate(db, "notes", edited, 2, NULL, &err), DK_EINVAL);
    assert_non_null(strstr(err.message, "plugin 'notes'"));
    assert_non_null(strstr(err.message, "001_create_a"));
    assert_non_null(strstr(err.message, "edited after it was applied"));
    assert_non_null(strstr(err.message, "write a new migration"));
    assert_false(table_exists(db, "mig_b"));
    /* The original text still passes. */
    assert_int_equal(dk_db_migrate(db, "notes", v1, 1, NULL, &err), 0);
    dk_db_close(db);
}

/* A migration with nothing but whitespace and comments is refused before
 * anything runs (under `donkey dev` it would be recorded while still empty). */
static void test_migrations_empty_refused(void **state)
{
    backend *b = *state;
    dk_db *db = open_fresh(b);
    dk_err err = {0};
    const dk_migration migs[] = {
        {1, "create_a", "CREATE TABLE mig_a (x INTEGER)", NULL},
        {2, "later", "-- notes 002: later\n-- Example:\n--   ALTER TABLE t ADD c;\n\n"
                     "/* a /* nested */ block */ ;\n  ",
         NULL},
    };
    assert_int_equal(dk_db_migrate(db, "notes", migs, 2, NULL, &err), DK_EINVAL);
    assert_non_null(strstr(err.message, "plugin 'notes'"));
    assert_non_null(strstr(err.message, "002_later"));
    assert_non_null(strstr(err.message, "no SQL statement"));
    assert_false(table_exists(db, "mig_a"));
    assert_int_equal(count_rows(db, "donkey_migrations"), 0);
    /* A statement after the comments is enough. */
    const dk_migration filled[] = {
        {1, "create_a", "CREATE TABLE mig_a (x INTEGER)", NULL},
        {2, "later", "-- notes 002: later\nINSERT INTO mig_a (x) VALUES (2)", NULL},
    };
    assert_int_equal(dk_db_migrate(db, "notes", filled, 2, NULL, &err), 0);
    assert_int_equal(count_rows(db, "mig_a"), 1);
    dk_db_close(db);
}

/* A donkey_migrations table from before checksums is upgraded in place: the
 * column is added and filled from the current text on the first start; from
 * then on an edit is detected. */
static void test_migrations_checksum_upgrade(void **state)
{
    backend *b = *state;
    dk_db *db = open_fresh(b);
    dk_err err = {0};
    assert_int_equal(dk_db_exec_script(db, "CREATE TABLE donkey_migrations ("
                                           " plugin TEXT NOT NULL, name TEXT NOT NULL,"
                                           " applied_at TEXT NOT NULL,"
                                           " PRIMARY KEY (plugin, name));"
                                           "CREATE TABLE mig_a (x INTEGER);"
                                           "INSERT INTO donkey_migrations VALUES"
                                           " ('notes', '001_create_a', '2026-01-01T00:00:00Z')"),
                     0);
    const dk_migration v1[] = {
        {1, "create_a", "CREATE TABLE mig_a (x INTEGER)", NULL},
        {2, "seed_a", "INSERT INTO mig_a (x) VALUES (1)", NULL},
    };
    assert_int_equal(dk_db_migrate(db, "notes", v1, 2, NULL, &err), 0);
    assert_int_equal(count_rows(db, "mig_a"), 1); /* 001 did not run again */
    json_t *rows = NULL;
    assert_int_equal(
        dk_db_query(db, "SELECT name, checksum FROM donkey_migrations ORDER BY name", NULL, &rows),
        0);
    assert_int_equal(json_array_size(rows), 2);
    for (size_t i = 0; i < 2; i++) {
        const char *sum = json_string_value(json_object_get(json_array_get(rows, i), "checksum"));
        assert_non_null(sum);
        assert_int_equal(strlen(sum), 64);
    }
    json_decref(rows);
    db = reopen(b, db);
    const dk_migration edited[] = {
        {1, "create_a", "CREATE TABLE mig_a (x BIGINT)", NULL},
        {2, "seed_a", "INSERT INTO mig_a (x) VALUES (1)", NULL},
    };
    assert_int_equal(dk_db_migrate(db, "notes", edited, 2, NULL, &err), DK_EINVAL);
    assert_non_null(strstr(err.message, "001_create_a"));
    dk_db_close(db);
}

/* PostgreSQL: a connection the server drops reports DK_EUNAVAILABLE once and
 * the next call gets a fresh connection; SQLite has nothing to lose. */
static void test_reconnect(void **state)
{
    backend *b = *state;
    if (b->kind != BK_PG) {
        skip();
        return;
    }
    dk_db *db = open_fresh(b);
    assert_int_equal(dk_db_ping(db), 0);
    int rc = dk_db_exec(db, "SELECT pg_terminate_backend(pg_backend_pid())", NULL, NULL, NULL);
    assert_int_equal(rc, DK_EUNAVAILABLE);
    assert_int_equal(dk_db_ping(db), 0);

    /* Lost inside a transaction: every call fails until the rollback ends it. */
    assert_int_equal(dk_db_begin(db), 0);
    assert_int_equal(dk_db_exec(db, "SELECT pg_terminate_backend(pg_backend_pid())", NULL, NULL,
                                NULL),
                     DK_EUNAVAILABLE);
    assert_int_equal(dk_db_ping(db), DK_EUNAVAILABLE);
    assert_int_equal(dk_db_rollback(db), DK_EUNAVAILABLE);
    assert_int_equal(dk_db_ping(db), 0);
    dk_db_close(db);
}

/* ------------------------------------------------------------------ */
/* Threads                                                             */

#define N_THREADS 4
#define N_ROWS 200

typedef struct thr_arg {
    dk_db *db;
    int thread;
    int failures;
    char last_error[256];
} thr_arg;

static int thr_insert(dk_db *tx, void *user)
{
    json_t *p = user;
    return dk_db_exec(tx, "INSERT INTO t_thr (thread, n) VALUES (?, ?)", p, NULL, NULL);
}

static void *thr_main(void *p)
{
    thr_arg *a = p;
    for (int n = 0; n < N_ROWS; n++) {
        json_t *params = json_pack("[ii]", a->thread, n);
        int rc;
        if (n % 10 == 0)
            rc = dk_db_transaction(a->db, thr_insert, params);
        else
            rc = dk_db_exec(a->db, "INSERT INTO t_thr (thread, n) VALUES (?, ?)", params, NULL,
                            NULL);
        json_decref(params);
        if (rc != 0) {
            a->failures++;
            snprintf(a->last_error, sizeof(a->last_error), "%s: %s", dk_err_name(rc),
                     dk_db_errmsg(a->db));
        }
        if (n % 50 == 0) {
            json_t *rows = NULL;
            if (dk_db_query(a->db, "SELECT COUNT(*) AS c FROM t_thr", NULL, &rows) != 0)
                a->failures++;
            json_decref(rows);
        }
    }
    return NULL;
}

static void test_threads(void **state)
{
    backend *b = *state;
    dk_db *db = open_fresh(b);
    assert_int_equal(dk_db_exec_script(db, "CREATE TABLE t_thr (thread INTEGER, n INTEGER, "
                                           "UNIQUE (thread, n))"),
                     0);
    pthread_t th[N_THREADS];
    thr_arg args[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        args[i] = (thr_arg){.db = db, .thread = i};
        assert_int_equal(pthread_create(&th[i], NULL, thr_main, &args[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++) {
        pthread_join(th[i], NULL);
        if (args[i].failures)
            fail_msg("thread %d: %d failures, last %s", i, args[i].failures, args[i].last_error);
    }
    assert_int_equal(count_rows(db, "t_thr"), N_THREADS * N_ROWS);
    dk_db_close(db);
}

/* ------------------------------------------------------------------ */

#define BACKEND_TESTS(b)                                                                          \
    {                                                                                             \
        cmocka_unit_test_prestate(test_params_and_types, &(b)),                                   \
            cmocka_unit_test_prestate(test_placeholder_in_literal, &(b)),                         \
            cmocka_unit_test_prestate(test_query_one_not_found, &(b)),                            \
            cmocka_unit_test_prestate(test_constraints, &(b)),                                    \
            cmocka_unit_test_prestate(test_nested_transactions, &(b)),                            \
            cmocka_unit_test_prestate(test_transaction_helper, &(b)),                             \
            cmocka_unit_test_prestate(test_migrations_once_and_pending, &(b)),                    \
            cmocka_unit_test_prestate(test_migrations_duplicates, &(b)),                          \
            cmocka_unit_test_prestate(test_migrations_failure, &(b)),                             \
            cmocka_unit_test_prestate(test_migrations_checksum, &(b)),                            \
            cmocka_unit_test_prestate(test_migrations_empty_refused, &(b)),                       \
            cmocka_unit_test_prestate(test_migrations_checksum_upgrade, &(b)),                    \
            cmocka_unit_test_prestate(test_threads, &(b)),                                        \
            cmocka_unit_test_prestate(test_reconnect, &(b)),                                      \
    }

int main(void)
{
    int failed = 0;
    static backend mem = {.label = "sqlite-memory", .kind = BK_MEMORY, .url = "sqlite::memory:"};
    static backend file = {.label = "sqlite-file", .kind = BK_FILE};
    static backend pg = {.label = "postgres", .kind = BK_PG};

    const struct CMUnitTest common[] = {
        cmocka_unit_test(test_libpq_on_demand),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_rewrite),
    };
    failed += cmocka_run_group_tests_name("db-common", common, NULL, NULL);

    const struct CMUnitTest mem_tests[] = BACKEND_TESTS(mem);
    failed += cmocka_run_group_tests_name("sqlite-memory", mem_tests, NULL, NULL);

    snprintf(file.dir, sizeof(file.dir), "/tmp/dk_test_db_XXXXXX");
    if (mkdtemp(file.dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    const struct CMUnitTest file_tests[] = BACKEND_TESTS(file);
    failed += cmocka_run_group_tests_name("sqlite-file", file_tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", file.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", file.dir);

    const char *pg_url = getenv("DK_TEST_PG_URL");
    if (pg_url != NULL && *pg_url != '\0') {
        snprintf(pg.url, sizeof(pg.url), "%s", pg_url);
        const struct CMUnitTest pg_tests[] = BACKEND_TESTS(pg);
        failed += cmocka_run_group_tests_name("postgres", pg_tests, NULL, NULL);
    } else {
        printf("NOTE: DK_TEST_PG_URL is not set; PostgreSQL cases skipped "
               "(run tests/db/with-postgres.sh <test_db>)\n");
    }
    return failed ? 1 : 0;
}
