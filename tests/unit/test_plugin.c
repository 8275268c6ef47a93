/* Plugin manager and test harness: dependency order, start-up errors,
 * migrations (tracked across restarts, rolled back on failure), dependency
 * access, custom errors, middleware and kinds run in-process; per-engine
 * migration SQL (dk_migration.sql_postgres).
 *
 * The migration cases use a temporary SQLite file, or PostgreSQL when
 * DK_TEST_PG_URL is set (tests/db/with-postgres.sh, CTest unit.test_plugin_pg). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "donkey/donkey.h"
#include "donkey/db.h"
#include "donkey/harness.h"
#include "donkey/plugin.h"

/* ---- recording ---- */

static char trail[1024];

static void record(const char *what, dk_plugin_ctx *p)
{
    size_t len = strlen(trail);
    snprintf(trail + len, sizeof(trail) - len, "%s%s:%s", len ? " " : "", what, dk_plugin_name(p));
}

static int rec_create(dk_plugin_ctx *p, void **out, dk_err *err)
{
    record("create", p);
    *out = p; /* any non-NULL pointer: the service is the context itself */
    return 0;
}

static void rec_destroy(dk_plugin_ctx *p, void *svc) { record("destroy", p); }

static int rec_init(dk_plugin_ctx *p, void *svc, dk_err *err)
{
    record("init", p);
    return 0;
}

static void rec_teardown(dk_plugin_ctx *p, void *svc) { record("teardown", p); }

#define REC .create = rec_create, .destroy = rec_destroy, .init = rec_init, .teardown = rec_teardown

static const dk_plugin pa = {.name = "a", REC};
static const dk_plugin pb = {.name = "b", .dependencies = (const char *const[]){"a", NULL}, REC};
static const dk_plugin pc = {.name = "c", .dependencies = (const char *const[]){"b", NULL}, REC};
static const dk_plugin pz = {.name = "z", REC};

static void expect_error(const dk_plugin *const *plugins, size_t n, const char *needle)
{
    dk_err err = {0};
    trail[0] = '\0';
    dk_harness *h = dk_harness_new(plugins, n, &err);
    assert_null(h);
    if (strstr(err.message, needle) == NULL)
        fail_msg("expected '%s' in '%s'", needle, err.message);
    assert_true(err.code < 0);
}

/* ---- order ---- */

static void test_dependency_order_and_reverse_teardown(void **state)
{
    /* Registered c, z, a, b: c's chain comes first (a, b, c), then z. */
    const dk_plugin *plugins[] = {&pc, &pz, &pa, &pb};
    dk_err err = {0};
    trail[0] = '\0';
    dk_harness *h = dk_harness_new(plugins, 4, &err);
    assert_non_null(h);
    assert_string_equal(trail, "create:a init:a create:b init:b create:c init:c create:z init:z");
    assert_non_null(dk_harness_service(h, "a"));
    assert_null(dk_harness_service(h, "nope"));
    trail[0] = '\0';
    dk_harness_free(h);
    assert_string_equal(trail, "teardown:z teardown:c teardown:b teardown:a "
                               "destroy:z destroy:c destroy:b destroy:a");
}

static void test_independent_plugins_keep_registration_order(void **state)
{
    const dk_plugin *plugins[] = {&pz, &pa};
    trail[0] = '\0';
    dk_harness *h = dk_harness_new(plugins, 2, NULL);
    assert_non_null(h);
    assert_string_equal(trail, "create:z init:z create:a init:a");
    dk_harness_free(h);
}

/* ---- start-up errors ---- */

static const dk_plugin orphan = {.name = "orphan",
                                 .dependencies = (const char *const[]){"ghost", NULL}};
static const dk_plugin selfish = {.name = "selfish",
                                  .dependencies = (const char *const[]){"selfish", NULL}};
static const dk_plugin cy1 = {.name = "cy1", .dependencies = (const char *const[]){"cy2", NULL}};
static const dk_plugin cy2 = {.name = "cy2", .dependencies = (const char *const[]){"cy3", NULL}};
static const dk_plugin cy3 = {.name = "cy3", .dependencies = (const char *const[]){"cy1", NULL}};
static const dk_plugin a_again = {.name = "a"};

static void test_startup_errors(void **state)
{
    const dk_plugin *missing[] = {&pa, &orphan};
    expect_error(missing, 2, "plugin 'orphan' depends on 'ghost', but it is not registered");
    assert_string_equal(trail, ""); /* nothing ran */
    const dk_plugin *self[] = {&selfish};
    expect_error(self, 1, "'selfish' depends on itself");
    /* The cycle is named whole, starting where the traversal entered it. */
    const dk_plugin *cycle[] = {&pa, &cy1, &cy2, &cy3};
    expect_error(cycle, 4, "circular plugin dependency: cy1 -> cy2 -> cy3 -> cy1");
    const dk_plugin *cycle2[] = {&cy3, &cy1, &cy2};
    expect_error(cycle2, 3, "cy3 -> cy1 -> cy2 -> cy3");
    const dk_plugin *dup[] = {&pa, &a_again};
    expect_error(dup, 2, "plugin 'a' is already registered");
}

