/* donkey: the background job queue.
 *
 * Named handlers run jobs (a name plus JSON data) on a pool of worker threads
 * of their own, never on the HTTP threads. Jobs live in the application's
 * database, table `donkey_jobs`, created by the migration of plugin
 * "donkey.jobs" (dk_db_migrate()), so an accepted job survives a restart or a
 * crash. Delivery is at least once: a job that was running when the process
 * died is put back in the queue at the next dk_jobs_start() and runs again, so
 * handlers should be idempotent.
 *
 * States: pending (due now), scheduled (due at run_at: enqueued for later, or
 * waiting for a retry), running, and the final states completed, failed and
 * cancelled.
 *
 * Job ids are 64-bit integers (the table's primary key), shown as JSON
 * integers. Times in JSON views are ISO-8601 UTC strings with milliseconds, or
 * null. See docs/jobs.md.
 *
 * All functions: any thread. No handler or event subscriber runs while the
 * queue holds its lock. */
#ifndef DONKEY_JOBS_H
#define DONKEY_JOBS_H

#include "common.h"
#include "log.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dk_jobs dk_jobs;     /* also declared in app.h */
typedef struct dk_job_ctx dk_job_ctx;
typedef struct dk_core dk_core;     /* see app.h */
typedef struct dk_db dk_db;         /* see db.h */
typedef struct dk_events dk_events; /* see events.h */

/** A job handler. Runs on a worker thread of the queue. `data` is the job's
 *  payload, a private copy borrowed for the call (changes to it are not
 *  stored). Return 0 on success and optionally set `*result` to a new
 *  reference (donkey takes it; NULL means JSON null). Return a negative value
 *  to fail the attempt: the error text is the one given to dk_job_fail() or,
 *  when none was given, dk_strerror() of the return value. A failed attempt is
 *  retried with backoff until the job's max attempts are used up. */
typedef int (*dk_job_fn)(dk_job_ctx *jc, const json_t *data, json_t **result, void *user);

typedef struct dk_jobs_options {
    /** Database holding the jobs (borrowed, must outlive the queue). NULL:
     *  use core->db, read at the first call that needs the database (so the
     *  core's database may be opened after dk_jobs_new()). */
    dk_db *db;
    /** Core services handed to handlers (borrowed, may be NULL). */
    const dk_core *core;
    /** Events service for job.* events (borrowed, may be NULL: no events;
     *  when NULL and `core` is set, core->events is used). */
    dk_events *events;
    /** Logger (borrowed, may be NULL; NULL and `core` set: core->logger). */
    dk_logger *logger;
    int concurrency;           /* worker threads = jobs running at once; default 5 */
    uint64_t poll_interval_ms; /* database poll for due jobs; default 1000 */
    int max_attempts;          /* default per job, first run included; default 3 */
    /** Retry delay after failed attempt n: base * 2^(n-1), +-20% jitter,
     *  capped at backoff_max_ms. Default base 1000 (environment variable
     *  DK_JOBS_BACKOFF_MS, when set, overrides the default; meant for tests);
     *  0 retries at once. */
    uint64_t backoff_base_ms;
    uint64_t backoff_max_ms;   /* default 300000 (5 minutes) */
    uint64_t stop_timeout_ms;  /* dk_jobs_stop() grace period; default 30000 */
    /** Lease written to a claimed job (lease_until = start + lease_ms) and
     *  renewed every lease_ms / 3 while this instance holds it. Only used with
     *  `shared`; default 30000 (30 s). */
    uint64_t lease_ms;
    /** false (default): this is the only instance using the table, and
     *  dk_jobs_start() returns every `running` job to the queue. true: several
     *  instances share the table; start-up and every poll only take back
     *  running jobs whose lease has expired (PostgreSQL). */
    bool shared;
    /** Name written to locked_by for claimed jobs (copied); NULL: a random UUID. */
    const char *instance_id;
} dk_jobs_options;

/** Fills `o` with the defaults above. */
DK_API void dk_jobs_options_init(dk_jobs_options *o);

