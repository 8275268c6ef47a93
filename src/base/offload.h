/* The execution model (docs/architecture.md): every request's middleware and
 * handler run on a fiber of the HTTP thread that received it. A call that
 * would block (a database statement, a Redis command, dk_blocking(), an
 * outbound HTTP request) hands its work to another thread and suspends the
 * fiber; the HTTP thread serves other requests meanwhile and resumes the
 * fiber, on the same thread, when the work is done.
 *
 * Two pools of worker threads do such work: the I/O pool (database and Redis
 * calls, sized like the database pool, --db-pool) and the worker pool
 * (dk_blocking(), --workers). Outside a fiber (main, a job or cron body, a
 * worker thread itself) every call simply runs on the calling thread. */
#ifndef DK_UTIL_OFFLOAD_H
#define DK_UTIL_OFFLOAD_H

#include <stdbool.h>
#include <stddef.h>

typedef struct dk__pool dk__pool; /* struct dk__pool, also named in internal.h */

/* A pool of `n` threads named "<name>-<i>", running at `nice` (0, or more to
 * yield the CPU to the HTTP threads). NULL when a thread cannot start. */
dk__pool *dk__pool_new(const char *name, int n, int nice);
/* Runs what is queued, then joins the threads and frees the pool. NULL ok. */
void dk__pool_free(dk__pool *p);

enum { DK__POOL_IO = 0, DK__POOL_WORK = 1 };

/* What a suspended request waits for. Embedded in the request's task
 * (src/http/server.c), which sets it current (dk__waiter_enter) while its fiber
 * runs. */
typedef struct dk__waiter {
    int (*fn)(void *arg); /* the work, run on a pool thread */
    void *arg;
    int rc;
    struct dk__waiter *next; /* pool queue */
    /* Called on the pool (or fetch) thread when the work is done; posts the
     * resumption to the request's HTTP thread. */
    void (*wake)(struct dk__waiter *w);
    dk__pool *pools[2];
    void *db_tx;                   /* open database transactions of this request (src/db/db.c) */
    const struct dk__trace *trace; /* the request's trace, current while a pool runs fn */
} dk__waiter;

/* The waiter of the fiber running on this thread, or NULL (not in a
 * request's fiber). */
dk__waiter *dk__waiter_current(void);
/* Sets the current waiter (NULL to clear); server only. */
void dk__waiter_enter(dk__waiter *w);

/* In a request's fiber: runs fn(arg) on pool `which` and suspends until it
 * returns; elsewhere: calls fn(arg). Returns fn's result. */
int dk__offload(int which, int (*fn)(void *arg), void *arg);

/* In a request's fiber: suspends until something calls w->wake(w) (the
 * caller has arranged for that, e.g. queued a transfer on the fetch thread). */
void dk__waiter_suspend(dk__waiter *w);

#endif
