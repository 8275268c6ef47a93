/* donkey: in-process publish/subscribe with wildcard subscriptions and a
 * bounded history.
 *
 * Event names are non-empty strings, by convention dot-separated, resource
 * first, past tense ("user.created", "order.paid"). A subscription key without
 * `*` is exact; a key containing `*` is a pattern in which `*` matches any run
 * of characters (also empty, also dots) and every other character, `.` and `?`
 * included, is literal; the whole name must match. So "user.*" matches
 * "user.created" and "user.profile.updated" but not "user" or "post.created",
 * and "*" matches every event.
 *
 * Delivery order for one emit: exact subscribers in subscription order, then
 * pattern subscribers grouped by key in key-creation order. Each subscription
 * runs at most once per emit. Synchronous handlers run on the emitting thread;
 * asynchronous ones run later on the service loop given in the options.
 *
 * All functions: any thread. No handler runs while the bus holds its lock, so
 * a handler may emit, subscribe, or unsubscribe (itself included). */
#ifndef DONKEY_EVENTS_H
#define DONKEY_EVENTS_H

#include "common.h"
#include "log.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dk_events dk_events; /* also declared in app.h */
typedef struct dk_loop dk_loop;     /* see loop.h */

/** A handler. `event` is the emitted name and `data` the payload (JSON null
 *  when none), both borrowed for the call: copy what you keep and do not
 *  modify `data`. Return 0 (or any value >= 0) on success; a negative value
 *  is logged and does not stop the other handlers. */
typedef int (*dk_event_fn)(const char *event, const json_t *data, void *user);

/** Distributed back end (e.g. Redis pub/sub). Optional; every member may be
 *  NULL. Callbacks run on the emitting thread with no bus lock held. */
typedef struct dk_events_backend {
    /** Called once per dk_events_emit(), after the event is in the local
     *  history and before local delivery, so the back end can persist the
     *  event and fan it out to other instances. `data` is borrowed. A negative
     *  return is logged; local delivery happens anyway. Not called for events
     *  injected with dk_events_deliver_remote(). */
    int (*publish)(void *user, const char *event, const json_t *data, int64_t wall_ms);
    /** Replaces the local history for dk_events_history(): on 0, `*out` is a
     *  new JSON array of records in the format described there. */
    int (*history)(void *user, const char *pattern, size_t limit, json_t **out);
    /** Runs once at dk_events_free(), or right away if dk_events_new() fails. */
    void (*destroy)(void *user);
    void *user;
} dk_events_backend;

typedef struct dk_events_options {
    size_t history_size;   /* records kept (oldest dropped first); default 1000, 0 = none */
    size_t history_limit;  /* dk_events_history() with DK_EVENTS_LIMIT_DEFAULT; default 100 */
    dk_logger *logger;     /* borrowed, may be NULL; handler failures are logged here */
    dk_loop *loop;         /* borrowed, may be NULL; runs asynchronous handlers */
    const dk_events_backend *backend; /* copied; NULL = in-process only */
} dk_events_options;

/** Fills `o` with the defaults above. */
DK_API void dk_events_options_init(dk_events_options *o);

/** New bus. `opts` is copied (NULL = defaults); the logger and loop must
 *  outlive the bus and its pending asynchronous deliveries (free the bus, then
 *  the loop, then the logger). Returns NULL when out of memory. Caller frees
 *  with dk_events_free(). */
DK_API dk_events *dk_events_new(const dk_events_options *opts);

/** Removes every subscription (each user_free runs once, after any call in
 *  progress returns), drops asynchronous deliveries not yet started, runs the
 *  back end's destroy and frees the bus. NULL is ignored. */
DK_API void dk_events_free(dk_events *ev);

/** Emits `event` (copied) with `data` (borrowed; NULL means JSON null).
 *  Records {event, copy of data, wall-clock time} in the history (even when
 *  nobody listens), calls the back end's publish, queues asynchronous
 *  handlers on the service thread, then runs the synchronous handlers on this thread
 *  and returns when they have all returned. Returns the number of synchronous
 *  handlers run (failed ones included), or DK_EINVAL (NULL or empty name),
 *  DK_ENOMEM or DK_ESTATE (bus being freed). */