static void test_duplicate_returns_eexist(void **state)
{
    dk_app_options o;
    dk_app_options_init(&o);
    o.log_level = DK_LOG_ERROR;
    dk_app *app = dk_app_new(&o);
    assert_int_equal(dk_app_add_plugin(app, &pz, NULL), 0);
    assert_int_equal(dk_app_add_plugin(app, &pz, NULL), DK_EEXIST);
    assert_int_equal(dk_app_add_plugin(app, &pa, "{not json"), DK_EINVAL);
    dk_err err = {0};
    assert_true(dk_app_start(app, &err) < 0);
    assert_non_null(strstr(err.message, "'z' is already registered"));
    dk_app_free(app);
}

static int ok_typed(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    *out = json_pack("{s:b}", "ok", 1);
    return 0;
}

static void start_fails_with(dk_router *r, const char *needle)
{
    dk_app_options o;
    dk_app_options_init(&o);
    o.port = 0;
    o.install_signals = false;
    o.log_level = DK_LOG_ERROR;
    dk_app *app = dk_app_new(&o);
    dk_app_add_plugin(app, dk_plugin_cors(), NULL);
    dk_app_use(app, r);
    dk_err err = {0};
    trail[0] = '\0';
    assert_true(dk_app_start(app, &err) < 0);
    if (strstr(err.message, needle) == NULL)
        fail_msg("expected '%s' in '%s'", needle, err.message);
    dk_app_free(app);
}

static void test_unknown_middleware_and_kind_stop_startup(void **state)
{
    dk_router *r = dk_router_new("t");
    dk_router_use(r, "cors", NULL);
    dk_router_use(r, "authRequired", NULL);
    dk_route_typed(r, "x", NULL, NULL, ok_typed, NULL);
    start_fails_with(r, "unknown middleware 'authRequired'");

    r = dk_router_new("t");
    dk_route_custom(r, "graphql", "q", 0, NULL, NULL, NULL, (dk_handler_fn)ok_typed, NULL);
    start_fails_with(r, "unknown handler kind 'graphql'");

    /* The harness reports the same when a router is added. */
    dk_harness *h = dk_harness_new(NULL, 0, NULL);
    assert_non_null(h);
    r = dk_router_new("t");
    dk_router_use(r, "nope", NULL);
    dk_route_typed(r, "x", NULL, NULL, ok_typed, NULL);
    dk_err err = {0};
    assert_true(dk_harness_use(h, r, &err) < 0);
    assert_non_null(strstr(err.message, "'nope'"));
    dk_harness_free(h);
}

static int failing_create(dk_plugin_ctx *p, void **out, dk_err *err)
{
    record("create", p);
    return dk_err_set(err, DK_EUNAVAILABLE, "upstream is down");
}

static const dk_plugin pfail = {.name = "fails",
                                .dependencies = (const char *const[]){"a", NULL},
                                .create = failing_create};

static void test_failing_constructor_rolls_back(void **state)
{
    const dk_plugin *plugins[] = {&pa, &pfail, &pz};
    expect_error(plugins, 3, "plugin 'fails': service constructor failed: upstream is down");
    assert_string_equal(trail, "create:a init:a create:fails teardown:a destroy:a");
}

/* ---- dependencies ---- */

static int dep_create(dk_plugin_ctx *p, void **out, dk_err *err)
{
    *out = p;
    return 0;
}

static const dk_plugin consumer = {.name = "consumer",
                                   .dependencies = (const char *const[]){"a", NULL},
                                   .create = dep_create};

static int captured;

static void capture_errors(const dk_log_entry *e, void *user)
{
    if (e->level == DK_LOG_ERROR && strstr(e->message, "undeclared") != NULL)
        captured++;
}

static void test_undeclared_dependency_is_null(void **state)
{
    const dk_plugin *plugins[] = {&pa, &pz, &consumer};
    dk_harness *h = dk_harness_new(plugins, 3, NULL);
    assert_non_null(h);
    dk_plugin_ctx *p = dk_harness_service(h, "consumer");
    assert_non_null(p);
    dk_logger_add_transport(dk_harness_core(h)->logger, capture_errors, NULL, NULL);
    captured = 0;
    assert_ptr_equal(dk_plugin_dep(p, "a"), dk_harness_service(h, "a"));
    assert_int_equal(captured, 0);
    assert_null(dk_plugin_dep(p, "z")); /* registered, but not declared */
    assert_null(dk_plugin_dep(p, "nothing"));
    assert_int_equal(captured, 2);
    assert_null(dk_plugin_config(p));
    assert_string_equal(dk_plugin_name(p), "consumer");
    assert_ptr_equal(dk_plugin_db(p), dk_harness_db(h));
    dk_harness_free(h);
}

static int config_create(dk_plugin_ctx *p, void **out, dk_err *err)
{
    *out = (void *)dk_plugin_config(p);
    return 0;
}

static const dk_plugin configured = {.name = "configured", .create = config_create};

