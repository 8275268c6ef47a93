/* The service loop: a libuv loop on a dedicated thread, fed by a mutex-guarded
 * queue of calls and a uv_async wake-up. */
#include <uv.h>

#include "donkey/loop.h"
#include "base/internal.h"

#include <pthread.h>
#include <stdlib.h>

struct post {
    void (*fn)(void *arg);
    void *arg;
    struct post *next;
};

struct dk_loop {
    uv_loop_t uv;
    uv_async_t wake;
    pthread_t thread;
    pthread_mutex_t lock;
    struct post *head, *tail;
    bool stopping;
    bool started;
};

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void run_posted(uv_async_t *h)
{
    dk_loop *loop = h->data;
    for (;;) {
        pthread_mutex_lock(&loop->lock);
        struct post *p = loop->head;
        loop->head = loop->tail = NULL;
        bool stopping = loop->stopping;
        pthread_mutex_unlock(&loop->lock);
        if (p == NULL) {
            /* Stopping: close every handle (services' timers included) so
             * uv_run() returns and the thread can be joined. */
            if (stopping)
                uv_walk(&loop->uv, close_walk, NULL);
            return;
        }
        while (p != NULL) {
            struct post *next = p->next;
            p->fn(p->arg);
            free(p);
            p = next;
        }
    }
}

static void *loop_main(void *arg)
{
    dk_loop *loop = arg;
    dk__thread_name("dk-service");
    uv_run(&loop->uv, UV_RUN_DEFAULT);
    /* Close anything a service left open so uv_loop_close() succeeds. */
    uv_walk(&loop->uv, close_walk, NULL);
    uv_run(&loop->uv, UV_RUN_DEFAULT);
    return NULL;
}

dk_loop *dk_loop_new(void)
{
    dk_loop *loop = calloc(1, sizeof(*loop));
    if (loop == NULL)
        return NULL;
    if (uv_loop_init(&loop->uv) != 0)
        goto fail_free;
    if (uv_async_init(&loop->uv, &loop->wake, run_posted) != 0)
        goto fail_loop;
    loop->wake.data = loop;
    pthread_mutex_init(&loop->lock, NULL);
    if (pthread_create(&loop->thread, NULL, loop_main, loop) != 0)
        goto fail_lock;
    loop->started = true;
    return loop;

fail_lock:
    pthread_mutex_destroy(&loop->lock);
    uv_close((uv_handle_t *)&loop->wake, NULL);
    uv_run(&loop->uv, UV_RUN_NOWAIT);
fail_loop:
    uv_loop_close(&loop->uv);
fail_free:
    free(loop);
    return NULL;
}

void dk_loop_free(dk_loop *loop)
{
    if (loop == NULL)
        return;
    pthread_mutex_lock(&loop->lock);
    loop->stopping = true;
    pthread_mutex_unlock(&loop->lock);
    uv_async_send(&loop->wake);
    pthread_join(loop->thread, NULL);
    uv_loop_close(&loop->uv);
    pthread_mutex_destroy(&loop->lock);
    free(loop);
}

int dk_loop_post(dk_loop *loop, void (*fn)(void *arg), void *arg)
{
    struct post *p = malloc(sizeof(*p));
    if (p == NULL)
        return DK_ENOMEM;
    p->fn = fn;
    p->arg = arg;
    p->next = NULL;
    pthread_mutex_lock(&loop->lock);
    if (loop->stopping) {
        pthread_mutex_unlock(&loop->lock);
        free(p);
        return DK_ESTATE;
    }
    if (loop->tail)
        loop->tail->next = p;
    else
        loop->head = p;
    loop->tail = p;
    pthread_mutex_unlock(&loop->lock);
    uv_async_send(&loop->wake);
    return 0;
}

struct sync_call {
    void (*fn)(void *arg);
    void *arg;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
};

static void run_sync(void *arg)
{
    struct sync_call *c = arg;
    c->fn(c->arg);
    pthread_mutex_lock(&c->lock);
    c->done = true;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

int dk_loop_call(dk_loop *loop, void (*fn)(void *arg), void *arg)
{
    if (dk_loop_on_thread(loop)) {
        fn(arg);
        return 0;
    }
    struct sync_call c = {.fn = fn, .arg = arg};
    pthread_mutex_init(&c.lock, NULL);
    pthread_cond_init(&c.cond, NULL);
    int rc = dk_loop_post(loop, run_sync, &c);
    if (rc == 0) {
        pthread_mutex_lock(&c.lock);
        while (!c.done)
            pthread_cond_wait(&c.cond, &c.lock);
        pthread_mutex_unlock(&c.lock);
    }
    pthread_cond_destroy(&c.cond);
    pthread_mutex_destroy(&c.lock);
    return rc;
}

uv_loop_t *dk_loop_uv(dk_loop *loop) { return &loop->uv; }

bool dk_loop_on_thread(const dk_loop *loop)
{
    return loop->started && pthread_equal(pthread_self(), loop->thread);
}
