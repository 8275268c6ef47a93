/* donkey: rate limiter, the `rateLimit` middleware and client-IP helpers.
 *
 * dk_ratelimit_check() counts one call for a key and decides whether it is
 * allowed under "at most `limit` calls per `window_ms`". Two algorithms:
 *
 *  - DK_RATELIMIT_SLIDING (default): sliding-window counter. Each key keeps
 *    the count of the current and the previous window; the estimate is
 *    previous * (unelapsed fraction of the current window) + current. Bursts
 *    across a window boundary stay within the limit. Rejected calls are not
 *    counted, so a client that backs off gets through again.
 *  - DK_RATELIMIT_FIXED: the original fixed window, opened by the first call
 *    of a key and lasting `window_ms`; every call is counted, rejected ones
 *    too. A client can make up to 2 x limit calls across a boundary.
 *
 * Windows run on the monotonic clock; reset times are reported as wall-clock
 * epoch milliseconds. Storage sits behind dk_ratelimit_backend; the built-in
 * backend is in memory (hash map, bounded key count, periodic sweep of
 * expired windows, least recently used key evicted when full). All functions:
 * any thread. No user callback runs while the limiter holds a lock. */
#ifndef DONKEY_RATELIMIT_H
#define DONKEY_RATELIMIT_H

#include "app.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dk_ratelimit dk_ratelimit; /* also declared in app.h; C11 allows the repeat */

typedef enum {
    DK_RATELIMIT_SLIDING = 0, /* sliding-window counter (default) */
    DK_RATELIMIT_FIXED = 1,   /* fixed window from the key's first call */
} dk_ratelimit_algorithm;

/** Largest accepted `limit` and `window_ms` (larger values: DK_EINVAL). */
#define DK_RATELIMIT_MAX_LIMIT UINT64_C(1000000000)
#define DK_RATELIMIT_MAX_WINDOW_MS (UINT64_C(90) * 24 * 3600 * 1000)

/** Outcome of one check. */
typedef struct dk_ratelimit_result {
    bool allowed;
    uint64_t remaining;        /* calls still allowed now (0 when blocked) */
    uint64_t limit;            /* the `limit` argument */
    int64_t reset_ms;          /* end of the key's current window, epoch ms */
    uint64_t retry_after_s;    /* blocked: seconds until a call can pass (ceil, >= 1); else 0 */
} dk_ratelimit_result;

/** What a backend reports for one counted call. Times are relative to the
 *  `now_ms` the backend was given, so any clock (or a server's) works. */
typedef struct dk_ratelimit_hit {
    bool allowed;
    uint64_t remaining;
    uint64_t reset_in_ms;      /* until the current window ends */
    uint64_t retry_in_ms;      /* blocked: until a call would be allowed; else 0 */
} dk_ratelimit_hit;

/** Storage and decision interface. `hit` must be atomic per key (create or
 *  update the key's window and decide in one step). Keys are borrowed for the
 *  call. Every operation may run on any thread concurrently; the backend does
 *  its own locking. Required: hit, reset. Optional (NULL): sweep, size, destroy. */
typedef struct dk_ratelimit_backend {
    /** Counts a call for `key` with the given algorithm at monotonic time
     *  `now_ms` and fills `out`. `limit` <= DK_RATELIMIT_MAX_LIMIT, 0 <
     *  `window_ms` <= DK_RATELIMIT_MAX_WINDOW_MS. The window length of an
     *  existing key is kept; a key last used with another algorithm starts
     *  over. Returns 0 or a negative code (DK_ENOMEM, DK_EUNAVAILABLE...). */
    int (*hit)(void *user, const char *key, uint64_t limit, uint64_t window_ms,
               dk_ratelimit_algorithm algorithm, uint64_t now_ms, dk_ratelimit_hit *out);
    /** Forgets `key`. Returns 0 if it existed, DK_ENOTFOUND if not, or another code. */
    int (*reset)(void *user, const char *key);
    /** Removes windows that no longer matter at `now_ms`; returns how many (>= 0). */
    int (*sweep)(void *user, uint64_t now_ms);
    /** Number of keys stored (expired but not yet swept ones included). */
    size_t (*size)(void *user);
    /** Runs once at dk_ratelimit_free(), or when dk_ratelimit_new_with_backend() fails. */
    void (*destroy)(void *user);
    void *user;
} dk_ratelimit_backend;

