/* The job queue: jobs are rows of donkey_jobs; a pool of worker threads claims
 * due rows in one UPDATE ... RETURNING statement, runs their handlers and
 * records the outcome with one UPDATE each. */
#include "donkey/jobs.h"
#include "donkey/app.h"
#include "donkey/db.h"
#include "donkey/events.h"
#include "base/internal.h"
#include "base/offload.h"
#include "base/trace.h"
#include "base/prom.h"
#include "base/stats.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NO_DUE INT64_MAX
#define ERROR_MAX 1024
#define INTERRUPTED_TEXT "interrupted: the worker stopped while the job was running"

/* ------------------------------------------------------------------ */
/* Schema and SQL                                                      */

static const char SQLITE_SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS donkey_jobs ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " name TEXT NOT NULL,"
    " data TEXT NOT NULL,"
    " status TEXT NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " max_attempts INTEGER NOT NULL,"
    " run_at INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " started_at INTEGER,"
    " completed_at INTEGER,"
    " result TEXT,"
    " error TEXT,"
    " locked_by TEXT,"
    " lease_until INTEGER);"
    "CREATE INDEX IF NOT EXISTS donkey_jobs_due ON donkey_jobs (run_at, id)"
    " WHERE status IN ('pending', 'scheduled');"
    "CREATE INDEX IF NOT EXISTS donkey_jobs_name ON donkey_jobs (name, status, id);"
    "CREATE INDEX IF NOT EXISTS donkey_jobs_lease ON donkey_jobs (lease_until)"
    " WHERE status = 'running';";