static void test_plugin_config(void **state)
{
    const dk_plugin *plugins[] = {&configured};
    const char *configs[] = {"{\"issuer\":\"me\"}"};
    dk_harness_options o;
    dk_harness_options_init(&o);
    o.plugins = plugins;
    o.nplugins = 1;
    o.configs = configs;
    dk_err err = {0};
    dk_harness *h = dk_harness_new_opts(&o, &err);
    assert_non_null(h);
    json_t *c = dk_harness_service(h, "configured");
    assert_string_equal(json_string_value(json_object_get(c, "issuer")), "me");
    assert_string_equal(json_string_value(json_object_get(dk_harness_core(h)->config, "env")),
                        "test");
    dk_harness_free(h);
}

/* ---- migrations ---- */

static char suffix[32];
static char dbfile[256];

static const char *test_db_url(void)
{
    const char *pg = getenv("DK_TEST_PG_URL");
    if (pg != NULL && *pg)
        return pg;
    return dbfile;
}

static dk_harness *harness_with_db(const dk_plugin *const *plugins, size_t n, dk_err *err)
{
    dk_harness_options o;
    dk_harness_options_init(&o);
    o.plugins = plugins;
    o.nplugins = n;
    o.db_url = test_db_url();
    o.log_level = DK_LOG_ERROR;
    return dk_harness_new_opts(&o, err);
}

static int64_t count_rows(dk_db *db, const char *sql)
{
    json_t *row = NULL;
    if (dk_db_query_one(db, sql, NULL, &row) < 0)
        return -1;
    int64_t n = (int64_t)json_integer_value(json_object_get(row, "n"));
    json_decref(row);
    return n;
}

static void test_migrations_tracked_across_restarts(void **state)
{
    char name[64], sql1[256], sql2[256], count[256];
    snprintf(name, sizeof(name), "mig%s", suffix);
    snprintf(sql1, sizeof(sql1),
             "CREATE TABLE t_%s (id INTEGER PRIMARY KEY, v TEXT); "
             "INSERT INTO t_%s (id, v) VALUES (1, 'seed')", name, name);
    snprintf(sql2, sizeof(sql2), "ALTER TABLE t_%s ADD COLUMN extra INTEGER", name);
    snprintf(count, sizeof(count), "SELECT COUNT(*) AS n FROM t_%s", name);
    dk_migration v1[] = {{1, "create", sql1, NULL}, {0}};
    dk_migration v2[] = {{1, "create", sql1, NULL}, {2, "add_extra", sql2, NULL}, {0}};
    dk_plugin p1 = {.name = name, .migrations = v1};
    dk_plugin p2 = {.name = name, .migrations = v2};
    const dk_plugin *list1[] = {&p1};
    const dk_plugin *list2[] = {&p2};

    dk_err err = {0};
    dk_harness *h = harness_with_db(list1, 1, &err);
    if (h == NULL)
        fail_msg("%s", err.message);
    assert_int_equal(count_rows(dk_harness_db(h), count), 1);
    dk_harness_free(h);

    /* Restart with one more migration: the first is not run again (it would
     * fail creating the table and insert the seed twice). */
    h = harness_with_db(list2, 1, &err);
    if (h == NULL)
        fail_msg("%s", err.message);
    dk_db *db = dk_harness_db(h);
    assert_int_equal(count_rows(db, count), 1);
    char q[256];
    snprintf(q, sizeof(q), "SELECT COUNT(*) AS n FROM donkey_migrations WHERE plugin = '%s'",
             name);
    assert_int_equal(count_rows(db, q), 2);
    snprintf(q, sizeof(q), "SELECT COUNT(*) AS n FROM t_%s WHERE extra IS NULL", name);
    assert_int_equal(count_rows(db, q), 1);
    dk_harness_free(h);

    /* Third start: nothing pending. */
    h = harness_with_db(list2, 1, &err);
    assert_non_null(h);
    dk_harness_free(h);
}

static void test_failing_migration_rolls_back_and_stops(void **state)
{
    char name[64], ok[256], bad[256], q[256];
    snprintf(name, sizeof(name), "bad%s", suffix);
    snprintf(ok, sizeof(ok), "CREATE TABLE ok_%s (id INTEGER)", name);
    snprintf(bad, sizeof(bad),
             "CREATE TABLE half_%s (id INTEGER); INSERT INTO no_such_table_%s VALUES (1)", name,
             name);
    dk_migration migs[] = {{1, "create_ok", ok, NULL}, {2, "broken", bad, NULL}, {0}};
    dk_plugin p = {.name = name, .migrations = migs, REC};
    const dk_plugin *list[] = {&pa, &p};
    dk_err err = {0};
    trail[0] = '\0';
    dk_harness *h = harness_with_db(list, 2, &err);
    assert_null(h);
    char want[128];
    snprintf(want, sizeof(want), "plugin '%s'", name);
    if (strstr(err.message, want) == NULL || strstr(err.message, "002_broken") == NULL)
        fail_msg("message should name plugin and migration: %s", err.message);
    /* Migrations run before any service: nothing was created. */
    assert_string_equal(trail, "");

    /* The first migration stayed applied; the broken one left nothing. */
    dk_db *db = dk_db_open(test_db_url(), &err);
    assert_non_null(db);
    snprintf(q, sizeof(q), "SELECT COUNT(*) AS n FROM ok_%s", name);
    assert_int_equal(count_rows(db, q), 0);
    snprintf(q, sizeof(q), "SELECT COUNT(*) AS n FROM half_%s", name);
    assert_int_equal(count_rows(db, q), -1);
    snprintf(q, sizeof(q), "SELECT COUNT(*) AS n FROM donkey_migrations WHERE plugin = '%s'",
             name);
    assert_int_equal(count_rows(db, q), 1);
    dk_db_close(db);
}

