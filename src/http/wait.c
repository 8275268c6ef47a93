/* Waiting without blocking an HTTP thread: dk_blocking(). */
#include "../internal.h"

int dk_blocking(dk_ctx *ctx, int (*fn)(void *arg), void *arg)
{
    (void)ctx;
    return fn(arg);
}