static const char PG_SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS donkey_jobs ("
    " id BIGSERIAL PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " data TEXT NOT NULL,"
    " status TEXT NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " max_attempts INTEGER NOT NULL,"
    " run_at BIGINT NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " started_at BIGINT,"
    " completed_at BIGINT,"
    " result TEXT,"
    " error TEXT,"
    " locked_by TEXT,"
    " lease_until BIGINT);"
    "CREATE INDEX IF NOT EXISTS donkey_jobs_due ON donkey_jobs (run_at, id)"
    " WHERE status IN ('pending', 'scheduled');"
    "CREATE INDEX IF NOT EXISTS donkey_jobs_name ON donkey_jobs (name, status, id);"
    "CREATE INDEX IF NOT EXISTS donkey_jobs_lease ON donkey_jobs (lease_until)"
    " WHERE status = 'running';";

#define JOB_COLUMNS                                                                                \
    "id, name, data, status, attempts, max_attempts, result, error, run_at, created_at,"           \
    " started_at, completed_at"

#define CLAIM_HEAD                                                                                 \
    "UPDATE donkey_jobs SET status = 'running', attempts = attempts + 1, started_at = ?,"          \
    " locked_by = ?, lease_until = ? WHERE id IN (SELECT id FROM donkey_jobs"                      \
    " WHERE status IN ('pending', 'scheduled') AND run_at <= ? ORDER BY run_at, id LIMIT ?"
#define CLAIM_TAIL ") RETURNING id, name, data, attempts, max_attempts, trace"

static const char SQL_CLAIM_PG[] = CLAIM_HEAD " FOR UPDATE SKIP LOCKED" CLAIM_TAIL;

static const char SQL_DUE_SQLITE[] =
    "SELECT id, name, data, attempts, max_attempts, trace FROM donkey_jobs"
    " WHERE status IN ('pending', 'scheduled') AND run_at <= ? ORDER BY run_at, id LIMIT ?";
static const char SQL_TAKE_SQLITE[] =
    "UPDATE donkey_jobs SET status = 'running', attempts = attempts + 1, started_at = ?,"
    " locked_by = ?, lease_until = ? WHERE id = ?";

#define INSERT_SQL                                                                                 \
    "INSERT INTO donkey_jobs (name, data, status, attempts, max_attempts, run_at,"                 \
    " created_at, trace) VALUES (?, ?, ?, 0, ?, ?, ?, ?)"
static const char SQL_INSERT_SQLITE[] = INSERT_SQL;
static const char SQL_INSERT_PG[] = INSERT_SQL " RETURNING id";

#define OWNED " WHERE id = ? AND status = 'running' AND locked_by = ?"
static const char SQL_COMPLETE[] =
    "UPDATE donkey_jobs SET status = 'completed', result = ?, completed_at = ?,"
    " locked_by = NULL, lease_until = NULL" OWNED;
static const char SQL_RETRY[] =
    "UPDATE donkey_jobs SET status = ?, run_at = ?, error = ?, locked_by = NULL,"
    " lease_until = NULL" OWNED;
static const char SQL_FAIL[] =
    "UPDATE donkey_jobs SET status = 'failed', error = ?, completed_at = ?,"
    " locked_by = NULL, lease_until = NULL" OWNED;
/* A claimed job that never started: the claim is undone. */
static const char SQL_RELEASE[] =
    "UPDATE donkey_jobs SET status = 'pending', attempts = attempts - 1, locked_by = NULL,"
    " lease_until = NULL" OWNED;
static const char SQL_RECOVER_ALL[] =
    "UPDATE donkey_jobs SET status = 'pending', error = ?, locked_by = NULL,"
    " lease_until = NULL WHERE status = 'running'";
static const char SQL_RECOVER_EXPIRED[] =
    "UPDATE donkey_jobs SET status = 'pending', error = ?, locked_by = NULL,"
    " lease_until = NULL WHERE status = 'running' AND lease_until < ?";
static const char SQL_RENEW[] =
    "UPDATE donkey_jobs SET lease_until = ? WHERE status = 'running' AND locked_by = ?";
static const char SQL_NOTIFY[] = "NOTIFY donkey_jobs";
static const char SQL_NEXT_DUE[] =
    "SELECT MIN(run_at) AS t FROM donkey_jobs WHERE status IN ('pending', 'scheduled')";
static const char SQL_GET[] = "SELECT " JOB_COLUMNS " FROM donkey_jobs WHERE id = ?";
static const char SQL_STATUS[] = "SELECT status FROM donkey_jobs WHERE id = ?";
static const char SQL_CANCEL[] = "UPDATE donkey_jobs SET status = 'cancelled', completed_at = ?"
                                 " WHERE id = ? AND status IN ('pending', 'scheduled')";
static const char SQL_RETRY_NOW[] =
    "UPDATE donkey_jobs SET status = 'pending', run_at = ?, completed_at = NULL,"
    " attempts = CASE WHEN status = 'scheduled' THEN attempts ELSE 0 END"
    " WHERE id = ? AND status IN ('failed', 'cancelled', 'scheduled')";
static const char SQL_DELETE[] = "DELETE FROM donkey_jobs WHERE id = ? AND status <> 'running'";
static const char SQL_PURGE[] =
    "DELETE FROM donkey_jobs WHERE status IN ('completed', 'failed', 'cancelled')"
    " AND completed_at < ?";

/* ------------------------------------------------------------------ */
/* State                                                               */

typedef struct handler {
    char *name;
    dk_job_fn fn;
    void *user;
    dk_free_fn user_free;
    /* Counters for /metrics and the operations page (src/http/metrics.c, src/web/metrics_page.c). */
    _Atomic uint64_t n_enqueued, n_started, n_completed, n_failed, n_retried;
} handler;

typedef struct worker {
    dk_jobs *jobs;
    pthread_t thread;
    uint64_t gen; /* the run it belongs to; differs from jobs->gen once abandoned */
    bool done;    /* left its loop (under jobs->lock) */
} worker;

struct dk_job_ctx {
    dk_jobs *jobs;
    int64_t id;
    const char *name;
    int attempt, max_attempts;
    bool failed, final;
    char error[ERROR_MAX];
};

struct dk_jobs {
    dk_jobs_options o;
    char *instance_id;
    atomic_int refs;

    pthread_mutex_t schema_lock; /* first database use */
    atomic_bool schema_ready;
    bool sqlite;
    pthread_mutex_t write_lock; /* our SQLite writes, one at a time (no busy sleeps) */
    pthread_mutex_t life_lock;  /* start/stop */

    pthread_mutex_t lock;    /* everything below */
    pthread_cond_t wake;     /* workers wait here for work */
    pthread_cond_t exited;   /* dk_jobs_stop() waits here */
    pthread_cond_t lease_cv; /* the lease keeper waits here */
    pthread_t lease_thread;
    bool lease_running, lease_stop;
    handler **handlers;
    size_t nhandlers, hcap;
    bool started, stopping;
    uint64_t gen;
    worker **workers;
    size_t nworkers;
    int live; /* workers of the current run still in their loop */
    int idle; /* workers waiting on `wake` */
    int busy; /* handlers running */
    bool claiming;
    bool dirty;       /* the table may hold due jobs */
    bool refresh_due; /* re-read the earliest run_at */
    bool reap;        /* take back expired leases (shared mode) */
    uint64_t work_gen;
    int64_t next_due;                     /* wall ms of the earliest known future job */
    uint64_t next_poll;                   /* monotonic ms */
    json_t *queue;                        /* claimed rows waiting for a worker */
    struct outcome *outbox, *outbox_tail; /* finished attempts not yet written */
    bool flushing;
    dk__hist run_hist; /* handler run durations */
};

static const char *const STATUSES[] = {"pending",   "scheduled", "running",
                                       "completed", "failed",    "cancelled"};

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

static dk_db *db_of(const dk_jobs *j)
{
    if (j->o.db != NULL)
        return j->o.db;
    return j->o.core != NULL ? j->o.core->db : NULL;
}

static dk_events *events_of(const dk_jobs *j)
{
    if (j->o.events != NULL)
        return j->o.events;
    return j->o.core != NULL ? j->o.core->events : NULL;
}

static dk_logger *logger_of(const dk_jobs *j)
{
    if (j->o.logger != NULL)
        return j->o.logger;
    return j->o.core != NULL ? j->o.core->logger : NULL;
}

static void warn(dk_jobs *j, const char *what, int rc)
{
    dk_logger *lg = logger_of(j);
    if (lg != NULL)
        dk_logf(lg, DK_LOG_WARN, "[Jobs] %s: %s (%s)", what, dk_strerror(rc),
                dk_db_errmsg(db_of(j)));
}

static void wlock(dk_jobs *j)
{
    if (j->sqlite)
        pthread_mutex_lock(&j->write_lock);
}

static void wunlock(dk_jobs *j)
{
    if (j->sqlite)
        pthread_mutex_unlock(&j->write_lock);
}

static int write_exec(dk_jobs *j, const char *sql, json_t *params, int64_t *changes,
                      int64_t *last_id)
{
    wlock(j);
    int rc = dk_db_exec(db_of(j), sql, params, changes, last_id);
    wunlock(j);
    json_decref(params);
    return rc;
}

static void timespec_at(uint64_t mono_ms, struct timespec *ts)
{
    ts->tv_sec = (time_t)(mono_ms / 1000);
    ts->tv_nsec = (long)(mono_ms % 1000) * 1000000L;
}

static uint64_t rand64(void)
{
    static _Thread_local uint64_t s;
    if (s == 0)
        s = dk_now_ms() ^ ((uint64_t)(uintptr_t)&s << 16) ^ 0x9e3779b97f4a7c15ULL;
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
}

/* Delay before the retry that follows failed attempt `attempt` (1-based). */
static int64_t backoff_ms(const dk_jobs *j, int attempt)
{
    if (j->o.backoff_base_ms == 0)
        return 0;
    double d = (double)j->o.backoff_base_ms;
    for (int i = 1; i < attempt && d < (double)j->o.backoff_max_ms; i++)
        d *= 2;
    d *= 0.8 + 0.4 * ((double)(rand64() >> 11) / 9007199254740992.0);
    if (d > (double)j->o.backoff_max_ms)
        d = (double)j->o.backoff_max_ms;
    return d < 1 ? 1 : (int64_t)d;
}

static json_t *time_json(const json_t *ms)
{
    if (!json_is_integer(ms))
        return json_null();
    char buf[32];
    return json_string(dk_iso8601(json_integer_value(ms), buf, sizeof(buf)));
}

static json_t *parse_text(const json_t *text)
{
    if (!json_is_string(text))
        return json_null();
    json_t *v =
        json_loadb(json_string_value(text), json_string_length(text), JSON_DECODE_ANY, NULL);
    return v != NULL ? v : json_null();
}

/* A row of JOB_COLUMNS as the public job object; NULL when out of memory. */
static json_t *row_to_job(const json_t *row)
{
    const json_t *err = json_object_get(row, "error");
    return json_pack("{s:O, s:O, s:o, s:O, s:O, s:O, s:o, s:O, s:o, s:o, s:o, s:o}", "id",
                     json_object_get(row, "id"), "name", json_object_get(row, "name"), "data",
                     parse_text(json_object_get(row, "data")), "status",
                     json_object_get(row, "status"), "attempts", json_object_get(row, "attempts"),
                     "maxAttempts", json_object_get(row, "max_attempts"), "result",
                     parse_text(json_object_get(row, "result")), "error",
                     err != NULL ? err : json_null(), "runAt",
                     time_json(json_object_get(row, "run_at")), "createdAt",
                     time_json(json_object_get(row, "created_at")), "startedAt",
                     time_json(json_object_get(row, "started_at")), "completedAt",
                     time_json(json_object_get(row, "completed_at")));
}

static handler *find_handler(dk_jobs *j, const char *name)
{
    for (size_t i = 0; i < j->nhandlers; i++)
        if (strcmp(j->handlers[i]->name, name) == 0)
            return j->handlers[i];
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                          */

void dk_jobs_options_init(dk_jobs_options *o)
{
    memset(o, 0, sizeof(*o));
    o->concurrency = 5;
    o->poll_interval_ms = 1000;
    o->max_attempts = 3;
    o->backoff_base_ms = 1000;
    o->backoff_max_ms = 300000;
    o->stop_timeout_ms = 30000;
    o->lease_ms = 30000;
    const char *env = getenv("DK_JOBS_BACKOFF_MS");
    if (env != NULL && *env != '\0') {
        char *end;
        unsigned long long v = strtoull(env, &end, 10);
        if (*end == '\0')
            o->backoff_base_ms = v;
    }
}

dk_jobs *dk_jobs_new(const dk_jobs_options *opts)
{
    dk_jobs_options o;
    if (opts != NULL)
        o = *opts;
    else
        dk_jobs_options_init(&o);
    if (o.db == NULL && o.core == NULL)
        return NULL;
    if (o.concurrency < 1)
        o.concurrency = 1;
    if (o.max_attempts < 1)
        o.max_attempts = 1;
    if (o.poll_interval_ms == 0)
        o.poll_interval_ms = 1000;
    if (o.backoff_max_ms < o.backoff_base_ms)
        o.backoff_max_ms = o.backoff_base_ms;

    dk_jobs *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return NULL;
    j->o = o;
    if (o.instance_id != NULL) {
        j->instance_id = dk__strdup(o.instance_id);
    } else {
        j->instance_id = malloc(37);
        if (j->instance_id != NULL)
            dk_uuid_v4(j->instance_id);
    }
    j->o.instance_id = j->instance_id;
    j->queue = json_array();
    if (j->instance_id == NULL || j->queue == NULL)
        goto fail_mem;

    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        goto fail_mem;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&j->schema_lock, NULL);
    pthread_mutex_init(&j->write_lock, NULL);
    pthread_mutex_init(&j->life_lock, NULL);
    pthread_mutex_init(&j->lock, NULL);
    pthread_cond_init(&j->wake, &ca);
    pthread_cond_init(&j->exited, &ca);
    pthread_cond_init(&j->lease_cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&j->refs, 1);
    atomic_init(&j->schema_ready, false);
    j->next_due = NO_DUE;
    return j;

fail_mem:
    json_decref(j->queue);
    free(j->instance_id);
    free(j);
    return NULL;
}

static void jobs_unref(dk_jobs *j)
{
    if (atomic_fetch_sub(&j->refs, 1) != 1)
        return;
    for (size_t i = 0; i < j->nhandlers; i++) {
        handler *h = j->handlers[i];
        if (h->user_free != NULL)
            h->user_free(h->user);
        free(h->name);
        free(h);
    }
    free(j->handlers);
    free(j->workers);
    json_decref(j->queue);
    free(j->instance_id);
    pthread_cond_destroy(&j->wake);
    pthread_cond_destroy(&j->exited);
    pthread_cond_destroy(&j->lease_cv);
    pthread_mutex_destroy(&j->lock);
    pthread_mutex_destroy(&j->life_lock);
    pthread_mutex_destroy(&j->write_lock);
    pthread_mutex_destroy(&j->schema_lock);
    free(j);
}

void dk_jobs_free(dk_jobs *jobs)
{
    if (jobs == NULL)
        return;
    dk_jobs_stop(jobs, DK_JOBS_STOP_DEFAULT);
    jobs_unref(jobs);
}

int dk_jobs_register(dk_jobs *jobs, const char *name, dk_job_fn fn, void *user,
                     dk_free_fn user_free)
{
    int rc = 0;
    handler *h = NULL;
    if (jobs == NULL || name == NULL || *name == '\0' || fn == NULL) {
        rc = DK_EINVAL;
        goto fail;
    }
    h = calloc(1, sizeof(*h));
    if (h == NULL || (h->name = dk__strdup(name)) == NULL) {
        rc = DK_ENOMEM;
        goto fail;
    }
    h->fn = fn;
    h->user = user;
    h->user_free = user_free;

    pthread_mutex_lock(&jobs->lock);
    if (find_handler(jobs, name) != NULL) {
        rc = DK_EEXIST;
    } else if (jobs->nhandlers == jobs->hcap) {
        size_t cap = jobs->hcap ? jobs->hcap * 2 : 8;
        handler **nh = realloc(jobs->handlers, cap * sizeof(*nh));
        if (nh == NULL) {
            rc = DK_ENOMEM;
        } else {
            jobs->handlers = nh;
            jobs->hcap = cap;
        }
    }
    if (rc == 0)
        jobs->handlers[jobs->nhandlers++] = h;
    pthread_mutex_unlock(&jobs->lock);
    if (rc == 0)
        return 0;

fail:
    if (h != NULL) {
        free(h->name);
        free(h);
    }
    if (user_free != NULL)
        user_free(user);
    return rc;
}

/* Runs the migration once, on the first call that needs the table. */
static int ensure_schema(dk_jobs *j, dk_err *err)
{
    if (atomic_load(&j->schema_ready))
        return 0;
    pthread_mutex_lock(&j->schema_lock);
    int rc = 0;
    if (!atomic_load(&j->schema_ready)) {
        dk_db *db = db_of(j);
        if (db == NULL) {
            rc = dk_err_set(err, DK_ESTATE, "jobs: no database");
        } else {
            j->sqlite = strcmp(dk_db_engine(db), "sqlite") == 0;
            /* 2: the trace id of the request that enqueued the job
             * (docs/observability.md "Trace context"). */
            dk_migration m[] = {
                {1, "create_jobs", SQLITE_SCHEMA, PG_SCHEMA},
                {2, "job_trace", "ALTER TABLE donkey_jobs ADD COLUMN trace TEXT",
                 "ALTER TABLE donkey_jobs ADD COLUMN trace TEXT"},
            };
            rc = dk_db_migrate(db, "donkey.jobs", m, 2, logger_of(j), err);
            if (rc == 0)
                atomic_store(&j->schema_ready, true);
        }
    }
    pthread_mutex_unlock(&j->schema_lock);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Workers                                                             */

/* The outcome of one attempt, waiting to be written. Workers hand outcomes to
 * an outbox; one of them at a time writes everything queued in a single
 * transaction (group commit), then emits the events, so a commit's cost is
 * shared by the jobs that finished meanwhile. */
typedef struct outcome {
    struct outcome *next;
    const char *sql;
    json_t *params; /* for `sql` */
    int64_t run_at; /* retry time to wake up for, or 0 */
    char *event;    /* "job.<name>.<completed|failed>", or NULL for none */
    json_t *ev_all; /* payloads of job.completed/job.failed and of `event` */
    json_t *ev_named;
    const char *what; /* for the log when the write fails */
    int rc;
} outcome;

#define FLUSH_MAX 256

static void outcome_free(outcome *oc)
{
    json_decref(oc->params);
    json_decref(oc->ev_all);
    json_decref(oc->ev_named);
    free(oc->event);
    free(oc);
}

static int claim_in_tx(dk_jobs *j, int slots, json_t **rows);

/* One write transaction: the outcomes of `batch` (may be NULL), then, when
 * `slots` > 0, the claim of up to `slots` due jobs into `*rows`. Sharing the
 * commit is what makes short jobs cheap. Returns the claim's result; each
 * outcome's own result is in its `rc`. */
static int write_round(dk_jobs *j, outcome *batch, int slots, json_t **rows)
{
    dk_db *db = db_of(j);
    *rows = NULL;
    if (batch == NULL && slots == 0)
        return 0;
    if (batch == NULL && !j->sqlite) /* the claim alone is one atomic statement */
        return claim_in_tx(j, slots, rows);
    wlock(j);
    int rc = dk_db_begin(db);
    if (rc == 0) {
        for (outcome *oc = batch; oc != NULL && rc == 0; oc = oc->next)
            rc = oc->rc = dk_db_exec(db, oc->sql, oc->params, NULL, NULL);
        if (rc == 0 && slots > 0)
            rc = claim_in_tx(j, slots, rows);
        if (rc == 0)
            rc = dk_db_commit(db);
        else
            dk_db_rollback(db);
    }
    if (rc != 0) {
        /* Retry each part on its own, so one bad write cannot lose the others. */
        json_decref(*rows);
        *rows = NULL;
        for (outcome *oc = batch; oc != NULL; oc = oc->next)
            oc->rc = dk_db_exec(db, oc->sql, oc->params, NULL, NULL);
        rc = 0;
        if (slots > 0 && (rc = dk_db_begin(db)) == 0) {
            rc = claim_in_tx(j, slots, rows);
            if (rc == 0)
                rc = dk_db_commit(db);
            else
                dk_db_rollback(db);
            if (rc != 0) {
                json_decref(*rows);
                *rows = NULL;
            }
        }
    }
    wunlock(j);
    return rc;
}

/* After the write: log failures, note retry times, emit the events. */
static void after_write(dk_jobs *j, outcome *batch)
{
    dk_events *ev = events_of(j);
    for (outcome *oc = batch; oc != NULL; oc = oc->next) {
        if (oc->rc < 0) {
            warn(j, oc->what, oc->rc);
            continue;
        }
        if (oc->run_at > 0) {
            pthread_mutex_lock(&j->lock);
            if (oc->run_at < j->next_due) {
                j->next_due = oc->run_at;
                if (j->idle > 0)
                    pthread_cond_signal(&j->wake);
            }
            pthread_mutex_unlock(&j->lock);
        }
        /* Emitted after the write and outside the success decision: a failing
         * subscriber cannot make a completed job run again. */
        if (ev != NULL && oc->event != NULL) {
            bool done = strcmp(oc->event + strlen(oc->event) - 10, ".completed") == 0;
            dk_events_emit(ev, done ? "job.completed" : "job.failed", oc->ev_all);
            dk_events_emit(ev, oc->event, oc->ev_named);
        }
    }
    while (batch != NULL) {
        outcome *next = batch->next;
        outcome_free(batch);
        batch = next;
    }
}

/* Takes up to FLUSH_MAX outcomes off the outbox. Caller holds j->lock. */
static outcome *outbox_take(dk_jobs *j)
{
    outcome *batch = j->outbox, *last = batch;
    if (batch == NULL)
        return NULL;
    for (int n = 1; n < FLUSH_MAX && last->next != NULL; n++)
        last = last->next;
    j->outbox = last->next;
    if (j->outbox == NULL)
        j->outbox_tail = NULL;
    last->next = NULL;
    return batch;
}

/* Caller holds j->lock. */
static void outbox_push(dk_jobs *j, outcome *oc)
{
    if (j->outbox_tail != NULL)
        j->outbox_tail->next = oc;
    else
        j->outbox = oc;
    j->outbox_tail = oc;
}

static outcome *outcome_new(const char *sql, json_t *params, const char *what)
{
    outcome *oc = calloc(1, sizeof(*oc));
    if (oc == NULL || params == NULL) {
        free(oc);
        json_decref(params);
        return NULL;
    }
    oc->sql = sql;
    oc->params = params;
    oc->what = what;
    return oc;
}

static char *event_name(const char *name, const char *suffix)
{
    size_t len = strlen(name) + strlen(suffix) + 6;
    char *event = malloc(len);
    if (event != NULL)
        snprintf(event, len, "job.%s.%s", name, suffix);
    return event;
}

/* Returns `oc`, or writes directly when there was no memory for it (no events then). */
static outcome *or_write(dk_jobs *j, outcome *oc, const char *sql, json_t *params, const char *what)
{
    if (oc != NULL) {
        json_decref(params);
        return oc;
    }
    int rc = write_exec(j, sql, params, NULL, NULL);
    if (rc < 0)
        warn(j, what, rc);
    return NULL;
}

static outcome *record_failure(dk_jobs *j, int64_t id, const char *name, int attempt,
                               int max_attempts, const char *error, bool final, bool events)
{
    int64_t now = dk_wall_ms();
    if (!final && attempt < max_attempts) {
        int64_t delay = backoff_ms(j, attempt);
        int64_t run_at = now + delay;
        json_t *params = json_pack("[s, I, s, I, s]", delay > 0 ? "scheduled" : "pending",
                                   (json_int_t)run_at, error, (json_int_t)id, j->instance_id);
        outcome *oc = outcome_new(SQL_RETRY, json_incref(params), "cannot record a failed attempt");
        if (oc != NULL)
            oc->run_at = run_at;
        return or_write(j, oc, SQL_RETRY, params, "cannot record a failed attempt");
    }
    json_t *params =
        json_pack("[s, I, I, s]", error, (json_int_t)now, (json_int_t)id, j->instance_id);
    outcome *oc = outcome_new(SQL_FAIL, json_incref(params), "cannot record a failed job");
    if (oc != NULL && events) {
        oc->event = event_name(name, "failed");
        oc->ev_all = json_pack("{s:I, s:s, s:s, s:i}", "jobId", (json_int_t)id, "name", name,
                               "error", error, "attempts", attempt);
        oc->ev_named = json_pack("{s:I, s:s, s:i}", "jobId", (json_int_t)id, "error", error,
                                 "attempts", attempt);
    }
    return or_write(j, oc, SQL_FAIL, params, "cannot record a failed job");
}

static outcome *record_success(dk_jobs *j, int64_t id, const char *name, int attempt,
                               int max_attempts, json_t *result)
{
    json_t *r = result != NULL ? result : json_null();
    char *text = json_dumps(r, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text == NULL) {
        return record_failure(j, id, name, attempt, max_attempts,
                              "cannot serialise the job's result", false, true);
    }
    json_t *params =
        json_pack("[s, I, I, s]", text, (json_int_t)dk_wall_ms(), (json_int_t)id, j->instance_id);
    free(text);
    outcome *oc = outcome_new(SQL_COMPLETE, json_incref(params), "cannot record a completed job");
    if (oc != NULL) {
        oc->event = event_name(name, "completed");
        oc->ev_all =
            json_pack("{s:I, s:s, s:O}", "jobId", (json_int_t)id, "name", name, "result", r);
        oc->ev_named = json_pack("{s:I, s:O}", "jobId", (json_int_t)id, "result", r);
    }
    return or_write(j, oc, SQL_COMPLETE, params, "cannot record a completed job");
}

/* Runs one claimed row; `*out` gets the outcome to write (or NULL). Returns
 * false when the worker was abandoned meanwhile. */
static bool run_job(worker *w, const json_t *row, outcome **out)
{
    dk_jobs *j = w->jobs;
    int64_t id = json_integer_value(json_object_get(row, "id"));
    const char *name = json_string_value(json_object_get(row, "name"));
    int attempt = (int)json_integer_value(json_object_get(row, "attempts"));
    int max_attempts = (int)json_integer_value(json_object_get(row, "max_attempts"));
    if (name == NULL)
        name = "";

    pthread_mutex_lock(&j->lock);
    handler *h = find_handler(j, name);
    pthread_mutex_unlock(&j->lock);
    if (h == NULL) {
        char msg[ERROR_MAX];
        snprintf(msg, sizeof(msg), "No handler registered for job \"%s\"", name);
        *out = record_failure(j, id, name, attempt, max_attempts, msg, true, false);
        return true;
    }

    /* Each attempt parses its own copy, so a handler cannot change the stored data. */
    json_t *data = parse_text(json_object_get(row, "data"));
    dk_job_ctx jc = {
        .jobs = j, .id = id, .name = name, .attempt = attempt, .max_attempts = max_attempts};
    json_t *result = NULL;
    /* The job continues the trace of the request that enqueued it (or starts
     * one): its log lines carry trace_id / span_id. */
    dk__trace trace;
    dk__trace_child(&trace, json_string_value(json_object_get(row, "trace")));
    const dk__trace *prev = dk__trace_enter(&trace);
    atomic_fetch_add_explicit(&h->n_started, 1, memory_order_relaxed);
    uint64_t t0 = dk__mono_us();
    int rc = h->fn(&jc, data, &result, h->user);
    dk__hist_add(&j->run_hist, dk__mono_us() - t0);
    dk__trace_enter(prev);
    if (rc >= 0)
        atomic_fetch_add_explicit(&h->n_completed, 1, memory_order_relaxed);
    else if (jc.final || attempt >= max_attempts)
        atomic_fetch_add_explicit(&h->n_failed, 1, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&h->n_retried, 1, memory_order_relaxed);
    json_decref(data);

    pthread_mutex_lock(&j->lock);
    bool abandoned = w->gen != j->gen;
    pthread_mutex_unlock(&j->lock);
    if (abandoned) {
        json_decref(result);
        return false;
    }
    if (rc >= 0) {
        *out = record_success(j, id, name, attempt, max_attempts, result);
    } else {
        const char *error = jc.failed ? jc.error : dk_strerror(rc);
        *out = record_failure(j, id, name, attempt, max_attempts, error, jc.final, true);
    }
    json_decref(result);
    return true;
}

/* Claims up to `slots` due jobs; runs inside the caller's transaction.
 * PostgreSQL: one UPDATE ... RETURNING whose FOR UPDATE SKIP LOCKED lets
 * several instances claim at once. SQLite: a SELECT and one UPDATE per row;
 * the transaction (BEGIN IMMEDIATE) holds the database's write lock, so no
 * other connection can claim the same rows. (UPDATE ... RETURNING would be one
 * statement, but SQLite builds a temporary table for it on every call, which
 * costs more than the extra statements.) */
static int claim_in_tx(dk_jobs *j, int slots, json_t **out)
{
    dk_db *db = db_of(j);
    int64_t now = dk_wall_ms();
    json_int_t lease = (json_int_t)(now + (int64_t)j->o.lease_ms);
    json_t *params;
    int rc;
    if (!j->sqlite) {
        params = json_pack("[I, s, I, I, i]", (json_int_t)now, j->instance_id, lease,
                           (json_int_t)now, slots);
        rc = params != NULL ? dk_db_query(db, SQL_CLAIM_PG, params, out) : DK_ENOMEM;
        json_decref(params);
        return rc;
    }
    json_t *rows = NULL;
    params = json_pack("[I, i]", (json_int_t)now, slots);
    rc = params != NULL ? dk_db_query(db, SQL_DUE_SQLITE, params, &rows) : DK_ENOMEM;
    json_decref(params);
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        if (rc != 0)
            break;
        params = json_pack("[I, s, I, O]", (json_int_t)now, j->instance_id, lease,
                           json_object_get(row, "id"));
        rc = params != NULL ? dk_db_exec(db, SQL_TAKE_SQLITE, params, NULL, NULL) : DK_ENOMEM;
        json_decref(params);
        json_int_t attempts = json_integer_value(json_object_get(row, "attempts"));
        json_object_set_new(row, "attempts", json_integer(attempts + 1));
    }
    if (rc != 0) {
        json_decref(rows);
        return rc;
    }
    *out = rows;
    return 0;
}

static int64_t read_next_due(dk_jobs *j)
{
    json_t *row = NULL;
    int64_t due = NO_DUE;
    if (dk_db_query_one(db_of(j), SQL_NEXT_DUE, NULL, &row) == 0) {
        json_t *t = json_object_get(row, "t");
        if (json_is_integer(t))
            due = json_integer_value(t);
        json_decref(row);
    }
    /* Rows already due that the claim left (locked elsewhere, or added since) are
     * looked at again shortly rather than in a busy loop. */
    int64_t soon = dk_wall_ms() + 10;
    return due != NO_DUE && due < soon ? soon : due;
}

static void reap_expired(dk_jobs *j)
{
    int64_t changed = 0;
    int rc =
        write_exec(j, SQL_RECOVER_EXPIRED,
                   json_pack("[s, I]", INTERRUPTED_TEXT, (json_int_t)dk_wall_ms()), &changed, NULL);
    if (rc < 0)
        warn(j, "cannot take back expired jobs", rc);
}

/* Shared mode: while this instance runs, the leases of the jobs it holds are
 * pushed forward every lease_ms / 3, so a job that runs longer than lease_ms
 * is not taken back and run a second time by another instance. A crashed
 * instance stops renewing and its jobs come back once the lease runs out. */
static void renew_leases(dk_jobs *j)
{
    int64_t until = dk_wall_ms() + (int64_t)j->o.lease_ms;
    int rc = write_exec(j, SQL_RENEW, json_pack("[I, s]", (json_int_t)until, j->instance_id), NULL,
                        NULL);
    if (rc < 0)
        warn(j, "cannot renew job leases", rc);
}

static void *lease_main(void *arg)
{
    dk_jobs *j = arg;
    dk__thread_name("dk-jobs-lease");
    uint64_t every = j->o.lease_ms / 3 > 10 ? j->o.lease_ms / 3 : 10;
    pthread_mutex_lock(&j->lock);
    for (;;) {
        uint64_t at = dk_now_ms() + every;
        struct timespec ts;
        timespec_at(at, &ts);
        while (!j->lease_stop && dk_now_ms() < at)
            pthread_cond_timedwait(&j->lease_cv, &j->lock, &ts);
        if (j->lease_stop)
            break;
        bool any = j->busy > 0 || json_array_size(j->queue) > 0 || j->claiming;
        pthread_mutex_unlock(&j->lock);
        if (any)
            renew_leases(j);
        pthread_mutex_lock(&j->lock);
    }
    pthread_mutex_unlock(&j->lock);
    return NULL;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    dk_jobs *j = w->jobs;
    dk__thread_name("dk-jobs");

    pthread_mutex_lock(&j->lock);
    for (;;) {
        bool quit = j->stopping || w->gen != j->gen;
        uint64_t now = dk_now_ms();
        int64_t wall = dk_wall_ms();
        if (now >= j->next_poll) {
            j->dirty = true;
            j->refresh_due = true;
            j->reap = j->o.shared;
            j->next_poll = now + j->o.poll_interval_ms;
        }
        if (j->next_due <= wall) {
            j->dirty = true;
            j->refresh_due = true;
            j->next_due = NO_DUE;
        }
        /* Finished jobs are written before anything else (also when stopping);
         * new jobs are claimed only when no claimed one is waiting. */
        bool idle_queue = json_array_size(j->queue) == 0;
        bool want_claim = !quit && idle_queue && (j->dirty || j->refresh_due || j->reap);
        if ((j->outbox != NULL || want_claim) && !j->claiming && w->gen == j->gen) {
            bool dirty = want_claim && j->dirty, refresh = want_claim && j->refresh_due;
            bool reap = want_claim && j->reap;
            uint64_t gen0 = j->work_gen;
            int slots = dirty ? j->idle + 1 : 0;
            outcome *batch = outbox_take(j);
            j->claiming = true;
            if (refresh)
                j->refresh_due = false;
            if (reap)
                j->reap = false;
            pthread_mutex_unlock(&j->lock);

            json_t *rows = NULL;
            if (reap)
                reap_expired(j);
            int rc = write_round(j, batch, slots, &rows);
            if (rc < 0)
                warn(j, "cannot claim jobs", rc);
            int64_t due = refresh ? read_next_due(j) : NO_DUE;
            after_write(j, batch);

            pthread_mutex_lock(&j->lock);
            j->claiming = false;
            if (w->gen != j->gen) {
                /* Abandoned meanwhile: the rows stay `running` for the next start. */
                json_decref(rows);
                break;
            }
            if (due < j->next_due)
                j->next_due = due;
            size_t n = rows != NULL ? json_array_size(rows) : 0;
            if (dirty && (rc < 0 || (n < (size_t)slots && gen0 == j->work_gen)))
                j->dirty = false; /* on errors, the next poll tries again */
            if (n > 0)
                json_array_extend(j->queue, rows);
            json_decref(rows);
            for (size_t i = 1; i < n; i++)
                pthread_cond_signal(&j->wake);
            continue;
        }
        if (quit)
            break;
        if (!idle_queue) {
            json_t *row = json_incref(json_array_get(j->queue, 0));
            json_array_remove(j->queue, 0);
            j->busy++;
            pthread_mutex_unlock(&j->lock);
            outcome *oc = NULL;
            bool kept = run_job(w, row, &oc);
            json_decref(row);
            pthread_mutex_lock(&j->lock);
            j->busy--;
            if (!kept)
                break;
            if (oc != NULL)
                outbox_push(j, oc);
            continue;
        }

        uint64_t deadline = j->next_poll;
        if (j->next_due != NO_DUE) {
            uint64_t due = now + (uint64_t)(j->next_due - wall);
            if (due < deadline)
                deadline = due;
        }
        struct timespec ts;
        timespec_at(deadline, &ts);
        j->idle++;
        pthread_cond_timedwait(&j->wake, &j->lock, &ts);
        j->idle--;
    }

    bool abandoned = w->gen != j->gen;
    w->done = true;
    if (!abandoned) {
        j->live--;
        pthread_cond_broadcast(&j->exited);
    }
    pthread_mutex_unlock(&j->lock);
    if (abandoned)
        free(w);
    jobs_unref(j);
    return NULL;
}

static void release_rows(dk_jobs *j, json_t *rows)
{
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        int rc =
            write_exec(j, SQL_RELEASE,
                       json_pack("[O, s]", json_object_get(row, "id"), j->instance_id), NULL, NULL);
        if (rc < 0)
            warn(j, "cannot release a claimed job", rc);
    }
}