static void test_migrations_in_dependency_order(void **state)
{
    /* child's migration references the parent's table: it only works when
     * the parent's migrations ran first, although child registers first. */
    char parent_name[64], child_name[64], psql[256], csql[256];
    snprintf(parent_name, sizeof(parent_name), "par%s", suffix);
    snprintf(child_name, sizeof(child_name), "chi%s", suffix);
    snprintf(psql, sizeof(psql), "CREATE TABLE %s (id INTEGER PRIMARY KEY)", parent_name);
    snprintf(csql, sizeof(csql), "INSERT INTO %s (id) VALUES (7)", parent_name);
    dk_migration pm[] = {{1, "create", psql, NULL}, {0}};
    dk_migration cm[] = {{1, "seed_parent", csql, NULL}, {0}};
    const char *deps[] = {parent_name, NULL};
    dk_plugin parent = {.name = parent_name, .migrations = pm};
    dk_plugin child = {.name = child_name, .dependencies = deps, .migrations = cm};
    const dk_plugin *list[] = {&child, &parent};
    dk_err err = {0};
    dk_harness *h = harness_with_db(list, 2, &err);
    if (h == NULL)
        fail_msg("%s", err.message);
    char q[256];
    snprintf(q, sizeof(q), "SELECT COUNT(*) AS n FROM %s", parent_name);
    assert_int_equal(count_rows(dk_harness_db(h), q), 1);
    dk_harness_free(h);
}

/* sql_postgres replaces sql on PostgreSQL only; a migration without it runs
 * sql on both. Each text fails on the other engine (AUTOINCREMENT is SQLite's,
 * GENERATED ... AS IDENTITY PostgreSQL's) and records which one ran. */
static void test_migration_sql_per_engine(void **state)
{
    char name[64], lite[512], pg[512], both[256], q[256];
    snprintf(name, sizeof(name), "dia%s", suffix);
    snprintf(lite, sizeof(lite),
             "CREATE TABLE t_%s (id INTEGER PRIMARY KEY AUTOINCREMENT, engine TEXT NOT NULL);"
             "INSERT INTO t_%s (engine) VALUES ('sqlite')", name, name);
    snprintf(pg, sizeof(pg),
             "CREATE TABLE t_%s (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
             " engine TEXT NOT NULL);"
             "INSERT INTO t_%s (engine) VALUES ('postgres')", name, name);
    snprintf(both, sizeof(both), "INSERT INTO t_%s (engine) VALUES ('both')", name);
    dk_migration migs[] = {{1, "create", lite, pg}, {2, "seed_both", both, NULL}, {0}};
    dk_plugin p = {.name = name, .migrations = migs};
    const dk_plugin *list[] = {&p};
    dk_err err = {0};
    dk_harness *h = harness_with_db(list, 1, &err);
    if (h == NULL)
        fail_msg("%s", err.message);
    dk_db *db = dk_harness_db(h);
    const char *engine = dk_db_engine(db);
    bool on_pg = strcmp(engine, "postgres") == 0;
    assert_int_equal(on_pg, getenv("DK_TEST_PG_URL") != NULL && *getenv("DK_TEST_PG_URL"));

    json_t *rows = NULL;
    snprintf(q, sizeof(q), "SELECT engine FROM t_%s ORDER BY id", name);
    assert_int_equal(dk_db_query(db, q, NULL, &rows), 0);
    assert_int_equal(json_array_size(rows), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "engine")),
                        engine);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 1), "engine")),
                        "both");
    json_decref(rows);

    /* Recorded under the same names on either engine. */
    snprintf(q, sizeof(q),
             "SELECT COUNT(*) AS n FROM donkey_migrations WHERE plugin = '%s'"
             " AND name IN ('001_create', '002_seed_both')",
             name);
    assert_int_equal(count_rows(db, q), 2);
    dk_harness_free(h);

    /* The same list again: nothing runs twice (a second CREATE would fail). */
    h = harness_with_db(list, 1, &err);
    if (h == NULL)
        fail_msg("%s", err.message);
    snprintf(q, sizeof(q), "SELECT COUNT(*) AS n FROM t_%s", name);
    assert_int_equal(count_rows(dk_harness_db(h), q), 2);
    dk_harness_free(h);

    /* dk_db_migrate() directly, on an in-memory SQLite database: `sql`. */
    dk_db *mem = dk_db_open("sqlite::memory:", &err);
    assert_non_null(mem);
    assert_int_equal(dk_db_migrate(mem, name, migs, 2, NULL, &err), 0);
    snprintf(q, sizeof(q), "SELECT COUNT(*) AS n FROM t_%s WHERE engine = 'sqlite'", name);
    assert_int_equal(count_rows(mem, q), 1);
    dk_db_close(mem);
}

/* Issue 16, the `donkey dev` story: a migration is created empty (comments
 * only) and the app restarts: start-up refuses it instead of recording it.
 * Once written it is applied; editing it afterwards is a start-up error that
 * names plugin and migration and says to write a new migration. Works on the
 * SQLite file and on PostgreSQL (unit.test_plugin_pg). */
