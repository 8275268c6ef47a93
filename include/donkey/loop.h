/* donkey: the service loop, a libuv loop on its own thread (the "service
 * thread", dk-service) where timers, cron and other background work live
 * (never on the HTTP threads). "Service thread" below is that thread. */
#ifndef DONKEY_LOOP_H
#define DONKEY_LOOP_H

#include "common.h"

/* libuv's loop type; include <uv.h> (which needs _GNU_SOURCE or
 * _XOPEN_SOURCE under -std=c11) to use it. */
struct uv_loop_s;

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dk_loop dk_loop;

/** Creates the loop and starts its thread. NULL on failure. Caller frees with dk_loop_free(). */
DK_API dk_loop *dk_loop_new(void);

/** Stops the service thread (pending posted calls run first) and frees it. NULL ignored. */
DK_API void dk_loop_free(dk_loop *loop);

/** Runs `fn(arg)` on the service thread soon. Any thread. Returns 0, DK_ENOMEM or
 *  DK_ESTATE (loop stopping: fn will not run). */
DK_API int dk_loop_post(dk_loop *loop, void (*fn)(void *arg), void *arg);

/** Calls `fn(arg)` on the service thread and waits for it to return. Any thread
 *  except the service thread itself (there it simply calls fn). */
DK_API int dk_loop_call(dk_loop *loop, void (*fn)(void *arg), void *arg);

/** The libuv loop. Use only on the service thread (e.g. inside a posted call). */
DK_API struct uv_loop_s *dk_loop_uv(dk_loop *loop);

/** Whether the caller runs on the service thread. */
DK_API bool dk_loop_on_thread(const dk_loop *loop);

#ifdef __cplusplus
}
#endif
#endif