int dk_jobs_start(dk_jobs *jobs, dk_err *err)
{
    if (jobs == NULL)
        return dk_err_set(err, DK_EINVAL, "jobs: no queue");
    pthread_mutex_lock(&jobs->life_lock);
    int rc = 0;
    if (jobs->started)
        goto out;
    rc = ensure_schema(jobs, err);
    if (rc < 0)
        goto out;
    if (jobs->o.shared)
        rc =
            write_exec(jobs, SQL_RECOVER_EXPIRED,
                       json_pack("[s, I]", INTERRUPTED_TEXT, (json_int_t)dk_wall_ms()), NULL, NULL);
    else
        rc = write_exec(jobs, SQL_RECOVER_ALL, json_pack("[s]", INTERRUPTED_TEXT), NULL, NULL);
    if (rc < 0) {
        dk_err_set(err, rc, "jobs: cannot recover interrupted jobs: %s", dk_db_errmsg(db_of(jobs)));
        goto out;
    }

    int n = jobs->o.concurrency;
    worker **ws = calloc((size_t)n, sizeof(*ws));
    if (ws == NULL) {
        rc = dk_err_set(err, DK_ENOMEM, "jobs: out of memory");
        goto out;
    }
    pthread_mutex_lock(&jobs->lock);
    jobs->gen++;
    jobs->stopping = false;
    jobs->dirty = true;
    jobs->refresh_due = true;
    jobs->reap = false;
    jobs->next_due = NO_DUE;
    jobs->next_poll = dk_now_ms() + jobs->o.poll_interval_ms;
    jobs->workers = ws;
    jobs->nworkers = 0;
    for (int i = 0; i < n; i++) {
        worker *w = calloc(1, sizeof(*w));
        if (w == NULL) {
            rc = DK_ENOMEM;
            break;
        }
        w->jobs = jobs;
        w->gen = jobs->gen;
        atomic_fetch_add(&jobs->refs, 1);
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            atomic_fetch_sub(&jobs->refs, 1);
            free(w);
            rc = DK_ENOMEM;
            break;
        }
        ws[jobs->nworkers++] = w;
        jobs->live++;
    }
    if (rc == 0 && jobs->o.shared && jobs->o.lease_ms > 0) {
        jobs->lease_stop = false;
        if (pthread_create(&jobs->lease_thread, NULL, lease_main, jobs) == 0)
            jobs->lease_running = true;
        else
            rc = DK_ENOMEM;
    }
    jobs->started = true;
    pthread_mutex_unlock(&jobs->lock);
    if (rc < 0) {
        pthread_mutex_unlock(&jobs->life_lock);
        dk_jobs_stop(jobs, DK_JOBS_STOP_DEFAULT);
        return dk_err_set(err, rc, "jobs: cannot start the worker threads");
    }
