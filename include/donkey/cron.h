/* donkey: cron expressions and the recurring-task scheduler.
 *
 * Expressions have 5 fields (minute hour day-of-month month day-of-week;
 * second = 0) or 6 fields (second first). Each field is a comma list of `*`,
 * `n`, `a-b`, `*\/s`, `a/s` or `a-b/s`; months accept JAN-DEC and days SUN-SAT
 * (case-insensitive), day-of-week 0 and 7 are both Sunday, and `?` means `*`
 * in the two day fields. When both day-of-month and day-of-week are
 * restricted (neither starts with `*`), a day matches if EITHER matches
 * (Vixie cron); otherwise the restricted one decides. Out-of-range values,
 * step 0, reversed ranges and expressions that can never fire (31 February)
 * are refused with a message.
 *
 * Times are evaluated in UTC unless a timezone (an IANA name such as
 * "America/New_York") is given. A local time skipped by a DST change does
 * not fire; a local time that occurs twice fires once, at its first
 * occurrence.
 *
 * The scheduler arms one timer on the service loop (dk_loop) for the earliest
 * due task, fires each due occurrence exactly once, never runs a task while
 * its previous run is still going (the occurrence is skipped and logged), and
 * runs task bodies on libuv's worker pool (worker threads), never on the
 * service thread or the HTTP threads.
 * All scheduler functions: any thread, unless noted. No user callback runs
 * while the scheduler holds its lock. */
#ifndef DONKEY_CRON_H
#define DONKEY_CRON_H

#include "common.h"
#include "log.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dk_cron dk_cron; /* also declared in app.h; C11 allows the repeat */
typedef struct dk_loop dk_loop;

/* ------------------------------------------------------------------ */
/* Expressions                                                         */

/** A parsed expression. Caller frees with dk_cron_expr_free(). */
typedef struct dk_cron_expr dk_cron_expr;

/** Parse flag: require day-of-month AND day-of-week to match, as the original
 *  implementation did (compatibility; default is the Vixie OR rule). */
#define DK_CRON_DOM_AND_DOW 1u

/** Parses `text` (borrowed) with DK_CRON_* `flags`. On 0, `*out` is a new
 *  expression. Returns DK_EINVAL with `err` saying why (field count, bad
 *  value, out of range, step 0, reversed range, never fires). Any thread. */
DK_API int dk_cron_expr_parse(const char *text, unsigned flags, dk_cron_expr **out, dk_err *err);

DK_API void dk_cron_expr_free(dk_cron_expr *e);

/** Next fire time strictly after `after_ms` (epoch ms, >= 0) in timezone `tz`
 *  (NULL or "UTC": UTC). Returns 0 with `*out_ms`, DK_EINVAL (bad `tz` or
 *  `after_ms`, also past the year 9999) or DK_ENOTFOUND (no fire time within
 *  30 years). Any thread. */
DK_API int dk_cron_expr_next(const dk_cron_expr *e, const char *tz, int64_t after_ms,
                             int64_t *out_ms, dk_err *err);

/** Parses `expr` and computes its next fire time strictly after `after_ms` in
 *  `tz`, as the two functions above. Pure function, any thread. */
DK_API int dk_cron_next(const char *expr, const char *tz, int64_t after_ms, int64_t *out_ms,
                        dk_err *err);

/** Whether `tz` names a zone this system knows (NULL, "", "UTC" always do). */
DK_API bool dk_cron_tz_valid(const char *tz);

/* ------------------------------------------------------------------ */
/* Scheduler                                                           */

/** A task body. `name` is borrowed for the call. Return 0 on success or a
 *  negative code; failures are logged. Runs on a worker thread. */
typedef int (*dk_cron_fn)(const char *name, void *user);

/** Task ids look like "cron_<n>_<creation ms>"; they fit in this many bytes. */
#define DK_CRON_ID_SIZE 48

/** Shared-state interface, so several instances can share one schedule (a
 *  Redis backend claims each occurrence for one instance). Called on worker
 *  threads, never with the scheduler lock held. All members optional. */
typedef struct dk_cron_backend {
    /** Claims scheduled occurrence `at_ms` of task `name` for this process:
     *  1 = run it, 0 = someone else did/does (skip), < 0 = error (logged, the
     *  run goes ahead). The in-memory backend refuses an occurrence at or
     *  before the last one claimed for the same name. */
    int (*claim)(void *user, const char *name, int64_t at_ms);
    /** Reports a finished run (`result` is the task's return value). */
    void (*record)(void *user, const char *name, int64_t started_ms, int64_t finished_ms,
                   int result);
    /** Runs once at dk_cron_free(), or when dk_cron_new_with_backend() fails. */
    void (*destroy)(void *user);
    void *user;
} dk_cron_backend;

