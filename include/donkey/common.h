/* donkey: shared definitions used by every module.
 *
 * Error convention: functions return int, 0 on success and a negative DK_E*
 * code on failure. Constructors return NULL on failure. Parsers also fill an
 * optional dk_err with a human-readable message. */
#ifndef DONKEY_COMMON_H
#define DONKEY_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define DK_API __attribute__((visibility("default")))
#else
#define DK_API
#endif

#define DK_ERRNO_MAP(X)                                                  \
    X(EINVAL, -1, "invalid argument")                                    \
    X(ENOMEM, -2, "out of memory")                                       \
    X(ENOTFOUND, -3, "no such entry")                                    \
    X(ELIMIT, -4, "a configured limit was exceeded")                     \
    X(EHTTP, -5, "the request was answered with an HTTP error")          \
    X(EEXIST, -6, "already exists")                                      \
    X(EDB, -7, "database error")                                         \
    X(ECONSTRAINT, -8, "database constraint violated")                   \
    X(EBUSY, -9, "resource busy or locked")                              \
    X(ESTATE, -10, "operation not allowed in the current state")         \
    X(EIO, -11, "input/output error")                                    \
    X(EUNAVAILABLE, -12, "backing service unavailable")                  \
    X(EINTERNAL, -13, "internal error")                                  \
    X(ETIMEOUT, -14, "timed out")                                        \
    X(ECONNECT, -15, "could not connect (refused, unreachable or unknown host)") \
    X(ETLS, -16, "TLS handshake or certificate verification failed")

typedef enum {
#define DK_X_(name, value, text) DK_##name = (value),
    DK_OK = 0,
    DK_ERRNO_MAP(DK_X_)
#undef DK_X_
} dk_errno;

/** Static text for `err`; never NULL, also for unknown codes. */
DK_API const char *dk_strerror(int err);
/** Static name ("EINVAL") for `err`; never NULL. */
DK_API const char *dk_err_name(int err);

/** Detail for parsers and start-up; filled only when the call returns < 0. */
typedef struct dk_err {
    int code;
    char message[256];
} dk_err;

/** Fills `err` (may be NULL) with `code` and a printf-style message; returns `code`. */
DK_API int dk_err_set(dk_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Releases user data handed to a registration call. */
typedef void (*dk_free_fn)(void *user);

/** Monotonic clock in milliseconds (CLOCK_MONOTONIC). Any thread. */
DK_API uint64_t dk_now_ms(void);
/** Wall clock in milliseconds since the Unix epoch. Any thread. */
DK_API int64_t dk_wall_ms(void);
/** Formats `wall_ms` as ISO-8601 UTC with milliseconds ("2024-01-15T12:34:56.789Z")
 *  into `buf` (at least 25 bytes). Returns `buf`. */
DK_API char *dk_iso8601(int64_t wall_ms, char *buf, size_t len);
/** Parses an ISO-8601 UTC time ("2024-01-15T12:34:56Z", optional fraction, "Z" or
 *  "+00:00"-style offset) into milliseconds since the epoch. Returns 0 or DK_EINVAL. */
DK_API int dk_iso8601_parse(const char *text, int64_t *out_ms);

/** Parses a duration ("500ms", "10s", "1m", "1h", "1d"; a bare number is
 *  milliseconds) into `*out_ms`. Returns 0 or DK_EINVAL; `err` may be NULL. */
DK_API int dk_duration_parse(const char *text, uint64_t *out_ms, dk_err *err);

/** Writes a random UUID v4 (lowercase, 36 chars + NUL) from the system's
 *  random source into `out` (37 bytes). Any thread. */
DK_API void dk_uuid_v4(char out[37]);

/** Glob match: `*` any run (also empty), `?` one character, everything else
 *  literal. Any thread. */
DK_API bool dk_glob_match(const char *pattern, const char *text);

#ifdef __cplusplus
}
#endif
#endif