out:
    pthread_mutex_unlock(&jobs->life_lock);
    return rc;
}

int dk_jobs_stop(dk_jobs *jobs, int64_t timeout_ms)
{
    if (jobs == NULL)
        return 0;
    pthread_mutex_lock(&jobs->life_lock);
    pthread_mutex_lock(&jobs->lock);
    if (!jobs->started) {
        pthread_mutex_unlock(&jobs->lock);
        pthread_mutex_unlock(&jobs->life_lock);
        return 0;
    }
    uint64_t wait = timeout_ms < 0 ? jobs->o.stop_timeout_ms : (uint64_t)timeout_ms;
    struct timespec ts;
    timespec_at(dk_now_ms() + wait, &ts);
    jobs->stopping = true;
    pthread_cond_broadcast(&jobs->wake);
    while (jobs->live > 0)
        if (pthread_cond_timedwait(&jobs->exited, &jobs->lock, &ts) == ETIMEDOUT)
            break;
    if (jobs->lease_running) {
        /* Jobs left running after the grace period are no longer renewed:
         * their leases run out and another instance takes them back. */
        jobs->lease_running = false;
        jobs->lease_stop = true;
        pthread_cond_broadcast(&jobs->lease_cv);
        pthread_mutex_unlock(&jobs->lock);
        pthread_join(jobs->lease_thread, NULL);
        pthread_mutex_lock(&jobs->lock);
    }

    int abandoned = jobs->live;
    int running = jobs->busy; /* the others are idle workers that have not left yet */
    jobs->gen++;              /* workers still running are abandoned from here on */
    worker **ws = jobs->workers;
    size_t n = jobs->nworkers;
    for (size_t i = 0; i < n; i++) {
        if (!ws[i]->done) {
            pthread_detach(ws[i]->thread);
            ws[i] = NULL; /* it frees itself */
        }
    }
    jobs->workers = NULL;
    jobs->nworkers = 0;
    jobs->live = 0;
    jobs->started = false;
    jobs->stopping = false;
    json_t *left = jobs->queue;
    jobs->queue = json_array();
    outcome *unwritten = jobs->outbox; /* normally empty: workers write it before leaving */
    jobs->outbox = jobs->outbox_tail = NULL;
    pthread_mutex_unlock(&jobs->lock);

    for (size_t i = 0; i < n; i++) {
        if (ws[i] != NULL) {
            pthread_join(ws[i]->thread, NULL);
            free(ws[i]);
        }
    }
    free(ws);
    if (unwritten != NULL) {
        json_t *none = NULL;
        write_round(jobs, unwritten, 0, &none);
        after_write(jobs, unwritten);
    }
    if (left != NULL) {
        release_rows(jobs, left);
        json_decref(left);
    }
    if (running > 0 && logger_of(jobs) != NULL)
        dk_logf(logger_of(jobs), DK_LOG_WARN,
                "[Jobs] %d job(s) still running after %llu ms were left for recovery", running,
                (unsigned long long)wait);
    pthread_mutex_unlock(&jobs->life_lock);
    return abandoned > 0 ? DK_EBUSY : 0;
}