static void test_migration_empty_then_edited(void **state)
{
    char name[64], sql1[128], sql2[128], msg[128];
    snprintf(name, sizeof(name), "chk%s", suffix);
    snprintf(sql1, sizeof(sql1), "CREATE TABLE t_%s (id INTEGER PRIMARY KEY)", name);
    snprintf(sql2, sizeof(sql2), "ALTER TABLE t_%s ADD COLUMN note TEXT", name);
    const char *empty = "-- new migration\n-- Example:\n--   ALTER TABLE x ADD COLUMN y TEXT;\n";
    dk_migration v_empty[] = {{1, "create", sql1, NULL}, {2, "add_note", empty, NULL}, {0}};
    dk_migration v_full[] = {{1, "create", sql1, NULL}, {2, "add_note", sql2, NULL}, {0}};
    dk_migration v_edit[] = {{1, "create", sql1, NULL}, {2, "add_note", sql1, NULL}, {0}};
    dk_plugin pe = {.name = name, .migrations = v_empty};
    dk_plugin pf = {.name = name, .migrations = v_full};
    dk_plugin px = {.name = name, .migrations = v_edit};
    const dk_plugin *le[] = {&pe}, *lf[] = {&pf}, *lx[] = {&px};

    dk_err err = {0};
    dk_harness *h = harness_with_db(le, 1, &err);
    assert_null(h);
    snprintf(msg, sizeof(msg), "plugin '%s': migration 002_add_note has no SQL statement", name);
    if (strstr(err.message, msg) == NULL)
        fail_msg("expected '%s' in: %s", msg, err.message);

    h = harness_with_db(lf, 1, &err);
    if (h == NULL)
        fail_msg("%s", err.message);
    char q[160];
    snprintf(q, sizeof(q), "SELECT COUNT(*) AS n FROM t_%s WHERE note IS NULL", name);
    assert_int_equal(count_rows(dk_harness_db(h), q), 0);
    dk_harness_free(h);

    memset(&err, 0, sizeof(err));
    h = harness_with_db(lx, 1, &err);
    assert_null(h);
    snprintf(msg, sizeof(msg), "plugin '%s': migration 002_add_note was edited", name);
    if (strstr(err.message, msg) == NULL || strstr(err.message, "write a new migration") == NULL)
        fail_msg("expected '%s' in: %s", msg, err.message);

    h = harness_with_db(lf, 1, &err); /* the original text starts again */
    if (h == NULL)
        fail_msg("%s", err.message);
    dk_harness_free(h);
}

/* ---- custom errors, middleware, kinds over the harness ---- */

typedef struct counter {
    int n;
} counter;

static int counter_create(dk_plugin_ctx *p, void **out, dk_err *err)
{
    counter *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return DK_ENOMEM;
    *out = c;
    return 0;
}

static void counter_destroy(dk_plugin_ctx *p, void *svc) { free(svc); }

static int gate_mw(dk_ctx *ctx, dk_request *req, dk_response *res, const json_t *config,
                   dk_next *next, void *user)
{
    counter *c = dk_plugin_service(user);
    c->n++;
    const char *key = dk_request_header(req, "x-key");
    if (key == NULL || strcmp(key, "k") != 0)
        return dk_fail_error(ctx, dk_errors_make(dk_ctx_core(ctx)->errors, "KeyMissing", NULL,
                                                 NULL));
    dk_ctx_set(ctx, "gate", json_integer(c->n));
    dk_next_run(next);
    return dk_response_set_header(res, "X-Gate", "passed");
}

typedef int (*upper_fn)(const char *in, char *out, size_t cap);

static int upper_kind(dk_ctx *ctx, dk_request *req, dk_response *res, const dk_route *route,
                      void *user)
{
    size_t len;
    const char *body = dk_request_body(req, &len);
    char out[256];
    upper_fn fn = (upper_fn)dk_route_handler(route);
    int rc = fn(body, out, sizeof(out));
    if (rc < 0)
        return rc;
    const char *prefix = json_string_value(json_object_get(dk_route_config(route), "prefix"));
    char *text = dk_ctx_printf(ctx, "%s%s", prefix ? prefix : "", out);
    dk_response_set_header(res, "Content-Type", "text/plain");
    return dk_response_set_body(res, text, strlen(text));
}

static int to_upper(const char *in, char *out, size_t cap)
{
    size_t i = 0;
    for (; in[i] && i + 1 < cap; i++)
        out[i] = (char)(in[i] >= 'a' && in[i] <= 'z' ? in[i] - 32 : in[i]);
    out[i] = '\0';
    return 0;
}

static const dk_plugin gate = {
    .name = "gate",
    .create = counter_create,
    .destroy = counter_destroy,
    .middleware = (const dk_plugin_middleware[]){{"gate", gate_mw}, {0}},
    .kinds = (const dk_plugin_kind[]){{"upper", upper_kind}, {0}},
    .errors = (const dk_plugin_error[]){{"KeyMissing", 401, "KEY_MISSING", "Send X-Key"},
                                        {"Teapot", 418, "I_AM_A_TEAPOT", NULL},
                                        {0}},
};