typedef struct dk_ratelimit_options {
    dk_ratelimit_algorithm algorithm; /* default DK_RATELIMIT_SLIDING */
    size_t max_keys;            /* in-memory backend bound, >= 1; default 100000 */
    size_t max_key_len;         /* longer keys: DK_ELIMIT; default 512 */
    uint64_t sweep_interval_ms; /* expired windows are swept this often (on a check); default 10000 */
    /** Monotonic clock in ms for windows; NULL = dk_now_ms(). For tests. */
    uint64_t (*clock)(void *clock_user);
    /** Wall clock in epoch ms for reported reset times; NULL = dk_wall_ms(). */
    int64_t (*wall_clock)(void *clock_user);
    void *clock_user;
} dk_ratelimit_options;

/** Fills `o` with the defaults above. */
DK_API void dk_ratelimit_options_init(dk_ratelimit_options *o);

/** New limiter with the in-memory backend; `opts` copied (NULL = defaults).
 *  NULL when out of memory or an option is invalid (max_keys 0, unknown
 *  algorithm). Caller frees with dk_ratelimit_free(). */
DK_API dk_ratelimit *dk_ratelimit_new(const dk_ratelimit_options *opts);

/** New limiter over `backend` (copied; its `user` belongs to the limiter from
 *  now on and `destroy` runs at dk_ratelimit_free(), or right away if this
 *  call fails). `max_keys` is not used. NULL on failure. */
DK_API dk_ratelimit *dk_ratelimit_new_with_backend(const dk_ratelimit_options *opts,
                                                   const dk_ratelimit_backend *backend);

/** Frees the limiter and every window. NULL is ignored. No call on it may be
 *  running or start afterwards. */
DK_API void dk_ratelimit_free(dk_ratelimit *rl);

/** The limiter's default algorithm. */
DK_API dk_ratelimit_algorithm dk_ratelimit_default_algorithm(const dk_ratelimit *rl);

/** Counts one call for `key` (borrowed) with the limiter's default algorithm
 *  and fills `out`. `limit` 0 blocks every call. Returns 0 (check
 *  out->allowed), DK_EINVAL (NULL/empty key, window 0, limit or window above
 *  the maxima), DK_ELIMIT (key too long) or a backend error; `*out` is then
 *  zeroed. */
DK_API int dk_ratelimit_check(dk_ratelimit *rl, const char *key, uint64_t limit,
                              uint64_t window_ms, dk_ratelimit_result *out);

/** As dk_ratelimit_check() with an explicit algorithm. */
DK_API int dk_ratelimit_check_with(dk_ratelimit *rl, const char *key, uint64_t limit,
                                   uint64_t window_ms, dk_ratelimit_algorithm algorithm,
                                   dk_ratelimit_result *out);

/** Forgets `key`'s window. Returns 0, DK_ENOTFOUND (no window), DK_EINVAL or
 *  a backend error. */
DK_API int dk_ratelimit_reset(dk_ratelimit *rl, const char *key);

/** Removes expired windows now (checks also do it every sweep_interval_ms).
 *  Returns the number removed (>= 0) or a negative code. */
DK_API int dk_ratelimit_sweep(dk_ratelimit *rl);

/** Number of stored keys (0 when the backend cannot tell). */
DK_API size_t dk_ratelimit_size(dk_ratelimit *rl);

/** Parses "sliding" or "fixed". Returns 0 or DK_EINVAL. */
DK_API int dk_ratelimit_algorithm_parse(const char *text, dk_ratelimit_algorithm *out);

/** Writes the conventional key "ratelimit:<scope>:<who>" (e.g. scope = route
 *  name, who = client IP) into `buf`. Returns 0, or DK_ELIMIT when it does not
 *  fit (buf then holds ""). */
DK_API int dk_ratelimit_key(const char *scope, const char *who, char *buf, size_t len);