void dk_jobs_wake(dk_jobs *jobs)
{
    if (jobs == NULL)
        return;
    pthread_mutex_lock(&jobs->lock);
    if (jobs->started) {
        jobs->dirty = true;
        jobs->refresh_due = true;
        jobs->work_gen++;
        if (jobs->idle > 0 && !jobs->claiming)
            pthread_cond_signal(&jobs->wake);
    }
    pthread_mutex_unlock(&jobs->lock);
}

int dk_jobs_running(dk_jobs *jobs)
{
    pthread_mutex_lock(&jobs->lock);
    int n = jobs->busy;
    pthread_mutex_unlock(&jobs->lock);
    return n;
}

/* ------------------------------------------------------------------ */
/* Operations                                                          */

static int jobs_enqueue(dk_jobs *jobs, const char *name, const json_t *data,
                        const dk_jobs_enqueue_options *opts, int64_t *out_id)
{
    if (jobs == NULL || name == NULL || *name == '\0')
        return DK_EINVAL;
    int max_attempts = opts != NULL ? opts->max_attempts : DK_JOBS_DEFAULT_ATTEMPTS;
    if (max_attempts < 0 || (opts != NULL && opts->run_at < 0))
        return DK_EINVAL;
    if (max_attempts == DK_JOBS_DEFAULT_ATTEMPTS)
        max_attempts = jobs->o.max_attempts;
    pthread_mutex_lock(&jobs->lock);
    handler *hd = find_handler(jobs, name); /* handlers live until dk_jobs_free() */
    pthread_mutex_unlock(&jobs->lock);
    if (hd == NULL)
        return DK_ENOTFOUND;
    int rc = ensure_schema(jobs, NULL);
    if (rc < 0)
        return rc;

    char *text = json_dumps(data != NULL ? data : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
    if (text == NULL)
        return DK_ENOMEM;
    int64_t now = dk_wall_ms();
    int64_t run_at = opts != NULL && opts->run_at > now ? opts->run_at : now;
    bool later = run_at > now;
    /* The enqueuing request's trace (current here also on the I/O thread
     * running this call for it), kept so the job's log lines carry it. */
    const dk__trace *tr = dk__trace_current();
    json_t *params = json_pack("[s, s, s, i, I, I, s?]", name, text,
                               later ? "scheduled" : "pending", max_attempts, (json_int_t)run_at,
                               (json_int_t)now, tr != NULL ? tr->trace_id : NULL);
    free(text);
    if (params == NULL)
        return DK_ENOMEM;
    int64_t id = 0;
    rc = write_exec(jobs, jobs->sqlite ? SQL_INSERT_SQLITE : SQL_INSERT_PG, params, NULL, &id);
    if (rc < 0)
        return rc;
    /* Other instances' listeners wake up (src/adapters/pg_notify.c); without
     * it they would find the job at their next poll. */
    if (!later && jobs->o.shared && !jobs->sqlite)
        dk_db_exec(db_of(jobs), SQL_NOTIFY, NULL, NULL, NULL);

    pthread_mutex_lock(&jobs->lock);
    if (later) {
        if (run_at < jobs->next_due) {
            jobs->next_due = run_at;
            if (jobs->idle > 0 && !jobs->claiming)
                pthread_cond_signal(&jobs->wake);
        }
    } else {
        jobs->dirty = true;
        jobs->work_gen++;
        if (jobs->idle > 0 && !jobs->claiming)
            pthread_cond_signal(&jobs->wake);
    }
    pthread_mutex_unlock(&jobs->lock);
    atomic_fetch_add_explicit(&hd->n_enqueued, 1, memory_order_relaxed);
    if (out_id != NULL)
        *out_id = id;
    return 0;
}

static int jobs_get(dk_jobs *jobs, int64_t id, json_t **out)
{
    *out = NULL;
    int rc = ensure_schema(jobs, NULL);
    if (rc < 0)
        return rc;
    json_t *params = json_pack("[I]", (json_int_t)id);
    json_t *row = NULL;
    rc = dk_db_query_one(db_of(jobs), SQL_GET, params, &row);
    json_decref(params);
    if (rc < 0)
        return rc;
    *out = row_to_job(row);
    json_decref(row);
    return *out != NULL ? 0 : DK_ENOMEM;
}

/* DK_ENOTFOUND when `id` does not exist, else DK_ESTATE (the guarded change did nothing). */
static int explain_no_change(dk_jobs *jobs, int64_t id)
{
    json_t *params = json_pack("[I]", (json_int_t)id);
    json_t *row = NULL;
    int rc = dk_db_query_one(db_of(jobs), SQL_STATUS, params, &row);
    json_decref(params);
    json_decref(row);
    return rc == 0 ? DK_ESTATE : rc;
}

static int jobs_cancel(dk_jobs *jobs, int64_t id)
{
    int rc = ensure_schema(jobs, NULL);
    if (rc < 0)
        return rc;
    int64_t changed = 0;
    rc = write_exec(jobs, SQL_CANCEL, json_pack("[I, I]", (json_int_t)dk_wall_ms(), (json_int_t)id),
                    &changed, NULL);
    if (rc < 0)
        return rc;
    return changed > 0 ? 0 : explain_no_change(jobs, id);
}

static int jobs_retry(dk_jobs *jobs, int64_t id)
{
    int rc = ensure_schema(jobs, NULL);
    if (rc < 0)
        return rc;
    int64_t changed = 0;
    rc = write_exec(jobs, SQL_RETRY_NOW,
                    json_pack("[I, I]", (json_int_t)dk_wall_ms(), (json_int_t)id), &changed, NULL);
    if (rc < 0)
        return rc;
    if (changed == 0)
        return explain_no_change(jobs, id);
    if (jobs->o.shared && !jobs->sqlite)
        dk_db_exec(db_of(jobs), SQL_NOTIFY, NULL, NULL, NULL);
    pthread_mutex_lock(&jobs->lock);
    jobs->dirty = true;
    jobs->work_gen++;
    if (jobs->idle > 0 && !jobs->claiming)
        pthread_cond_signal(&jobs->wake);
    pthread_mutex_unlock(&jobs->lock);
    return 0;
}

static int jobs_delete(dk_jobs *jobs, int64_t id)
{
    int rc = ensure_schema(jobs, NULL);
    if (rc < 0)
        return rc;
    int64_t changed = 0;
    rc = write_exec(jobs, SQL_DELETE, json_pack("[I]", (json_int_t)id), &changed, NULL);
    if (rc < 0)
        return rc;
    return changed > 0 ? 0 : explain_no_change(jobs, id);
}

static int jobs_list(dk_jobs *jobs, const char *name, const char *status, size_t limit,
                     bool newest_first, json_t **out)
{
    *out = NULL;
    if (status != NULL) {
        bool ok = false;
        for (size_t i = 0; i < sizeof(STATUSES) / sizeof(STATUSES[0]); i++)
            ok = ok || strcmp(status, STATUSES[i]) == 0;
        if (!ok)
            return DK_EINVAL;
    }
    int rc = ensure_schema(jobs, NULL);
    if (rc < 0)
        return rc;
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT " JOB_COLUMNS " FROM donkey_jobs%s%s%s ORDER BY id%s%s",
             name || status ? " WHERE " : "", name ? "name = ?" : "",
             status ? (name ? " AND status = ?" : "status = ?") : "", newest_first ? " DESC" : "",
             limit ? " LIMIT ?" : "");
    json_t *params = json_array();
    if (params == NULL)
        return DK_ENOMEM;
    if (name != NULL)
        json_array_append_new(params, json_string(name));
    if (status != NULL)
        json_array_append_new(params, json_string(status));
    if (limit > 0)
        json_array_append_new(params, json_integer((json_int_t)limit));
    json_t *rows = NULL;
    rc = dk_db_query(db_of(jobs), sql, params, &rows);
    json_decref(params);
    if (rc < 0)
        return rc;
    json_t *list = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        if (list == NULL || json_array_append_new(list, row_to_job(row)) != 0) {
            json_decref(list);
            json_decref(rows);
            return DK_ENOMEM;
        }
    }
    json_decref(rows);
    *out = list;
    return 0;
}

