/* bench_app: the application bench/run drives for the database figure and the
 * jobs figures.
 *
 *   POST /bench.items {"offset": 0}   typed route behind three trivial
 *                                      middlewares; reads 10 rows from SQLite
 *   POST /bench.echo  (same body and schema as conf.echo)
 *   POST /bench.pgsleep {}              one `SELECT pg_sleep(0.002)` (a database
 *                                      2 ms away; PostgreSQL only), bench/realwork
 *   POST /bench.hash {"password": "..."} Argon2id (libsodium, interactive limits)
 *                                      through dk_blocking(), bench/realwork
 *
 * The "benchdata" plugin provides the middlewares and a migration that
 * creates and seeds the `items` table.
 *
 * Extra flags (after the standard ones, see dk_app_options_parse()):
 *   --jobs N            once listening, wait --jobs-delay-ms, then enqueue N
 *                       no-op jobs into their own SQLite file (--jobs-db) and
 *                       print "JOBS n=<N> enqueue_ms=<ms> total_ms=<ms>" on
 *                       stdout when the last one is completed
 *   --jobs-delay-ms MS  default 0
 *   --jobs-db URL       default sqlite:/tmp/dk_bench_app_jobs.db (deleted first)
 *   --jobs-concurrency C  worker threads, default the queue's default
 *   --exit-after-jobs   stop the server once the jobs figure is printed */
#include <donkey/donkey.h>
#include <donkey/db.h>
#include <donkey/events.h>
#include <donkey/jobs.h>
#include <donkey/plugin.h>

#include <sodium.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- three trivial middlewares ---- */

static int mw_tag(dk_ctx *ctx, dk_request *req, dk_response *res, const json_t *config,
                  dk_next *next, void *user)
{
    dk_ctx_set_ptr(ctx, "bench.tag", (void *)"tagged");
    return dk_next_run(next);
}

static int mw_guard(dk_ctx *ctx, dk_request *req, dk_response *res, const json_t *config,
                    dk_next *next, void *user)
{
    if (dk_request_header(req, "x-bench-deny") != NULL)
        return dk_fail(ctx, 403, "denied");
    return dk_next_run(next);
}

static int mw_header(dk_ctx *ctx, dk_request *req, dk_response *res, const json_t *config,
                     dk_next *next, void *user)
{
    int rc = dk_next_run(next);
    dk_response_set_header(res, "X-Bench", "1");
    return rc;
}

/* ---- plugin: middlewares + seeded table ---- */

static const dk_migration bench_migrations[] = {
    {1, "create_items",
     "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price INTEGER NOT NULL);"
     "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 1000) "
     "INSERT INTO items (id, name, price) SELECT i, 'item ' || i, i * 7 % 1000 FROM seq;",
     NULL},
    {0},
};

static const dk_plugin bench_plugin = {
    .name = "benchdata",
    .version = "1",
    .middleware = (const dk_plugin_middleware[]){{"benchTag", mw_tag},
                                                 {"benchGuard", mw_guard},
                                                 {"benchHeader", mw_header},
                                                 {0}},
    .migrations = bench_migrations,
};

/* ---- routes ---- */

static int items(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    json_t *params = json_pack("[I]", json_integer_value(json_object_get(in, "offset")));
    json_t *rows = NULL;
    int rc = dk_db_query(dk_ctx_core(ctx)->db,
                         "SELECT id, name, price FROM items ORDER BY id LIMIT 10 OFFSET ?", params,
                         &rows);
    json_decref(params);
    if (rc != 0)
        return dk_fail_code(ctx, rc, "items");
    *out = json_pack("{s:o}", "items", rows);
    return *out ? 0 : DK_ENOMEM;
}

static int pgsleep(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    json_t *rows = NULL;
    int rc = dk_db_query(dk_ctx_core(ctx)->db, "SELECT pg_sleep(0.002) AS slept", NULL, &rows);
    json_decref(rows);
    if (rc != 0)
        return dk_fail_code(ctx, rc, "pg_sleep");
    *out = json_pack("{s:b}", "ok", 1);
    return *out ? 0 : DK_ENOMEM;
}

