/* Redis client shared by the Redis back ends (cache, rate limiter, events,
 * SSE, cron). Not installed.
 *
 * Two kinds of connections:
 *
 *  - Commands issued by request threads and workers (cache get/set, rate
 *    limit script, XADD, PUBLISH, cron claims) use a small pool of
 *    synchronous hiredis connections with connect and command timeouts
 *    (DK_REDIS_TIMEOUT_MS, default 500 ms). A call never waits longer than
 *    that for the network. After a failure the client is "down": calls fail
 *    at once with DK_EUNAVAILABLE until the next reconnection attempt, which
 *    backs off from 100 ms to 2 s. Going down and coming back are logged once.
 *
 *  - Long-lived readers (SUBSCRIBE for events, XREAD BLOCK for SSE) are
 *    asynchronous hiredis connections on the service loop (libuv adapter),
 *    reconnected with backoff (100 ms to 2 s) after any loss.
 *
 * Keys: everything donkey stores lives under "donkey:" (see each back end). */
#ifndef DK_ADAPTERS_REDIS_H
#define DK_ADAPTERS_REDIS_H

#include "donkey/cache.h"
#include "donkey/cron.h"
#include "donkey/events.h"
#include "donkey/loop.h"
#include "donkey/ratelimit.h"
#include "donkey/sse.h"

typedef struct dk__redis dk__redis;

/** Parses `url` (redis://[[user]:password@]host[:port][/db]; copied) and
 *  creates the client without connecting. `instance_id` (copied) tags what
 *  this process publishes so it can skip its own messages. The loop and the
 *  logger (may be NULL) are borrowed and must outlive the client. Returns 0
 *  or DK_EINVAL (bad URL, with `err`) / DK_ENOMEM / DK_ESTATE (built without
 *  hiredis). Any thread. */
int dk__redis_new(const char *url, const char *instance_id, dk_loop *loop, dk_logger *log,
                  dk__redis **out, dk_err *err);

/** Stops every reader (see below): no back end callback runs afterwards.
 *  Call it before freeing the services whose back ends use the readers.
 *  Idempotent. Any thread but the loop's. */
void dk__redis_stop_readers(dk__redis *r);

/** Stops the readers and frees the client. Not on the service thread; NULL ignored. */
void dk__redis_free(dk__redis *r);

/** This process's id (borrowed). */
const char *dk__redis_instance(const dk__redis *r);

/** "host:port/db" for the log (borrowed). */
const char *dk__redis_describe(const dk__redis *r);

/** Checks that a connection can be made now (PING). 0 or DK_EUNAVAILABLE. */
int dk__redis_ping(dk__redis *r);

/* Back ends. Each takes a borrowed client that must outlive it. Their
 * destroy does not free the client. NULL members where the contract allows. */
int dk__redis_cache_backend(dk__redis *r, dk_cache_backend *out);
int dk__redis_ratelimit_backend(dk__redis *r, dk_ratelimit_backend *out);
int dk__redis_cron_backend(dk__redis *r, dk_cron_backend *out);

/** Events: PUBLISH on emit, history in a capped list, and a subscriber that
 *  calls dk_events_deliver_remote() on `*bus_slot` (read when a message
 *  arrives, so the bus may be created after the back end). The subscriber
 *  starts with dk__redis_events_start(). */
int dk__redis_events_backend(dk__redis *r, dk_events **bus_slot, size_t history_size,
                             dk_events_backend *out);
int dk__redis_events_start(dk__redis *r, dk_events_backend *b);

/** SSE: XADD to one stream (ordered publish, stream ids as event ids) and a
 *  reader that calls dk_sse_deliver_remote() on `*sse_slot`. */
int dk__redis_sse_backend(dk__redis *r, dk_sse **sse_slot, size_t stream_max,
                          uint64_t replay_max_age_ms, dk_sse_backend *out);
int dk__redis_sse_start(dk__redis *r, dk_sse_backend *b);

#ifdef DK_HAVE_HIREDIS
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

/** Runs one command (argv form, binary safe) on a pooled synchronous
 *  connection. On 0, `*out` is the reply (freeReplyObject()); an error reply
 *  is returned as DK_EINTERNAL with the reply freed (its text logged at
 *  debug level). DK_EUNAVAILABLE when Redis cannot be reached in time. */
int dk__redis_cmd(dk__redis *r, redisReply **out, int argc, const char **argv,
                  const size_t *argvlen);

/** A Lua script run with EVALSHA (EVAL when Redis does not know it yet). */
typedef struct dk__redis_script {
    const char *body;
    char sha[41];
} dk__redis_script;

void dk__redis_script_init(dk__redis_script *s, const char *body);

/** EVALSHA/EVAL of `s` with `nkeys` keys followed by arguments (argv form). */
int dk__redis_eval(dk__redis *r, const dk__redis_script *s, int nkeys, int argc,
                   const char **argv, const size_t *argvlen, redisReply **out);

/* ---- asynchronous readers on the service loop ---- */

typedef struct dk__redis_reader dk__redis_reader;

/** Called on the service thread each time the reader's connection is ready;
 *  issue commands on `ac` with privdata = the reader. */
typedef void (*dk__redis_ready_fn)(dk__redis_reader *rd, redisAsyncContext *ac, void *user);

/** Starts a reader named `name` (static string, for the log), owned by the
 *  client: dk__redis_stop_readers() stops it (its pending callbacks then get
 *  NULL replies) and frees it. Any thread but the loop's. Returns NULL when
 *  out of memory or the loop is stopping. */
dk__redis_reader *dk__redis_reader_start(dk__redis *r, const char *name, dk__redis_ready_fn ready,
                                         void *user);

/** User data given at start. */
void *dk__redis_reader_user(dk__redis_reader *rd);

/** Arms a watchdog: without dk__redis_reader_alive() within `ms`, the
 *  connection is considered dead and reconnected. 0 disarms. Service thread. */
void dk__redis_reader_expect(dk__redis_reader *rd, uint64_t ms);

/** Whether the reader is stopping (callbacks must not issue commands). */
bool dk__redis_reader_stopping(const dk__redis_reader *rd);

/** Reports an I/O-level problem seen in a reply; logs and reconnects. Service thread. */
void dk__redis_reader_fail(dk__redis_reader *rd, const char *why);

dk__redis *dk__redis_reader_client(dk__redis_reader *rd);
#endif

#endif
