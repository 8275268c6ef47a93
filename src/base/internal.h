/* Internal helpers shared across donkey's modules. Not installed. */
#ifndef DK_UTIL_INTERNAL_H
#define DK_UTIL_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- allocation (src/base/alloc.c) ----
 * malloc/calloc/realloc/free with a test hook. A NULL return is an ordinary
 * failure the caller reports (DK_ENOMEM); nothing aborts. Any thread. */
void *dk__malloc(size_t size);
void *dk__calloc(size_t n, size_t size);
void *dk__realloc(void *p, size_t size);
/** strdup that accepts NULL (returns NULL). */
char *dk__strdup(const char *s);
/** Copies `len` bytes of `s` and a NUL. */
char *dk__strndup(const char *s, size_t len);
/** Same as free(): memory from these functions may be released with either. */
void dk__free(void *p);
/** Tests only: the allocation `n` calls from now (0 = the next one) fails,
 *  once; n < 0 disarms. Resets dk__alloc_failures(). */
void dk__alloc_fail_after(long n);
/** How many allocations failed by injection since the last arming. */
long dk__alloc_failures(void);

/** Names the calling thread (best effort, for debuggers and top). */
void dk__thread_name(const char *name);

/** `n` random bytes from the kernel (buffered per thread: usually no system call). */
void dk__random_bytes(unsigned char *dst, size_t n);

/* ---- growable byte buffer (src/base/buf.c) ----
 * Zero-initialise (`dk__buf b = {0};`), append, read `data`/`len`, then
 * dk__buf_free() or take `data` (the caller then frees it with dk__free()).
 * After any successful append `data` is NUL-terminated (the NUL is not
 * counted in `len`). A failed append returns DK_ENOMEM (DK_EINVAL for a bad
 * format) and leaves the buffer as it was. Not thread-safe. */
typedef struct dk__buf {
    char *data; /* owned; NULL until the first append */
    size_t len, cap;
} dk__buf;

int dk__buf_append(dk__buf *b, const void *data, size_t len);
int dk__buf_appendf(dk__buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int dk__buf_vappendf(dk__buf *b, const char *fmt, va_list ap);
int dk__buf_appends(dk__buf *b, const char *s);
/** Frees the data and empties the buffer (reusable afterwards). */
void dk__buf_free(dk__buf *b);

/** Appends the compact JSON text of `v` (as json_dumps with JSON_COMPACT |
 *  JSON_ENCODE_ANY would) to `b`. Returns 0 or DK_ENOMEM (b unchanged). */
struct json_t;
int dk__json_write(dk__buf *b, const struct json_t *v);
/** Appends `s` (len bytes, UTF-8) as a quoted, escaped JSON string, as
 *  dk__json_write would write it. Returns 0 or DK_ENOMEM (b unchanged). */
int dk__json_write_string(dk__buf *b, const char *s, size_t len);

/** FNV-1a (64 bits) of `len` bytes: the one hash behind donkey's tables
 *  (route table, cache, rate limiter, event and SSE registries). */
static inline uint64_t dk__hash(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = UINT64_C(14695981039346656037);
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= UINT64_C(1099511628211);
    }
    return h;
}

/** dk__hash() of a NUL-terminated string (without the NUL). */
static inline uint64_t dk__hash_str(const char *s)
{
    uint64_t h = UINT64_C(14695981039346656037);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h ^= *p;
        h *= UINT64_C(1099511628211);
    }
    return h;
}

/** The event-pattern matcher shared by the local bus (src/services/events.c) and
 *  the Redis back end (src/adapters/redis_events.c), so a subscription or a
 *  history query selects the same events whichever back end serves it.
 *  `*` matches any run of characters (also empty, also dots); every other
 *  character is literal (unlike dk_glob_match(), `?` is not special). A NULL
 *  pattern matches every name. Any thread. */
bool dk__event_match(const char *pattern, const char *name);

/** Case-insensitive ASCII comparison of `a` (length alen) with NUL-terminated `b`. */
bool dk__strieq_n(const char *a, size_t alen, const char *b);

#endif