DK_API int dk_events_emit(dk_events *ev, const char *event, const json_t *data);

/** Delivers an event received from another instance: like dk_events_emit()
 *  (local history and local subscribers) but without calling the back end's
 *  publish, so it is not sent out again. For back-end implementations. */
DK_API int dk_events_deliver_remote(dk_events *ev, const char *event, const json_t *data);

/** Subscribes `fn` to `pattern` (copied; an exact name or a `*` pattern).
 *  Runs synchronously on the emitting thread. `user_free`, if not NULL, runs
 *  exactly once after the last call to `fn` (dk_events_off() or
 *  dk_events_free()), and right away if this call fails. Subscribing the same
 *  (pattern, fn, user) again is a no-op that returns the existing id (the new
 *  user_free is then not kept: the existing subscription owns `user`).
 *  Returns a subscription id > 0, DK_EINVAL (empty pattern, NULL fn),
 *  DK_ENOMEM or DK_ESTATE. */
DK_API int64_t dk_events_on(dk_events *ev, const char *pattern, dk_event_fn fn, void *user,
                            dk_free_fn user_free);

/** As dk_events_on() but the subscription is removed just before its first
 *  call; dk_events_off() before that cancels it. Never deduplicated. */
DK_API int64_t dk_events_once(dk_events *ev, const char *pattern, dk_event_fn fn, void *user,
                              dk_free_fn user_free);

/** As dk_events_on() but `fn` runs later on the service thread (the loop of the options), with its
 *  own copy of the data; dk_events_emit() does not wait for it. A delivery
 *  still queued when the subscription is removed is skipped. Returns
 *  DK_ESTATE (user_free run) when the bus has no loop. */
DK_API int64_t dk_events_on_async(dk_events *ev, const char *pattern, dk_event_fn fn, void *user,
                                  dk_free_fn user_free);

/** Asynchronous and once. */
DK_API int64_t dk_events_once_async(dk_events *ev, const char *pattern, dk_event_fn fn, void *user,
                                    dk_free_fn user_free);

/** Removes subscription `id`. After this returns the handler is not called
 *  again, except by an emit that was already calling it on another thread;
 *  user_free runs after any such call (so a handler may remove itself).
 *  Returns 0 or DK_ENOTFOUND (unknown, already removed, or a once
 *  subscription that fired). */
DK_API int dk_events_off(dk_events *ev, int64_t id);

/** Removes the subscriptions under the exact key `pattern` (other keys that
 *  match the same events are untouched): those with handler `fn` and user data
 *  `user`, or every one when `fn` is NULL. Returns the number removed (>= 0)
 *  or DK_EINVAL. */
DK_API int dk_events_off_key(dk_events *ev, const char *pattern, dk_event_fn fn, void *user);

/** dk_events_history() limit meaning "the configured history_limit". */
#define DK_EVENTS_LIMIT_DEFAULT INT64_C(-1)

/** The newest `limit` history records whose name matches `pattern` (NULL or
 *  "*" = every record; an exact name; or a `*` pattern as for subscriptions),
 *  oldest first, newest last, as a new JSON array of
 *  {"event": name, "data": copy, "timestamp": "2024-01-15T12:34:56.789Z"}.
 *  `limit` is > 0, 0 (empty array) or DK_EVENTS_LIMIT_DEFAULT. On 0 the caller
 *  releases `*out` with json_decref(). Returns DK_EINVAL (other negative
 *  limit), DK_ENOMEM or the back end's error. */
DK_API int dk_events_history(dk_events *ev, const char *pattern, int64_t limit, json_t **out);

typedef struct dk_events_stats {
    uint64_t emitted;        /* emits and remote deliveries */
    uint64_t handled;        /* handler calls (sync and async) */
    uint64_t failed;         /* handler calls that returned < 0 */
    uint64_t async_dropped;  /* async deliveries that could not be queued */
    size_t subscriptions;    /* live subscriptions */
    size_t history;          /* records in the local history */
} dk_events_stats;

DK_API void dk_events_stats_get(dk_events *ev, dk_events_stats *out);

#ifdef __cplusplus
}
#endif
#endif