typedef struct hash_job {
    const char *password;
    char out[crypto_pwhash_STRBYTES];
} hash_job;

static int hash_fn(void *arg)
{
    hash_job *j = arg;
    return crypto_pwhash_str(j->out, j->password, strlen(j->password),
                             crypto_pwhash_OPSLIMIT_INTERACTIVE,
                             crypto_pwhash_MEMLIMIT_INTERACTIVE) == 0
               ? 0
               : DK_ENOMEM;
}

static int hash(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    hash_job j = {.password = json_string_value(json_object_get(in, "password"))};
    if (dk_blocking(ctx, hash_fn, &j) != 0)
        return dk_fail_internal(ctx, "hashing failed");
    *out = json_pack("{s:s}", "hash", j.out);
    return *out ? 0 : DK_ENOMEM;
}

static int echo(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    const char *name = json_string_value(json_object_get(in, "name"));
    char *msg = dk_ctx_printf(ctx, "hello %s", name);
    if (msg == NULL)
        return DK_ENOMEM;
    *out = json_pack("{s:s, s:O, s:O}", "message", msg, "n", json_object_get(in, "n"), "tags",
                     json_object_get(in, "tags"));
    return *out ? 0 : DK_ENOMEM;
}

#define ECHO_IN                                                                                 \
    "{\"type\":\"object\",\"properties\":{"                                                     \
    "\"name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":100},"                         \
    "\"n\":{\"type\":\"integer\",\"minimum\":0,\"default\":0},"                                 \
    "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"maxItems\":5,\"default\":[]}}," \
    "\"required\":[\"name\"],\"additionalProperties\":false}"

/* ---- jobs figure ---- */

typedef struct jobs_cfg {
    int n;
    int delay_ms;
    int concurrency;
    const char *url;
    bool exit_after;
    dk_app *app;
} jobs_cfg;

static atomic_int jobs_completed;

static int noop_job(dk_job_ctx *jc, const json_t *data, json_t **result, void *user)
{
    *result = json_true();
    return 0;
}

static int on_completed(const char *event, const json_t *data, void *user)
{
    atomic_fetch_add(&jobs_completed, 1);
    return 0;
}

static void unlink_sqlite(const char *url)
{
    if (strncmp(url, "sqlite:", 7) != 0 || strncmp(url, "sqlite::", 8) == 0)
        return;
    const char *path = url + 7;
    while (path[0] == '/' && path[1] == '/')
        path++;
    const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (int i = 0; i < 4; i++) {
        char p[512];
        snprintf(p, sizeof(p), "%s%s", path, suffixes[i]);
        unlink(p);
    }
}

