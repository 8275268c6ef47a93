/* libpq, loaded with dlopen() the first time a PostgreSQL URL is opened (see
 * pq.h for why). */
#define DK__PQ_IMPL
#include "db/pq.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "donkey/common.h"

/* libpq's soname; its ABI major has been 5 since PostgreSQL 8.0. */
#ifndef DK_LIBPQ_SONAME
#define DK_LIBPQ_SONAME "libpq.so.5"
#endif

/* Each entry of DK__PQ_FUNCS must match libpq-fe.h (the operand of _Generic is
 * not evaluated, so this references no libpq symbol). */
#define DK__PQ_CHECK(ret, name, params)                                                           \
    _Static_assert(_Generic(&name, ret(*) params: 1, default: 0),                                 \
                   "DK__PQ_FUNCS disagrees with libpq-fe.h on " #name);
DK__PQ_FUNCS(DK__PQ_CHECK)
#undef DK__PQ_CHECK

dk__pq_api dk__pq;

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool loaded;

int dk__pq_load(char *msg, size_t msglen)
{
    if (atomic_load_explicit(&loaded, memory_order_acquire))
        return 0;
    char buf[512];
    int rc = 0;
    pthread_mutex_lock(&load_lock);
    if (!atomic_load_explicit(&loaded, memory_order_relaxed)) {
        const char *lib = secure_getenv("DK_LIBPQ");
        if (lib == NULL || *lib == '\0')
            lib = DK_LIBPQ_SONAME;
        void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
        if (h == NULL) {
            const char *why = dlerror();
            snprintf(buf, sizeof(buf),
                     "PostgreSQL support needs libpq, which could not be loaded (%s); install it "
                     "(Debian: apt-get install libpq5) or set DK_LIBPQ to its path",
                     why != NULL ? why : lib);
            rc = DK_EUNAVAILABLE;
        } else {
            dk__pq_api api;
            const char *missing = NULL;
#define DK__PQ_SYM(ret, name, params)                                                             \
    if (missing == NULL && (api.name = (ret(*) params)dlsym(h, #name)) == NULL)                   \
        missing = #name;
            DK__PQ_FUNCS(DK__PQ_SYM)
#undef DK__PQ_SYM
            if (missing != NULL) {
                snprintf(buf, sizeof(buf),
                         "PostgreSQL support needs libpq, but %s has no %s (too old, or not "
                         "libpq)", lib, missing);
                dlclose(h);
                rc = DK_EUNAVAILABLE;
            } else {
                dk__pq = api; /* the handle stays open for the life of the process */
                atomic_store_explicit(&loaded, true, memory_order_release);
            }
        }
    }
    pthread_mutex_unlock(&load_lock);
    if (rc != 0 && msg != NULL && msglen > 0)
        snprintf(msg, msglen, "%s", buf);
    return rc;
}
