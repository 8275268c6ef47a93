/* donkey: key/value cache with per-entry time-to-live and LRU eviction.
 *
 * Keys are NUL-terminated strings (1 to `max_key_len` bytes). Values are any
 * JSON value, including JSON null (a stored null is a hit, not a miss). The
 * cache stores its own deep copy of every value and hands out private deep
 * copies, so callers can never change cached data through a pointer.
 *
 * The facade (dk_cache) owns the default TTL, single-flight dk_cache_get_or_set()
 * and statistics; storage sits behind dk_cache_backend. The built-in backend is
 * an in-memory hash map plus LRU list (O(1) get/set/delete). All functions:
 * any thread. No user callback runs while the cache holds one of its locks. */
#ifndef DONKEY_CACHE_H
#define DONKEY_CACHE_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dk_cache dk_cache; /* also declared in app.h; C11 allows the repeat */

/** TTL value: the entry never expires. */
#define DK_TTL_NEVER INT64_C(-1)
/** TTL value: use the cache's configured default TTL. */
#define DK_TTL_DEFAULT INT64_C(0)

/** Counters since creation (size is the current number of entries, expired
 *  but not yet purged ones included). */
typedef struct dk_cache_stats {
    uint64_t hits;
    uint64_t misses;
    uint64_t sets;
    uint64_t deletes;     /* successful deletions */
    uint64_t evictions;   /* LRU evictions at max size */
    uint64_t expired;     /* expired entries purged (lazily, on set or by sweep) */
    uint64_t computes;    /* get_or_set computations started */
    size_t size;
} dk_cache_stats;

/** Storage interface. The facade resolves DK_TTL_DEFAULT before calling, so a
 *  backend only ever sees `ttl_ms` > 0 or DK_TTL_NEVER. Keys are borrowed for
 *  the call. Every operation may be called from any thread concurrently; the
 *  backend does its own locking. Required: get, set, del, has, clear, keys.
 *  Optional (NULL allowed): sweep, stats, destroy. */
typedef struct dk_cache_backend {
    /** On 0, `*out` is a new reference the caller owns exclusively (a fresh
     *  value or a private deep copy, never the stored value itself). A hit
     *  makes the entry the most recently used. Returns DK_ENOTFOUND when
     *  absent or expired, or another negative code. */
    int (*get)(void *user, const char *key, json_t **out);
    /** Stores a copy of `value` (borrowed). Replaces an existing entry (new
     *  TTL). Returns 0 or a negative code. */
    int (*set)(void *user, const char *key, const json_t *value, int64_t ttl_ms);
    /** Returns 0 if the key was present (even expired but not yet purged),
     *  DK_ENOTFOUND if not, or another negative code. */
    int (*del)(void *user, const char *key);
    /** Returns 1 if present and not expired, 0 if not, or a negative code.
     *  Must not change LRU order. */
    int (*has)(void *user, const char *key);
    /** Removes every entry. Returns 0 or a negative code. */
    int (*clear)(void *user);
    /** On 0, `*out` is a new JSON array of the non-expired keys matching the
     *  glob `pattern` (NULL = all), in any order (the facade sorts it). */
    int (*keys)(void *user, const char *pattern, json_t **out);
    /** Purges expired entries; returns how many were removed (>= 0) or a
     *  negative code. NULL: the backend expires entries itself. */
    int (*sweep)(void *user);
    /** Fills `size`, `evictions` and `expired` of `out` (see dk_cache_stats). */
    void (*stats)(void *user, dk_cache_stats *out);
    /** Runs once when the cache is freed, or when dk_cache_new_with_backend() fails. */
    void (*destroy)(void *user);
    void *user;
} dk_cache_backend;

typedef struct dk_cache_options {
    int64_t default_ttl_ms; /* > 0 or DK_TTL_NEVER; default 300000 (5 min) */
    size_t max_entries;     /* LRU bound of the in-memory backend, >= 1; default 1000 */
    size_t max_key_len;     /* longer keys are rejected with DK_ELIMIT; default 1024 */
    /** Monotonic clock in ms used for expiry; NULL = dk_now_ms(). For tests. */
    uint64_t (*clock)(void *clock_user);
    void *clock_user;
} dk_cache_options;

/** Fills `o` with the defaults above. */
DK_API void dk_cache_options_init(dk_cache_options *o);

/** New cache with the in-memory LRU backend. `opts` is copied (NULL =
 *  defaults). Returns NULL when out of memory or when an option is invalid
 *  (max_entries 0, default_ttl_ms 0 or below -1). Caller frees with
 *  dk_cache_free(). */