typedef struct dk_cron_options {
    dk_loop *loop;          /* required: the service loop (borrowed; outlives the scheduler) */
    dk_logger *logger;      /* may be NULL (no logging); borrowed */
    const char *timezone;   /* default zone for tasks; copied; default "UTC" */
    /** Wall clock in epoch ms; NULL = dk_wall_ms(). For tests. */
    int64_t (*clock)(void *clock_user);
    void *clock_user;
} dk_cron_options;

/** Fills `o` with the defaults above (loop NULL). */
DK_API void dk_cron_options_init(dk_cron_options *o);

/** New scheduler (stopped) with the in-memory backend. NULL when out of
 *  memory, `loop` is NULL or the timezone is unknown. Caller frees with
 *  dk_cron_free(). */
DK_API dk_cron *dk_cron_new(const dk_cron_options *opts);

/** As dk_cron_new() over `backend` (copied; its destroy runs at
 *  dk_cron_free(), or now if this call fails). */
DK_API dk_cron *dk_cron_new_with_backend(const dk_cron_options *opts,
                                         const dk_cron_backend *backend);

/** Stops the scheduler, waits for every running task body (no time limit),
 *  runs each task's user_free and frees everything. NULL is ignored. Must not
 *  run on the service thread or inside a task. */
DK_API void dk_cron_free(dk_cron *cron);

typedef struct dk_cron_task_options {
    const char *timezone; /* NULL: the scheduler's default; copied */
    bool enabled;         /* default true */
    unsigned flags;       /* DK_CRON_* parse flags; default 0 */
} dk_cron_task_options;

DK_API void dk_cron_task_options_init(dk_cron_task_options *o);

/** Adds task `name` (copied; NULL or "" = the id) running `fn(name, user)` at
 *  the times of `expr` (copied). `user_free` (may be NULL) runs exactly once
 *  after the last run, when the task is removed or the scheduler freed, and
 *  also when this call fails. On 0 the id is written to `out_id` (may be NULL;
 *  DK_CRON_ID_SIZE bytes). Works whether or not the scheduler is started.
 *  Returns 0, DK_EINVAL (bad expression or timezone; `err` says why) or DK_ENOMEM. */
DK_API int dk_cron_schedule(dk_cron *cron, const char *name, const char *expr, dk_cron_fn fn,
                            void *user, dk_free_fn user_free, const dk_cron_task_options *opts,
                            char *out_id, dk_err *err);

/** Removes a task. A running body finishes first (user_free then runs on the
 *  service thread after it). Returns 0 or DK_ENOTFOUND. */
DK_API int dk_cron_unschedule(dk_cron *cron, const char *id);

/** Stops scheduled runs of a task (nextRun becomes null). Returns 0 or DK_ENOTFOUND. */
DK_API int dk_cron_pause(dk_cron *cron, const char *id);

/** Re-enables a task; its next run is computed from now. Returns 0 or DK_ENOTFOUND. */
DK_API int dk_cron_resume(dk_cron *cron, const char *id);

/** Runs a task now on the worker pool (also when paused or the scheduler is
 *  stopped); sets lastRun, leaves nextRun. If `out_result` is not NULL, waits
 *  for the body and stores its return value (then not on the service thread:
 *  DK_ESTATE). Returns 0, DK_ENOTFOUND, DK_EBUSY (the task is running) or
 *  DK_ESTATE. */
DK_API int dk_cron_trigger(dk_cron *cron, const char *id, int *out_result);

/** The tasks in scheduling order as a new JSON array (caller releases with
 *  json_decref()) of objects {"id", "name", "expression", "timezone",
 *  "enabled", "running", "lastRun", "nextRun", "runs", "failures", "skipped",
 *  "lastDurationMs", "lastResult"} with times as ISO-8601 UTC strings or null
 *  (lastDurationMs / lastResult: of the last finished run, null before one). NULL if out of memory. */
DK_API json_t *dk_cron_list(dk_cron *cron);

/** One task as in dk_cron_list() (new reference), or NULL when unknown. */
DK_API json_t *dk_cron_get(dk_cron *cron, const char *id);

/** Starts firing tasks (idempotent). Next runs are recomputed from now, so
 *  occurrences missed while stopped are not caught up. Returns 0 or DK_ESTATE
 *  (the loop is stopping). */
DK_API int dk_cron_start(dk_cron *cron);

/** Stops firing (idempotent, safe without start) and waits up to `timeout_ms`
 *  for running task bodies. Returns 0, or DK_EBUSY if some are still running
 *  at the deadline (they finish on their own). Not on the service thread. */
DK_API int dk_cron_stop(dk_cron *cron, uint64_t timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