static int jobs_purge(dk_jobs *jobs, uint64_t older_than_ms, int64_t *out_deleted)
{
    int rc = ensure_schema(jobs, NULL);
    if (rc < 0)
        return rc;
    int64_t changed = 0;
    rc = write_exec(jobs, SQL_PURGE,
                    json_pack("[I]", (json_int_t)(dk_wall_ms() - (int64_t)older_than_ms)), &changed,
                    NULL);
    if (rc == 0 && out_deleted != NULL)
        *out_deleted = changed;
    return rc;
}

/* ------------------------------------------------------------------ */
/* Handler context                                                     */

int64_t dk_job_id(const dk_job_ctx *jc) { return jc->id; }
const char *dk_job_name(const dk_job_ctx *jc) { return jc->name; }
int dk_job_attempt(const dk_job_ctx *jc) { return jc->attempt; }
int dk_job_max_attempts(const dk_job_ctx *jc) { return jc->max_attempts; }
const dk_core *dk_job_core(const dk_job_ctx *jc) { return jc->jobs->o.core; }
dk_db *dk_job_db(const dk_job_ctx *jc) { return db_of(jc->jobs); }
dk_logger *dk_job_logger(const dk_job_ctx *jc) { return logger_of(jc->jobs); }

static int set_error(dk_job_ctx *jc, bool final, const char *fmt, va_list ap)
{
    vsnprintf(jc->error, sizeof(jc->error), fmt, ap);
    jc->failed = true;
    jc->final = final;
    return DK_EINTERNAL;
}

