/* Fibers on Boost.Context's fcontext; see fiber.h. */
#include "base/fiber.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DK_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define DK_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(DK_ASAN)
#define DK_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__) && !defined(DK_TSAN)
#define DK_TSAN 1
#endif
#ifdef DK_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef DK_TSAN
#include <sanitizer/tsan_interface.h>
#endif

/* Boost.Context's C ABI (boost/context/detail/fcontext.hpp declares these
 * extern "C"; libboost_context exports them). */
typedef void *fcontext_t;
typedef struct {
    fcontext_t fctx;
    void *data;
} transfer_t;
extern transfer_t jump_fcontext(fcontext_t const to, void *vp);
extern fcontext_t make_fcontext(void *sp, size_t size, void (*fn)(transfer_t));

struct dk__fiber {
    fcontext_t ctx;    /* where the fiber continues */
    fcontext_t caller; /* where yield / return go back to */
    void (*fn)(void *arg);
    void *arg;
    bool done;
    char *map; /* guard page + stack */
    size_t map_len;
    size_t stack_len;
#ifdef DK_ASAN
    void *fake_stack;        /* the fiber's, while it is suspended */
    void *caller_fake_stack; /* the caller's, while the fiber runs */
    const void *caller_bottom;
    size_t caller_size;
#endif
#ifdef DK_TSAN
    void *tsan_fiber;
    void *tsan_caller;
#endif
};

static _Thread_local dk__fiber *tl_current;

static size_t page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

dk__fiber *dk__fiber_new(size_t stack_size)
{
    if (stack_size == 0) {
#ifdef DK_ASAN
        stack_size = 1024 * 1024;
#else
        stack_size = 256 * 1024;
#endif
    }
    size_t pg = page_size();
    stack_size = (stack_size + pg - 1) / pg * pg;
    dk__fiber *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->map_len = stack_size + pg;
    void *m = mmap(NULL, f->map_len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (m == MAP_FAILED) {
        free(f);
        return NULL;
    }
    if (mprotect(m, pg, PROT_NONE) != 0) { /* guard page: stacks grow down */
        munmap(m, f->map_len);
        free(f);
        return NULL;
    }
    f->map = m;
    f->stack_len = stack_size;
    f->done = true;
#ifdef DK_TSAN
    f->tsan_fiber = __tsan_create_fiber(0);
#endif
    return f;
}

void dk__fiber_free(dk__fiber *f)
{
    if (f == NULL)
        return;
#ifdef DK_TSAN
    __tsan_destroy_fiber(f->tsan_fiber);
#endif
#ifdef DK_ASAN
    /* The stack's shadow still marks the redzones of frames that ran on it;
     * whatever is mapped at this address next (a file mapping, say) must not
     * inherit them. */
    __asan_unpoison_memory_region(f->map + (f->map_len - f->stack_len), f->stack_len);
#endif
    munmap(f->map, f->map_len);
    free(f);
}

dk__fiber *dk__fiber_current(void) { return tl_current; }

/* ---- switching, with the sanitizers told ---- */

/* Thread stack -> fiber. Returns when the fiber yields or finishes. */
static void switch_in(dk__fiber *f)
{
    dk__fiber *prev = tl_current;
    tl_current = f;
#ifdef DK_ASAN
    __sanitizer_start_switch_fiber(&f->caller_fake_stack, f->map + f->map_len - f->stack_len,
                                   f->stack_len);
#endif
#ifdef DK_TSAN
    f->tsan_caller = __tsan_get_current_fiber();
    __tsan_switch_to_fiber(f->tsan_fiber, 0);
#endif
    transfer_t t = jump_fcontext(f->ctx, f);
    /* Back on the caller's stack: the fiber yielded or finished. */
#ifdef DK_ASAN
    __sanitizer_finish_switch_fiber(f->caller_fake_stack, NULL, NULL);
#endif
    f->ctx = t.fctx;
    tl_current = prev;
}

/* Fiber -> the stack that ran it. `exiting`: the fiber's frame is gone. */
static void switch_out(dk__fiber *f, bool exiting)
{
#ifdef DK_ASAN
    __sanitizer_start_switch_fiber(exiting ? NULL : &f->fake_stack, f->caller_bottom,
                                   f->caller_size);
#endif
#ifdef DK_TSAN
    __tsan_switch_to_fiber(f->tsan_caller, 0);
#endif
    transfer_t t = jump_fcontext(f->caller, NULL);
    /* Resumed: the caller may be a different frame of the same thread. */
    f->caller = t.fctx;
#ifdef DK_ASAN
    __sanitizer_finish_switch_fiber(f->fake_stack, &f->caller_bottom, &f->caller_size);
#endif
}

static void entry(transfer_t t)
{
    dk__fiber *f = t.data;
    f->caller = t.fctx;
#ifdef DK_ASAN
    __sanitizer_finish_switch_fiber(NULL, &f->caller_bottom, &f->caller_size);
#endif
    for (;;) {
        f->fn(f->arg);
        f->done = true;
        /* Park: the next dk__fiber_start continues this loop with new fn/arg
         * (cheaper than make_fcontext, and the stack stays warm). */
        switch_out(f, false);
    }
}

bool dk__fiber_start(dk__fiber *f, void (*fn)(void *arg), void *arg)
{
    f->fn = fn;
    f->arg = arg;
    if (f->ctx == NULL)
        f->ctx = make_fcontext(f->map + f->map_len, f->stack_len, entry);
    f->done = false;
    switch_in(f);
    return f->done;
}

bool dk__fiber_resume(dk__fiber *f)
{
    switch_in(f);
    return f->done;
}

void dk__fiber_yield(void)
{
    dk__fiber *f = tl_current;
    if (f != NULL)
        switch_out(f, false);
}