static void *jobs_thread(void *arg)
{
    jobs_cfg *c = arg;
    if (c->delay_ms > 0) {
        struct timespec ts = {c->delay_ms / 1000, (long)(c->delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    unlink_sqlite(c->url);
    dk_err err = {0};
    dk_db *db = dk_db_open(c->url, &err);
    if (db == NULL) {
        printf("JOBS error=\"%s\"\n", err.message);
        fflush(stdout);
        return NULL;
    }
    dk_events *ev = dk_events_new(NULL);
    dk_events_on(ev, "job.completed", on_completed, NULL, NULL);
    dk_jobs_options o;
    dk_jobs_options_init(&o);
    o.db = db;
    o.events = ev;
    if (c->concurrency > 0)
        o.concurrency = c->concurrency;
    dk_jobs *jobs = dk_jobs_new(&o);
    dk_jobs_register(jobs, "noop", noop_job, NULL, NULL);
    if (dk_jobs_start(jobs, &err) != 0) {
        printf("JOBS error=\"%s\"\n", err.message);
        fflush(stdout);
        return NULL;
    }
    json_t *data = json_pack("{s:s, s:i}", "kind", "bench", "n", 0);
    uint64_t t0 = dk_now_ms();
    for (int i = 0; i < c->n; i++) {
        json_object_set_new(data, "n", json_integer(i));
        int rc = dk_jobs_enqueue(jobs, "noop", data, NULL, NULL);
        if (rc != 0) {
            printf("JOBS error=\"enqueue: %s\"\n", dk_strerror(rc));
            fflush(stdout);
            return NULL;
        }
    }
    uint64_t t1 = dk_now_ms();
    while (atomic_load(&jobs_completed) < c->n && dk_now_ms() - t0 < 120000) {
        struct timespec ts = {0, 500000};
        nanosleep(&ts, NULL);
    }
    uint64_t t2 = dk_now_ms();
    json_decref(data);
    printf("JOBS n=%d done=%d enqueue_ms=%llu total_ms=%llu\n", c->n,
           atomic_load(&jobs_completed), (unsigned long long)(t1 - t0),
           (unsigned long long)(t2 - t0));
    fflush(stdout);
    dk_jobs_free(jobs);
    dk_events_free(ev);
    dk_db_close(db);
    if (c->exit_after)
        dk_app_stop(c->app);
    return NULL;
}

int main(int argc, char **argv)
{
    dk_app_options opts;
    dk_app_options_init(&opts);
    dk_err err = {0};
    if (dk_app_options_parse(&opts, &argc, argv, &err) < 0) {
        fprintf(stderr, "bench_app: %s\n", err.message);
        return 2;
    }
    jobs_cfg jc = {.url = "sqlite:/tmp/dk_bench_app_jobs.db"};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--jobs") == 0 && i + 1 < argc)
            jc.n = atoi(argv[++i]);
        else if (strcmp(argv[i], "--jobs-delay-ms") == 0 && i + 1 < argc)
            jc.delay_ms = atoi(argv[++i]);
        else if (strcmp(argv[i], "--jobs-db") == 0 && i + 1 < argc)
            jc.url = argv[++i];
        else if (strcmp(argv[i], "--jobs-concurrency") == 0 && i + 1 < argc)
            jc.concurrency = atoi(argv[++i]);
        else if (strcmp(argv[i], "--exit-after-jobs") == 0)
            jc.exit_after = true;
        else {
            fprintf(stderr, "bench_app: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    dk_app *app = dk_app_new(&opts);
    if (app == NULL)
        return 1;
    jc.app = app;
    dk_app_add_plugin(app, &bench_plugin, NULL);
    dk_router *r = dk_router_new("bench");
    dk_route_typed(r, "echo", ECHO_IN, NULL, echo, NULL);
    dk_router_use(r, "benchTag", NULL);
    dk_router_use(r, "benchGuard", NULL);
    dk_router_use(r, "benchHeader", NULL);
    dk_route_typed(r, "items",
                   "{\"type\":\"object\",\"properties\":{"
                   "\"offset\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":990,\"default\":0}},"
                   "\"additionalProperties\":false}",
                   NULL, items, NULL);
    dk_router *w = dk_router_new("bench");
    dk_route_typed(w, "pgsleep", NULL, NULL, pgsleep, NULL);
    dk_route_typed(w, "hash",
                   "{\"type\":\"object\",\"properties\":{\"password\":{\"type\":\"string\","
                   "\"minLength\":1}},\"required\":[\"password\"]}",
                   NULL, hash, NULL);
    dk_app_use(app, r);
    dk_app_use(app, w);
    if (sodium_init() < 0) {
        fprintf(stderr, "bench_app: libsodium failed to initialise\n");
        return 1;
    }
    if (dk_app_start(app, &err) != 0) {
        fprintf(stderr, "bench_app: %s\n", err.message);
        dk_app_free(app);
        return 1;
    }
    pthread_t th;
    bool have_thread = false;
    if (jc.n > 0)
        have_thread = pthread_create(&th, NULL, jobs_thread, &jc) == 0;
    int rc = dk_app_wait(app);
    if (have_thread)
        pthread_join(th, NULL);
    dk_app_free(app);
    return rc == 0 ? 0 : 1;
}