static int gated(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    counter *c = dk_ctx_service(ctx, "gate");
    *out = json_pack("{s:O, s:i}", "gate", dk_ctx_get(ctx, "gate"), "count", c->n);
    return 0;
}

static int teapot(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    return dk_fail_error(ctx, dk_errors_make(dk_ctx_core(ctx)->errors, "Teapot", "short and stout",
                                             NULL));
}

static void test_harness_routes_errors_middleware_kinds(void **state)
{
    const dk_plugin *plugins[] = {&gate};
    dk_err err = {0};
    dk_harness *h = dk_harness_new(plugins, 1, &err);
    assert_non_null(h);
    dk_router *r = dk_router_new("t");
    dk_route_typed(r, "teapot", NULL, NULL, teapot, NULL);
    dk_route_custom(r, "upper", "upper", 0, NULL, NULL, "{\"prefix\":\">\"}",
                    (dk_handler_fn)to_upper, NULL);
    dk_router *g = dk_router_child(r, "g");
    dk_router_use(g, "gate", NULL);
    dk_route_typed(g, "in", "{\"type\":\"object\"}", NULL, gated, NULL);
    if (dk_harness_use(h, r, &err) < 0)
        fail_msg("%s", err.message);

    char *out = NULL;
    assert_int_equal(dk_harness_call(h, "t.teapot", "{}", &out), 418);
    assert_string_equal(out, "{\"error\":\"I_AM_A_TEAPOT\",\"message\":\"short and stout\"}");
    free(out);

    assert_int_equal(dk_harness_call(h, "t.g.in", "{}", &out), 401);
    assert_string_equal(out, "{\"error\":\"KEY_MISSING\",\"message\":\"Send X-Key\"}");
    free(out);

    const char *hdrs[] = {"X-Key: k", NULL};
    dk_harness_response res;
    assert_int_equal(dk_harness_request(h, NULL, "/t.g.in", hdrs, "{}", &res), 0);
    assert_int_equal(res.status, 200);
    assert_int_equal(json_integer_value(json_object_get(res.json, "gate")), 2);
    assert_int_equal(json_integer_value(json_object_get(res.json, "count")), 2);
    assert_string_equal(dk_harness_response_header(&res, "x-gate"), "passed");
    assert_non_null(dk_harness_response_header(&res, "X-Request-Id"));
    dk_harness_response_free(&res);

    assert_int_equal(dk_harness_request(h, "POST", "t.upper", NULL, "hello", &res), 0);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body, ">HELLO");
    assert_null(res.json);
    dk_harness_response_free(&res);

    assert_int_equal(dk_harness_call(h, "t.none", "{}", NULL), 404);
    assert_int_equal(((counter *)dk_harness_service(h, "gate"))->n, 2);
    dk_harness_free(h);
}

static void test_cors_over_harness(void **state)
{
    const dk_plugin *plugins[] = {dk_plugin_cors(), dk_plugin_request_log()};
    dk_harness *h = dk_harness_new(plugins, 2, NULL);
    assert_non_null(h);
    dk_router *r = dk_router_new("c");
    dk_router_use(r, "requestLog", NULL);
    dk_router_use(r, "cors", "{\"origins\":\"*\"}");
    dk_route_typed(r, "x", NULL, NULL, ok_typed, NULL);
    assert_int_equal(dk_harness_use(h, r, NULL), 0);
    const char *pre[] = {"Origin: http://z", "Access-Control-Request-Method: POST", NULL};
    dk_harness_response res;
    assert_int_equal(dk_harness_request(h, "OPTIONS", "c.x", pre, NULL, &res), 0);
    assert_int_equal(res.status, 204);
    assert_string_equal(dk_harness_response_header(&res, "Access-Control-Allow-Origin"), "*");
    assert_non_null(dk_harness_response_header(&res, "Access-Control-Max-Age"));
    assert_string_equal(dk_harness_response_header(&res, "Vary"), "Origin");
    dk_harness_response_free(&res);
    const char *simple[] = {"Origin: http://z", NULL};
    assert_int_equal(dk_harness_request(h, "POST", "c.x", simple, "{}", &res), 0);
    assert_int_equal(res.status, 200);
    assert_string_equal(dk_harness_response_header(&res, "Access-Control-Allow-Origin"), "*");
    dk_harness_response_free(&res);
    dk_harness_free(h);
}

