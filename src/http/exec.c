/* The application's execution pools and dk_blocking(); see src/base/offload.h. */
#include "internal.h"
#include "base/offload.h"

int dk_blocking(dk_ctx *ctx, int (*fn)(void *arg), void *arg)
{
    (void)ctx;
    if (fn == NULL)
        return DK_EINVAL;
    return dk__offload(DK__POOL_WORK, fn, arg);
}

int dk__exec_start(dk_app *app, dk_err *err)
{
    int io = app->opts.db_pool > 0 ? app->opts.db_pool : 16;
    int work = app->opts.workers > 0 ? app->opts.workers : 8;
    /* The worker pool runs CPU-heavy work (hashing): at nice 19 it never
     * outranks the HTTP threads, so cheap requests stay fast beside it. */
    app->exec_io = dk__pool_new("dk-io", io, 0);
    app->exec_work = app->exec_io ? dk__pool_new("dk-work", work, 19) : NULL;
    if (app->exec_work == NULL) {
        dk__exec_stop(app);
        return dk_err_set(err, DK_EIO, "cannot start the worker threads");
    }
    return 0;
}

void dk__exec_stop(dk_app *app)
{
    dk__fetch_stop(app->fetcher);
    app->fetcher = NULL;
    dk__pool_free(app->exec_work);
    dk__pool_free(app->exec_io);
    app->exec_io = app->exec_work = NULL;
}