/** The `rateLimit` middleware (register with dk_app_add_middleware(app,
 *  "rateLimit", dk_ratelimit_middleware, limiter); `user` = dk_ratelimit*, or
 *  NULL to use dk_ctx_core(ctx)->ratelimit). Config object:
 *    "limit": N (required, >= 0), "window": "10s" or milliseconds (required),
 *    "keyBy": "ip" (default) or "user", "algorithm": "sliding" | "fixed"
 *    (default: the limiter's), "keyPrefix": scope name (default: the route).
 *  Key: "ratelimit:<route or keyPrefix>:<ip>", or ":user:<id>" with keyBy
 *  "user" when dk_ctx_user() holds a string or an object with "id" (falls
 *  back to the IP otherwise). Sets X-RateLimit-Limit, X-RateLimit-Remaining
 *  and X-RateLimit-Reset (epoch seconds, rounded up) on every response it
 *  governs; a blocked call gets Retry-After too and 429 TOO_MANY_REQUESTS with
 *  details {"retryAfter": s, "limit": n}. A bad config is an internal error
 *  (500, logged). A backend failure lets the call through and logs a warning.
 *  HTTP thread. */
DK_API int dk_ratelimit_middleware(dk_ctx *ctx, dk_request *req, dk_response *res,
                                   const json_t *config, dk_next *next, void *user);

/* ------------------------------------------------------------------ */
/* Client IP                                                           */

/** Header lookup used by dk_client_ip(): value of header `name`
 *  (case-insensitive) or NULL; borrowed. */
typedef const char *(*dk_header_fn)(void *u, const char *name);

/** Picks the client address of a request into `out`. Unsafe behind most
 *  proxies (a client can set every header it reads, and the first
 *  X-Forwarded-For entry is the client's own); prefer dk_client_ip_resolve().
 *  Only when `peer_trusted`
 *  (the socket peer is a trusted proxy) are headers consulted, in this order:
 *  CF-Connecting-IP, True-Client-IP, X-Real-IP (each used whole), then the
 *  first entry of X-Forwarded-For; the first present value that is a valid
 *  IPv4/IPv6 address (inet_pton; surrounding blanks ignored) wins. Otherwise
 *  the socket address `peer_ip` if valid, else "unknown". Addresses are copied
 *  as given (no normalisation). `get_header` may be NULL (no headers).
 *  Returns 0, DK_EINVAL (out NULL or outlen 0) or DK_ELIMIT (does not fit;
 *  out holds ""). Pure function, any thread. */
DK_API int dk_client_ip(const char *peer_ip, bool peer_trusted, dk_header_fn get_header,
                        void *u, char *out, size_t outlen);

/** The client address of a request, as the HTTP server computes dk_ctx_ip().
 *  Headers are consulted only when the socket peer `peer_ip` matches one of
 *  `trusted` (NULL-terminated CIDR list, may be NULL = none). Then, if
 *  `ip_header` is not NULL (a header the trusted proxy sets to the client
 *  address, e.g. "X-Real-IP" or "CF-Connecting-IP") and holds one valid
 *  address, that address wins. Otherwise X-Forwarded-For is walked from the
 *  right, skipping addresses that are trusted proxies too; the first other
 *  valid address wins (if every entry is trusted, the leftmost one; an
 *  invalid entry stops the walk). Entries left of that point were written by
 *  the client and are never used. Otherwise the peer address. `get_header`
 *  must return the whole X-Forwarded-For value (all header lines joined with
 *  ","). Returns as dk_client_ip(). Pure function, any thread. */
DK_API int dk_client_ip_resolve(const char *peer_ip, const char *const *trusted,
                                const char *ip_header, dk_header_fn get_header, void *u,
                                char *out, size_t outlen);

/** dk_client_ip_resolve() without an `ip_header`: X-Forwarded-For only. */
DK_API int dk_client_ip_trusted(const char *peer_ip, const char *const *trusted,
                                dk_header_fn get_header, void *u, char *out, size_t outlen);

/** Whether `ip` lies in `cidr` ("10.0.0.0/8", "2001:db8::/32"; a bare address
 *  means the exact address). IPv4-mapped IPv6 addresses (::ffff:a.b.c.d)
 *  match IPv4 ranges. Returns 1 on a match, 0 otherwise (also for invalid
 *  input). Any thread. */
DK_API int dk_cidr_match(const char *cidr, const char *ip);

/** Whether `text` is a valid IPv4 or IPv6 address (inet_pton). */
DK_API bool dk_ip_valid(const char *text);

#ifdef __cplusplus
}
#endif
#endif