/* Issue 14, items 17 and 4: securityHeaders and originCheck. */
static void test_security_headers_over_harness(void **state)
{
    const dk_plugin *plugins[] = {dk_plugin_security_headers()};
    dk_harness *h = dk_harness_new(plugins, 1, NULL);
    assert_non_null(h);
    dk_router *r = dk_router_new("s");
    dk_router_use(r, "securityHeaders", NULL);
    dk_route_typed(r, "x", NULL, NULL, ok_typed, NULL);
    dk_router *r2 = dk_router_new("t");
    dk_router_use(r2, "securityHeaders",
                  "{\"referrerPolicy\":\"strict-origin-when-cross-origin\",\"frameOptions\":false}");
    dk_route_typed(r2, "x", NULL, NULL, ok_typed, NULL);
    assert_int_equal(dk_harness_use(h, r, NULL), 0);
    assert_int_equal(dk_harness_use(h, r2, NULL), 0);
    dk_harness_response res;
    assert_int_equal(dk_harness_request(h, "POST", "s.x", NULL, "{}", &res), 0);
    assert_int_equal(res.status, 200);
    const char *csp = dk_harness_response_header(&res, "Content-Security-Policy");
    assert_non_null(csp);
    assert_non_null(strstr(csp, "default-src 'self'"));
    assert_non_null(strstr(csp, "frame-ancestors 'none'"));
    assert_string_equal(dk_harness_response_header(&res, "X-Frame-Options"), "DENY");
    assert_string_equal(dk_harness_response_header(&res, "X-Content-Type-Options"), "nosniff");
    assert_string_equal(dk_harness_response_header(&res, "Referrer-Policy"), "no-referrer");
    dk_harness_response_free(&res);
    /* Error answers carry them too. */
    assert_int_equal(dk_harness_request(h, "POST", "s.x", NULL, "{bad", &res), 0);
    assert_int_equal(res.status, 400);
    assert_string_equal(dk_harness_response_header(&res, "X-Frame-Options"), "DENY");
    dk_harness_response_free(&res);
    /* Configured: a replaced value, a header left out. */
    assert_int_equal(dk_harness_request(h, "POST", "t.x", NULL, "{}", &res), 0);
    assert_string_equal(dk_harness_response_header(&res, "Referrer-Policy"),
                        "strict-origin-when-cross-origin");
    assert_null(dk_harness_response_header(&res, "X-Frame-Options"));
    assert_non_null(dk_harness_response_header(&res, "Content-Security-Policy"));
    dk_harness_response_free(&res);
    dk_harness_free(h);
}

static int ok_raw(dk_ctx *ctx, dk_request *req, dk_response *res, void *user)
{
    dk_response_set_status(res, 200);
    return dk_response_set_body(res, "ok", 2);
}

static int origin_status(dk_harness *h, const char *method, const char *const *headers)
{
    dk_harness_response res;
    assert_int_equal(dk_harness_request(h, method, "o.x", headers, "{}", &res), 0);
    int st = res.status;
    if (st == 403)
        assert_non_null(strstr(res.body, "FORBIDDEN"));
    dk_harness_response_free(&res);
    return st;
}

static void test_origin_check_over_harness(void **state)
{
    const dk_plugin *plugins[] = {dk_plugin_origin_check()};
    dk_harness *h = dk_harness_new(plugins, 1, NULL);
    assert_non_null(h);
    dk_router *r = dk_router_new("o");
    dk_router_use(r, "originCheck", "{\"origins\":[\"https://front.example\"]}");
    dk_route_typed(r, "x", NULL, NULL, ok_typed, NULL);
    dk_route_raw(r, "g", DK_METHOD_GET, ok_raw, NULL);
    assert_int_equal(dk_harness_use(h, r, NULL), 0);

    const char *none[] = {"Host: app.test:3000", NULL};
    const char *same[] = {"Host: app.test:3000", "Origin: http://app.test:3000", NULL};
    const char *same_tls[] = {"Host: app.test", "Origin: https://app.test:443", NULL};
    const char *listed[] = {"Host: app.test", "Origin: https://front.example", NULL};
    const char *other_port[] = {"Host: app.test:3000", "Origin: http://app.test:4000", NULL};
    const char *evil[] = {"Host: app.test:3000", "Origin: https://evil.example", NULL};
    const char *null_origin[] = {"Host: app.test:3000", "Origin: null", NULL};
    const char *sfs_cross[] = {"Host: app.test:3000", "Sec-Fetch-Site: cross-site", NULL};
    const char *sfs_site[] = {"Host: app.test:3000", "Sec-Fetch-Site: same-site", NULL};
    const char *sfs_same[] = {"Host: app.test:3000", "Sec-Fetch-Site: same-origin", NULL};
    assert_int_equal(origin_status(h, "POST", none), 200);
    assert_int_equal(origin_status(h, "POST", same), 200);
    assert_int_equal(origin_status(h, "POST", same_tls), 200);
    assert_int_equal(origin_status(h, "POST", listed), 200);
    assert_int_equal(origin_status(h, "POST", other_port), 403);
    assert_int_equal(origin_status(h, "POST", evil), 403);
    assert_int_equal(origin_status(h, "POST", null_origin), 403);
    assert_int_equal(origin_status(h, "POST", sfs_cross), 403);
    assert_int_equal(origin_status(h, "POST", sfs_site), 403);
    assert_int_equal(origin_status(h, "POST", sfs_same), 200);
    /* Reads are not refused. */
    dk_harness_response res;
    assert_int_equal(dk_harness_request(h, "GET", "o.g", evil, NULL, &res), 0);
    assert_int_equal(res.status, 200);
    dk_harness_response_free(&res);
    dk_harness_free(h);
}

/* ---- next() twice ---- */

static int handler_runs;

static int twice_mw(dk_ctx *ctx, dk_request *req, dk_response *res, const json_t *config,
                    dk_next *next, void *user)
{
    assert_int_equal(dk_next_run(next), 0);
    assert_int_equal(dk_next_run(next), DK_ESTATE);
    return 0;
}