DK_API dk_cache *dk_cache_new(const dk_cache_options *opts);

/** New cache over `backend` (copied; its `user` now belongs to the cache and
 *  `destroy` runs at dk_cache_free(), or right away if this call fails).
 *  `max_entries` and `clock` in `opts` are not used (the backend owns storage
 *  and expiry). Returns NULL on failure. */
DK_API dk_cache *dk_cache_new_with_backend(const dk_cache_options *opts,
                                           const dk_cache_backend *backend);

/** Frees the cache and every stored value; runs the backend's destroy. NULL is
 *  ignored. No call on this cache may be running or start afterwards. */
DK_API void dk_cache_free(dk_cache *cache);

/** Looks up `key`. On 0, `*out` is a new reference to a private deep copy the
 *  caller releases with json_decref() (may be JSON null if null was stored).
 *  A hit makes the entry the most recently used. Returns DK_ENOTFOUND (absent
 *  or expired; an expired entry is purged), DK_EINVAL, DK_ELIMIT (key too
 *  long) or a backend error; `*out` is then NULL. */
DK_API int dk_cache_get(dk_cache *cache, const char *key, json_t **out);

/** Stores a deep copy of `value` (borrowed) under `key` (copied) for `ttl_ms`
 *  milliseconds, DK_TTL_NEVER or DK_TTL_DEFAULT. Overwriting refreshes TTL and
 *  recency. Inserting a new key into a full cache first purges a few expired
 *  entries, then evicts the least recently used one. Returns 0, DK_EINVAL
 *  (NULL/empty key, NULL value, TTL below -1), DK_ELIMIT or DK_ENOMEM. */
DK_API int dk_cache_set(dk_cache *cache, const char *key, const json_t *value, int64_t ttl_ms);

/** Removes `key`. Returns 0 if it was present (also if expired but not yet
 *  purged), DK_ENOTFOUND if not, DK_EINVAL or DK_ELIMIT. */
DK_API int dk_cache_delete(dk_cache *cache, const char *key);

/** Returns 1 if `key` is present and not expired, 0 if not (an expired entry
 *  is purged), or a negative code. Does not change LRU order. */
DK_API int dk_cache_has(dk_cache *cache, const char *key);

/** Removes every entry. Returns 0 or a backend error. */
DK_API int dk_cache_clear(dk_cache *cache);

/** Keys of non-expired entries matching `pattern` (NULL = all), as a new JSON
 *  array of strings sorted bytewise (caller releases with json_decref()).
 *  Pattern syntax is dk_glob_match(): `*` any run (also empty, also `:` and
 *  `.`), `?` exactly one character, every other character literal. Does not
 *  purge or touch LRU order. Returns NULL when out of memory. */
DK_API json_t *dk_cache_keys(dk_cache *cache, const char *pattern);

/** Computes a missing value. On 0 `*out` must hold a new reference, which the
 *  cache takes; `key` is borrowed. Return a negative code to fail. Runs with
 *  no cache lock held, so it may use the cache (but not get_or_set of the
 *  same key: that returns DK_EBUSY). */
typedef int (*dk_cache_compute_fn)(const char *key, json_t **out, void *user);

/** Returns the cached value of `key`, or computes it with `fn`, stores it for
 *  `ttl_ms` (as in dk_cache_set()) and returns it. Single-flight: when several
 *  threads miss the same key at once, `fn` runs once and the others wait for
 *  its result; if it fails they all get its error and nothing is cached.
 *  On 0, `*out` is a new reference to a private copy. Returns a negative code
 *  from `fn` or the cache (DK_EBUSY when called from inside the computation of
 *  the same key on the same thread); `*out` is then NULL. */
DK_API int dk_cache_get_or_set(dk_cache *cache, const char *key, dk_cache_compute_fn fn,
                               void *user, int64_t ttl_ms, json_t **out);

/** Purges every expired entry now and returns how many were removed (or a
 *  negative code). Call it from a timer (e.g. every minute); expired entries
 *  are also purged lazily when touched and a few at a time during set. */
DK_API int dk_cache_sweep(dk_cache *cache);

/** Current number of entries (expired but not yet purged ones included). */
DK_API size_t dk_cache_size(dk_cache *cache);

/** Fills `out` with the counters. */
DK_API void dk_cache_stats_get(dk_cache *cache, dk_cache_stats *out);

#ifdef __cplusplus
}
#endif
#endif
