/* The allocation wrapper: every allocation of the schema, router, JSON
 * writer and buffer paths goes through dk__malloc and friends, so a test can
 * make the Nth one fail (dk__alloc_fail_after) and check that the caller
 * answers with a clean error instead of crashing (../shared/STYLE.md rule 9).
 * In production the check is one relaxed atomic load per call. */
#include "base/internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Allocations left before the injected failure; < 0: none armed. */
static atomic_long fail_countdown = -1;
static atomic_long failures;

static bool should_fail(void)
{
    if (atomic_load_explicit(&fail_countdown, memory_order_relaxed) < 0)
        return false;
    long left = atomic_fetch_sub(&fail_countdown, 1);
    if (left == 0) {
        atomic_fetch_add(&failures, 1);
        return true;
    }
    if (left < 0)
        atomic_store(&fail_countdown, -1); /* raced past the failure: disarm */
    return false;
}

void dk__alloc_fail_after(long n)
{
    atomic_store(&failures, 0);
    atomic_store(&fail_countdown, n < 0 ? -1 : n);
}

long dk__alloc_failures(void) { return atomic_load(&failures); }

void *dk__malloc(size_t size) { return should_fail() ? NULL : malloc(size); }

void *dk__calloc(size_t n, size_t size) { return should_fail() ? NULL : calloc(n, size); }

void *dk__realloc(void *p, size_t size) { return should_fail() ? NULL : realloc(p, size); }

char *dk__strdup(const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = dk__malloc(n);
    return d != NULL ? memcpy(d, s, n) : NULL;
}

char *dk__strndup(const char *s, size_t len)
{
    char *d = dk__malloc(len + 1);
    if (d == NULL)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

void dk__free(void *p) { free(p); }
