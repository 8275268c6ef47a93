/* Fibers: a function running on a stack of its own that can suspend itself
 * (dk__fiber_yield) and be resumed later by the thread that started it.
 *
 * The context switch is Boost.Context's fcontext (make_fcontext /
 * jump_fcontext: a few register moves, no system call). Stacks are mmap'ed
 * with a PROT_NONE guard page below them, so an overflow faults instead of
 * overwriting memory. AddressSanitizer and ThreadSanitizer are told about
 * every switch (their fiber APIs), so sanitizer builds stay exact.
 *
 * A fiber belongs to one thread: it is started, resumed and yields on the
 * thread that created it. Used by the HTTP threads to run each request's
 * middleware and handler (src/http/exec.c). */
#ifndef DK_UTIL_FIBER_H
#define DK_UTIL_FIBER_H

#include <stdbool.h>
#include <stddef.h>

typedef struct dk__fiber dk__fiber;

/* A fiber with a stack of `stack_size` bytes (rounded up to pages; 0 picks
 * the default, 256 KiB, or 1 MiB under AddressSanitizer). NULL when out of
 * memory. Free with dk__fiber_free() when it is not suspended. */
dk__fiber *dk__fiber_new(size_t stack_size);
void dk__fiber_free(dk__fiber *f);

/* Runs fn(arg) on the fiber until it returns or yields. Returns true when fn
 * has returned (the fiber can be started again with another function), false
 * when it yielded (resume it with dk__fiber_resume). */
bool dk__fiber_start(dk__fiber *f, void (*fn)(void *arg), void *arg);

/* Continues a suspended fiber; same return value as dk__fiber_start. */
bool dk__fiber_resume(dk__fiber *f);

/* Suspends the running fiber, returning control to the dk__fiber_start or
 * dk__fiber_resume that ran it. Only from inside a fiber. */
void dk__fiber_yield(void);

/* The fiber running on this thread, or NULL on a thread's own stack. */
dk__fiber *dk__fiber_current(void);

#endif