/** New queue (not started). `opts` is copied (NULL = defaults, which needs a
 *  database: pass `db` or `core`). Does not touch the database. Returns NULL
 *  when out of memory or when neither `db` nor `core` is given. Caller frees
 *  with dk_jobs_free(). */
DK_API dk_jobs *dk_jobs_new(const dk_jobs_options *opts);

/** Stops the queue (as dk_jobs_stop() with the configured grace period) and
 *  frees it. Every handler's user_free runs once, after its last call. A
 *  handler abandoned by the stop keeps running and frees its share of the
 *  queue when it returns. NULL is ignored. */
DK_API void dk_jobs_free(dk_jobs *jobs);

/** Registers `fn` for jobs named `name` (copied). `user_free`, if not NULL,
 *  runs exactly once: at dk_jobs_free(), or right away when this call fails.
 *  Handlers may be registered before or after dk_jobs_start(). Returns 0,
 *  DK_EINVAL (empty name, NULL fn), DK_EEXIST (name already registered:
 *  'Job handler "<name>" is already registered') or DK_ENOMEM. */
DK_API int dk_jobs_register(dk_jobs *jobs, const char *name, dk_job_fn fn, void *user,
                            dk_free_fn user_free);

/** Use the queue's default max attempts (dk_jobs_enqueue_options). */
#define DK_JOBS_DEFAULT_ATTEMPTS 0

typedef struct dk_jobs_enqueue_options {
    int max_attempts; /* >= 1, or DK_JOBS_DEFAULT_ATTEMPTS */
    int64_t run_at;   /* wall-clock ms since the epoch; 0 (or a past time) = now */
} dk_jobs_enqueue_options;

/** Stores a new job `name` with `data` (borrowed; serialised; NULL means JSON
 *  null) and wakes a worker if it is due now. `opts` may be NULL (run now,
 *  default attempts). A job with a future run_at is `scheduled`, otherwise
 *  `pending`. Works before dk_jobs_start() too (the job waits for it). On 0,
 *  `*out_id` (may be NULL) is the new id. Returns DK_EINVAL (empty name, bad
 *  options), DK_ENOTFOUND (no handler registered under `name`: 'No handler
 *  registered for job "<name>"'; nothing is stored), DK_ESTATE (no database
 *  yet), DK_ENOMEM or a database error (see db.h). */
DK_API int dk_jobs_enqueue(dk_jobs *jobs, const char *name, const json_t *data,
                           const dk_jobs_enqueue_options *opts, int64_t *out_id);

/** The job `id` as a JSON object {"id", "name", "data", "status", "attempts",
 *  "maxAttempts", "result", "error", "runAt", "createdAt", "startedAt",
 *  "completedAt"} (times ISO-8601 or null). On 0, `*out` is a new reference
 *  (json_decref()). Returns DK_ENOTFOUND, DK_ESTATE (no database yet) or a
 *  database error. */
DK_API int dk_jobs_get(dk_jobs *jobs, int64_t id, json_t **out);

/** Cancels a pending or scheduled job: status `cancelled`, completedAt set,
 *  it will not run. Returns 0, DK_ENOTFOUND (unknown id), DK_ESTATE (running,
 *  or already completed/failed/cancelled: nothing changes) or a database
 *  error. A running job cannot be cancelled. */
DK_API int dk_jobs_cancel(dk_jobs *jobs, int64_t id);

/** Runs job `id` again now: a failed or cancelled job gets a fresh set of
 *  attempts (attempts back to 0), a scheduled one (waiting for its run_at or
 *  a retry) becomes due now keeping its attempts; its last error stays until
 *  it runs. Returns 0, DK_ENOTFOUND, DK_ESTATE (pending, running or completed:
 *  nothing changes) or a database error. Used by the operations page's
 *  "retry now" (docs/observability.md). */
DK_API int dk_jobs_retry(dk_jobs *jobs, int64_t id);

/** Deletes the record of job `id` when it is not running. Returns 0,
 *  DK_ENOTFOUND, DK_ESTATE (running) or a database error. */
