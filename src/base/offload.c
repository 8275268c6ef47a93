/* Worker pools and the suspend/resume of request fibers; see offload.h. */
#include "base/offload.h"
#include "base/fiber.h"
#include "base/internal.h"
#include "base/trace.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

struct dk__pool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    dk__waiter *head, *tail;
    bool stopping;
    int n;
    int nice; /* added to the threads' nice value */
    pthread_t *threads;
    char name[12];
};

static _Thread_local dk__waiter *tl_waiter;

dk__waiter *dk__waiter_current(void) { return tl_waiter; }

void dk__waiter_enter(dk__waiter *w) { tl_waiter = w; }

static void *pool_main(void *arg)
{
    dk__pool *p = arg;
    pthread_mutex_lock(&p->lock);
    int index = 0;
    for (int i = 0; i < p->n; i++)
        if (pthread_equal(p->threads[i], pthread_self()))
            index = i;
    pthread_mutex_unlock(&p->lock);
    char name[16];
    snprintf(name, sizeof(name), "%s-%d", p->name, index);
    dk__thread_name(name);
    if (p->nice > 0) /* Linux: per thread; best effort */
        setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), p->nice);
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (p->head == NULL && !p->stopping)
            pthread_cond_wait(&p->cond, &p->lock);
        dk__waiter *w = p->head;
        if (w == NULL)
            break; /* stopping and drained */
        p->head = w->next;
        if (p->head == NULL)
            p->tail = NULL;
        pthread_mutex_unlock(&p->lock);
        dk__trace_enter(w->trace);
        w->rc = w->fn(w->arg);
        dk__trace_enter(NULL);
        w->wake(w); /* w may be resumed (and gone) from here on */
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

dk__pool *dk__pool_new(const char *name, int n, int nice)
{
    dk__pool *p = calloc(1, sizeof(*p));
    if (p == NULL || n < 1)
        goto fail;
    p->threads = calloc((size_t)n, sizeof(*p->threads));
    if (p->threads == NULL)
        goto fail;
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->nice = nice;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    pthread_mutex_lock(&p->lock); /* threads read p->threads/p->n for their names */
    for (int i = 0; i < n; i++) {
        if (pthread_create(&p->threads[i], NULL, pool_main, p) != 0)
            break;
        p->n++;
    }
    pthread_mutex_unlock(&p->lock);
    if (p->n < n) {
        dk__pool_free(p);
        return NULL;
    }
    return p;
fail:
    if (p)
        free(p->threads);
    free(p);
    return NULL;
}

void dk__pool_free(dk__pool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->n; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p->threads);
    free(p);
}

static void pool_submit(dk__pool *p, dk__waiter *w)
{
    w->next = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->tail)
        p->tail->next = w;
    else
        p->head = w;
    p->tail = w;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

void dk__waiter_suspend(dk__waiter *w)
{
    (void)w;
    /* The server clears and restores the current waiter around the switch. */
    dk__fiber_yield();
}

int dk__offload(int which, int (*fn)(void *arg), void *arg)
{
    dk__waiter *w = tl_waiter;
    if (w == NULL || w->pools[which] == NULL)
        return fn(arg);
    w->fn = fn;
    w->arg = arg;
    pool_submit(w->pools[which], w);
    dk__waiter_suspend(w);
    return w->rc;
}