static int counting(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    handler_runs++;
    *out = json_pack("{s:i}", "runs", handler_runs);
    return 0;
}

static const dk_plugin twice = {
    .name = "twice",
    .middleware = (const dk_plugin_middleware[]){{"twice", twice_mw}, {0}},
};

static void test_second_next_does_not_rerun_handler(void **state)
{
    const dk_plugin *plugins[] = {&twice};
    dk_harness *h = dk_harness_new(plugins, 1, NULL);
    assert_non_null(h);
    dk_router *r = dk_router_new("n");
    dk_router_use(r, "twice", NULL);
    dk_route_typed(r, "x", NULL, NULL, counting, NULL);
    assert_int_equal(dk_harness_use(h, r, NULL), 0);
    handler_runs = 0;
    char *out = NULL;
    assert_int_equal(dk_harness_call(h, "n.x", "{}", &out), 200);
    assert_string_equal(out, "{\"runs\":1}");
    assert_int_equal(handler_runs, 1);
    free(out);
    dk_harness_free(h);
}

/* ---- a real app: start, stop, teardown ---- */

static void test_app_lifecycle_runs_teardown_in_reverse(void **state)
{
    dk_app_options o;
    dk_app_options_init(&o);
    o.port = 0;
    o.install_signals = false;
    o.log_level = DK_LOG_ERROR;
    o.shutdown_grace_ms = 1000;
    dk_app *app = dk_app_new(&o);
    dk_app_add_plugin(app, &pb, NULL);
    dk_app_add_plugin(app, &pa, NULL);
    dk_router *r = dk_router_new("t");
    dk_route_typed(r, "x", NULL, NULL, ok_typed, NULL);
    dk_app_use(app, r);
    dk_err err = {0};
    trail[0] = '\0';
    if (dk_app_start(app, &err) < 0)
        fail_msg("%s", err.message);
    assert_string_equal(trail, "create:a init:a create:b init:b");
    assert_non_null(dk_app_core(app)->db);
    trail[0] = '\0';
    dk_app_stop(app);
    dk_app_wait(app);
    assert_string_equal(trail, "teardown:b teardown:a destroy:b destroy:a");
    dk_app_free(app);
}

static void test_describe_lists_events(void **state)
{
    const dk_plugin ev = {.name = "chat",
                                 .events = (const char *const[]){"message", "joined", NULL},
                                 .sse_channels = (const char *const[]){"room", NULL}};
    dk_app_options o;
    dk_app_options_init(&o);
    o.log_level = DK_LOG_ERROR;
    dk_app *app = dk_app_new(&o);
    dk_app_add_plugin(app, &ev, NULL);
    json_t *doc = dk_app_routes_json(app, NULL);
    assert_non_null(doc);
    json_t *events = json_object_get(doc, "events");
    assert_int_equal(json_array_size(events), 2);
    assert_string_equal(json_string_value(json_array_get(events, 0)), "chat.message");
    assert_string_equal(json_string_value(json_array_get(json_object_get(doc, "sseChannels"), 0)),
                        "room");
    json_decref(doc);
    dk_app_free(app);
}

static int setup_all(void **state)
{
    snprintf(suffix, sizeof(suffix), "_%ld_%ld", (long)getpid(), (long)time(NULL) % 100000);
    snprintf(dbfile, sizeof(dbfile), "sqlite:/tmp/dk-test-plugin%s.db", suffix);
    return 0;
}

static int teardown_all(void **state)
{
    const char *path = dbfile + strlen("sqlite:");
    char extra[300];
    unlink(path);
    snprintf(extra, sizeof(extra), "%s-wal", path);
    unlink(extra);
    snprintf(extra, sizeof(extra), "%s-shm", path);
    unlink(extra);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dependency_order_and_reverse_teardown),
        cmocka_unit_test(test_independent_plugins_keep_registration_order),
        cmocka_unit_test(test_startup_errors),
        cmocka_unit_test(test_duplicate_returns_eexist),
        cmocka_unit_test(test_unknown_middleware_and_kind_stop_startup),
        cmocka_unit_test(test_failing_constructor_rolls_back),
        cmocka_unit_test(test_undeclared_dependency_is_null),
        cmocka_unit_test(test_plugin_config),
        cmocka_unit_test(test_migrations_tracked_across_restarts),
        cmocka_unit_test(test_failing_migration_rolls_back_and_stops),
        cmocka_unit_test(test_migrations_in_dependency_order),
        cmocka_unit_test(test_migration_sql_per_engine),
        cmocka_unit_test(test_migration_empty_then_edited),
        cmocka_unit_test(test_harness_routes_errors_middleware_kinds),
        cmocka_unit_test(test_cors_over_harness),
        cmocka_unit_test(test_security_headers_over_harness),
        cmocka_unit_test(test_origin_check_over_harness),
        cmocka_unit_test(test_second_next_does_not_rerun_handler),
        cmocka_unit_test(test_app_lifecycle_runs_teardown_in_reverse),
        cmocka_unit_test(test_describe_lists_events),
    };
    if (getenv("DK_TEST_PG_URL") != NULL)
        printf("# migrations against PostgreSQL\n");
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