int dk_job_fail(dk_job_ctx *jc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = set_error(jc, false, fmt, ap);
    va_end(ap);
    return rc;
}

int dk_job_fail_final(dk_job_ctx *jc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = set_error(jc, true, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- calls from a request handler ----
 * The storage functions hold the writer lock across database statements; in
 * a request's fiber the whole call runs on an I/O thread (src/base/offload.h)
 * so no lock is ever held by a suspended fiber. */
typedef struct jobs_call {
    int op;
    dk_jobs *jobs;
    const char *name, *status;
    const json_t *data;
    const dk_jobs_enqueue_options *opts;
    int64_t id, *out_id;
    uint64_t older_than_ms;
    size_t limit;
    bool newest_first;
    json_t **out;
} jobs_call;

enum { JC_ENQUEUE, JC_GET, JC_CANCEL, JC_DELETE, JC_LIST, JC_PURGE, JC_RETRY };

static int jobs_call_run(void *arg)
{
    jobs_call *c = arg;
    switch (c->op) {
    case JC_ENQUEUE: return jobs_enqueue(c->jobs, c->name, c->data, c->opts, c->out_id);
    case JC_GET: return jobs_get(c->jobs, c->id, c->out);
    case JC_CANCEL: return jobs_cancel(c->jobs, c->id);
    case JC_DELETE: return jobs_delete(c->jobs, c->id);
    case JC_LIST: return jobs_list(c->jobs, c->name, c->status, c->limit, c->newest_first, c->out);
    case JC_RETRY: return jobs_retry(c->jobs, c->id);
    default: return jobs_purge(c->jobs, c->older_than_ms, c->out_id);
    }
}

#define JOBS_CALL(...)                                                                             \
    do {                                                                                           \
        jobs_call c_ = {__VA_ARGS__};                                                              \
        return dk__offload(DK__POOL_IO, jobs_call_run, &c_);                                       \
    } while (0)

int dk_jobs_enqueue(dk_jobs *jobs, const char *name, const json_t *data,
                    const dk_jobs_enqueue_options *opts, int64_t *out_id)
{
    JOBS_CALL(.op = JC_ENQUEUE, .jobs = jobs, .name = name, .data = data, .opts = opts,
              .out_id = out_id);
}

int dk_jobs_get(dk_jobs *jobs, int64_t id, json_t **out)
{
    JOBS_CALL(.op = JC_GET, .jobs = jobs, .id = id, .out = out);
}

int dk_jobs_cancel(dk_jobs *jobs, int64_t id)
{
    JOBS_CALL(.op = JC_CANCEL, .jobs = jobs, .id = id);
}

int dk_jobs_delete(dk_jobs *jobs, int64_t id)
{
    JOBS_CALL(.op = JC_DELETE, .jobs = jobs, .id = id);
}

int dk_jobs_retry(dk_jobs *jobs, int64_t id) { JOBS_CALL(.op = JC_RETRY, .jobs = jobs, .id = id); }

int dk__jobs_list_recent(dk_jobs *jobs, const char *status, size_t limit, json_t **out)
{
    JOBS_CALL(.op = JC_LIST, .jobs = jobs, .status = status, .limit = limit, .newest_first = true,
              .out = out);
}

int dk_jobs_list(dk_jobs *jobs, const char *name, const char *status, size_t limit, json_t **out)
{
    JOBS_CALL(.op = JC_LIST, .jobs = jobs, .name = name, .status = status, .limit = limit,
              .out = out);
}

int dk_jobs_purge(dk_jobs *jobs, uint64_t older_than_ms, int64_t *out_deleted)
{
    JOBS_CALL(.op = JC_PURGE, .jobs = jobs, .older_than_ms = older_than_ms, .out_id = out_deleted);
}

/* ------------------------------------------------------------------ */
/* Statistics (src/base/stats.h)                                        */

typedef struct depth_call {
    dk_jobs *jobs;
    json_t *rows;
} depth_call;

static int depth_run(void *arg)
{
    depth_call *c = arg;
    int rc = ensure_schema(c->jobs, NULL);
    if (rc == 0)
        rc = dk_db_query(db_of(c->jobs),
                         "SELECT status, COUNT(*) AS n FROM donkey_jobs GROUP BY status", NULL,
                         &c->rows);
    return rc;
}

json_t *dk__jobs_stats(dk_jobs *jobs, bool depth)
{
    json_t *out = json_object(), *names = json_array(), *d = json_object();
    if (out == NULL || names == NULL || d == NULL) {
        json_decref(out);
        json_decref(names);
        json_decref(d);
        return NULL;
    }
    pthread_mutex_lock(&jobs->lock);
    for (size_t i = 0; i < jobs->nhandlers; i++) {
        handler *h = jobs->handlers[i];
        json_array_append_new(names,
                              json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "name", h->name,
                                        "enqueued", (json_int_t)atomic_load(&h->n_enqueued),
                                        "started", (json_int_t)atomic_load(&h->n_started),
                                        "completed", (json_int_t)atomic_load(&h->n_completed),
                                        "failed", (json_int_t)atomic_load(&h->n_failed), "retried",
                                        (json_int_t)atomic_load(&h->n_retried)));
    }
    pthread_mutex_unlock(&jobs->lock);
    for (size_t i = 0; i < sizeof(STATUSES) / sizeof(STATUSES[0]); i++)
        json_object_set_new(d, STATUSES[i], json_integer(0));
    if (depth && db_of(jobs) != NULL) {
        /* On the I/O pool from a request's fiber, as the public calls: the
         * schema lock must not be held by a suspended fiber. */
        depth_call dc = {jobs, NULL};
        int qrc = dk__offload(DK__POOL_IO, depth_run, &dc);
        json_t *rows = dc.rows;
        if (qrc == 0) {
            size_t i;
            json_t *row;
            json_array_foreach(rows, i, row)
            {
                const char *st = json_string_value(json_object_get(row, "status"));
                if (st != NULL)
                    json_object_set(d, st, json_object_get(row, "n"));
            }
        }
        json_decref(rows);
    }
    json_object_set_new(out, "names", names);
    json_object_set_new(out, "depth", d);
    return out;
}

dk__hist *dk__jobs_hist(dk_jobs *jobs) { return &jobs->run_hist; }