DK_API int dk_jobs_delete(dk_jobs *jobs, int64_t id);

/** Jobs named `name` (borrowed; NULL = every name) with status `status`
 *  ("pending", ...; NULL = every status), in creation order, at most `limit`
 *  (0 = no limit), as a new JSON array of job objects (see dk_jobs_get()).
 *  Returns 0, DK_EINVAL (unknown status), DK_ESTATE or a database error. */
DK_API int dk_jobs_list(dk_jobs *jobs, const char *name, const char *status, size_t limit,
                        json_t **out);

/** Deletes completed, failed and cancelled jobs that finished more than
 *  `older_than_ms` ago. `out_deleted` may be NULL. Returns 0 or an error. */
DK_API int dk_jobs_purge(dk_jobs *jobs, uint64_t older_than_ms, int64_t *out_deleted);

/** Starts the workers. First brings the table up to date (migration
 *  "donkey.jobs"), then returns interrupted `running` jobs to the queue (all
 *  of them, or only those with an expired lease when `shared`), then starts
 *  `concurrency` threads. Idempotent: a second call returns 0 and does
 *  nothing. Returns 0, DK_ESTATE (no database), DK_ENOMEM, or the migration's
 *  or database's error (then nothing is started; `err` may be NULL). */
DK_API int dk_jobs_start(dk_jobs *jobs, dk_err *err);

/** Use the configured stop_timeout_ms in dk_jobs_stop(). */
#define DK_JOBS_STOP_DEFAULT INT64_C(-1)

/** Stops claiming jobs and waits up to `timeout_ms` (or the configured grace
 *  period for DK_JOBS_STOP_DEFAULT) for running handlers to return. A handler
 *  still running after that is abandoned: its job stays `running` in the
 *  database (it is taken back at the next start) and its result is dropped.
 *  Returns 0 (all workers finished, or not started) or DK_EBUSY (some were
 *  abandoned). The queue can be started again. Must not be called from a
 *  handler. */
DK_API int dk_jobs_stop(dk_jobs *jobs, int64_t timeout_ms);

/** Number of handlers running right now. */
DK_API int dk_jobs_running(dk_jobs *jobs);

/** Tells the queue that due jobs may be waiting that it did not enqueue
 *  itself (another instance did: the PostgreSQL listener calls this on
 *  NOTIFY), so an idle worker looks at the table now rather than at its next
 *  poll. In `shared` mode on PostgreSQL, dk_jobs_enqueue() sends
 *  NOTIFY donkey_jobs after storing a job due now (within the caller's
 *  transaction, if any, so it is delivered at commit). No-op when the queue
 *  is not started. Any thread. */
DK_API void dk_jobs_wake(dk_jobs *jobs);

/* ------------------------------------------------------------------ */
/* Inside a handler. `jc` is valid for the handler call only.          */

DK_API int64_t dk_job_id(const dk_job_ctx *jc);
/** Valid for the handler call. */
DK_API const char *dk_job_name(const dk_job_ctx *jc);
/** This attempt's number (1 for the first run). */
DK_API int dk_job_attempt(const dk_job_ctx *jc);
DK_API int dk_job_max_attempts(const dk_job_ctx *jc);
/** Core services given in the options (borrowed; may be NULL). */
DK_API const dk_core *dk_job_core(const dk_job_ctx *jc);
/** The queue's database (borrowed). */
DK_API dk_db *dk_job_db(const dk_job_ctx *jc);
/** The queue's logger (borrowed; may be NULL). */
DK_API dk_logger *dk_job_logger(const dk_job_ctx *jc);

/** Sets the error text of this attempt (printf-style, copied, truncated at
 *  1 KiB) and returns DK_EINTERNAL so a handler can `return dk_job_fail(jc,
 *  "boom");`. The attempt fails when the handler returns a negative value. */
DK_API int dk_job_fail(dk_job_ctx *jc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** As dk_job_fail(), and the job is not retried: it becomes `failed` now. */
DK_API int dk_job_fail_final(dk_job_ctx *jc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif
#endif
