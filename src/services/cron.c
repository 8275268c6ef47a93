/* The cron scheduler: a task list under one mutex, one uv timer on the service
 * loop armed for the earliest due task, and task bodies on libuv's worker pool.
 *
 * Each task remembers the occurrence it is waiting for (next_run). When the
 * timer fires, every task whose occurrence is due runs once and its next
 * occurrence is computed strictly after "now", so an occurrence never runs
 * twice and a late timer catches up with one run, not many. A timer that fires
 * early finds nothing due and is simply re-armed. */
#include <uv.h>

#include "donkey/cron.h"
#include "donkey/loop.h"
#include "base/trace.h"
#include "base/offload.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Longest single timer wait, so wall-clock changes are noticed within a minute. */
#define MAX_TIMER_MS 60000

struct task {
    struct task *next;
    char id[DK_CRON_ID_SIZE];
    char *name, *expr_text, *tz;
    dk_cron_expr *expr;
    dk_cron_fn fn;
    void *user;
    dk_free_fn user_free;
    bool enabled;
    bool running;               /* a run is queued or executing */
    bool removed;               /* unscheduled while running: freed when the run ends */
    int64_t last_run, next_run; /* epoch ms, -1 = none */
    int64_t last_duration_ms;   /* of the last finished run, -1 = none */
    int last_result;            /* its return value */
    uint64_t runs, failures, skipped;
};

struct waiter {
    bool done;
    int result;
};

struct run {
    uv_work_t work;
    dk_cron *cron;
    struct task *task;
    int64_t occurrence; /* scheduled time, 0 for a manual trigger */
    int64_t started;
    int result;
    bool not_claimed;
    struct waiter *waiter;
    struct run *next;
};

struct dk_cron {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* signalled when a run ends */
    dk_loop *loop;
    dk_logger *logger;
    char *tz;
    int64_t (*clock)(void *user);
    void *clock_user;
    dk_cron_backend be;
    struct task *head, *tail;
    uint64_t seq;
    bool started;
    int running;
    uv_timer_t *timer; /* service thread only */
};

/* ------------------------------------------------------------------ */
/* In-memory backend: remembers the last occurrence claimed per task name. */

struct claim {
    struct claim *next;
    int64_t at;
    char name[];
};

struct mem {
    pthread_mutex_t lock;
    struct claim *head;
};

static int mem_claim(void *user, const char *name, int64_t at_ms)
{
    struct mem *m = user;
    int rc = 1;
    pthread_mutex_lock(&m->lock);
    struct claim *c = m->head;
    while (c && strcmp(c->name, name) != 0)
        c = c->next;
    if (c == NULL) {
        size_t n = strlen(name);
        c = malloc(sizeof(*c) + n + 1);
        if (c != NULL) {
            memcpy(c->name, name, n + 1);
            c->at = at_ms;
            c->next = m->head;
            m->head = c;
        }
    } else if (at_ms <= c->at) {
        rc = 0;
    } else {
        c->at = at_ms;
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static void mem_destroy(void *user)
{
    struct mem *m = user;
    while (m->head) {
        struct claim *c = m->head;
        m->head = c->next;
        free(c);
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

static int64_t now_ms(const dk_cron *cron)
{
    return cron->clock ? cron->clock(cron->clock_user) : dk_wall_ms();
}

static void log_task(dk_logger *lg, dk_log_level level, const char *id, const char *name,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void log_task(dk_logger *lg, dk_log_level level, const char *id, const char *name,
                     const char *fmt, ...)
{
    if (lg == NULL || !dk_logger_enabled(lg, level))
        return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    dk_log(lg, level, msg, json_pack("{s:s, s:s}", "task", name, "id", id));
}

static struct task *find(dk_cron *cron, const char *id)
{
    for (struct task *t = cron->head; t && id; t = t->next)
        if (strcmp(t->id, id) == 0)
            return t;
    return NULL;
}

static void unlink_task(dk_cron *cron, struct task *t)
{
    struct task **pp = &cron->head, *prev = NULL;
    while (*pp != t) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    *pp = t->next;
    if (cron->tail == t)
        cron->tail = prev;
    t->next = NULL;
}

static void task_free(struct task *t)
{
    if (t->user_free)
        t->user_free(t->user);
    dk_cron_expr_free(t->expr);
    free(t->name);
    free(t->expr_text);
    free(t->tz);
    free(t);
}

/* Next occurrence after `after`, or -1 when there is none. Lock held. */
static int64_t next_after(const struct task *t, int64_t after)
{
    int64_t out;
    return dk_cron_expr_next(t->expr, t->tz, after < 0 ? 0 : after, &out, NULL) == 0 ? out : -1;
}

/* ------------------------------------------------------------------ */
/* Runs                                                                */

static void work_cb(uv_work_t *w)
{
    struct run *r = w->data;
    struct task *t = r->task;
    dk_cron *cron = r->cron;
    if (r->occurrence > 0 && cron->be.claim != NULL &&
        cron->be.claim(cron->be.user, t->name, r->occurrence) == 0) {
        r->not_claimed = true;
        return;
    }
    /* Each run is a trace of its own (ids made only if a log line needs them). */
    dk__trace trace;
    dk__trace_defer(&trace, NULL, NULL);
    const dk__trace *prev = dk__trace_enter(&trace);
    r->result = t->fn(t->name, t->user);
    dk__trace_enter(prev);
    if (cron->be.record != NULL)
        cron->be.record(cron->be.user, t->name, r->started, now_ms(cron), r->result);
}

static void after_work_cb(uv_work_t *w, int status)
{
    struct run *r = w->data;
    dk_cron *cron = r->cron;
    struct task *t = r->task;
    if (status != 0)
        r->result = DK_ESTATE; /* cancelled before it ran */
    dk_logger *lg = cron->logger;
    char id[DK_CRON_ID_SIZE], name[128];
    snprintf(id, sizeof(id), "%s", t->id);
    snprintf(name, sizeof(name), "%s", t->name);

    pthread_mutex_lock(&cron->lock);
    t->running = false;
    if (!r->not_claimed) {
        int64_t end = now_ms(cron);
        t->last_duration_ms = end > r->started ? end - r->started : 0;
        t->last_result = r->result;
        t->runs++;
        if (r->result < 0)
            t->failures++;
    }
    bool removed = t->removed;
    if (r->waiter) {
        r->waiter->done = true;
        r->waiter->result = r->result;
    }
    cron->running--;
    pthread_cond_broadcast(&cron->cond);
    pthread_mutex_unlock(&cron->lock);
    /* From here on the scheduler may be gone; only copies and the task are used. */

    if (r->result < 0)
        log_task(lg, DK_LOG_ERROR, id, name, "cron task '%s' failed: %s", name,
                 dk_strerror(r->result));
    if (removed)
        task_free(t);
    free(r);
}

static void queue_runs(dk_cron *cron, struct run *list)
{
    while (list) {
        struct run *r = list;
        list = r->next;
        r->work.data = r;
        if (uv_queue_work(dk_loop_uv(cron->loop), &r->work, work_cb, after_work_cb) != 0)
            after_work_cb(&r->work, UV_ECANCELED);
    }
}

/* Marks `t` running and prepares a run. Lock held. NULL when out of memory. */
static struct run *begin_run(dk_cron *cron, struct task *t, int64_t occurrence, int64_t now)
{
    struct run *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->cron = cron;
    r->task = t;
    r->occurrence = occurrence;
    r->started = now;
    t->running = true;
    t->last_run = now;
    cron->running++;
    return r;
}

/* ------------------------------------------------------------------ */
/* Timer (service thread)                                              */

static void on_timer(uv_timer_t *h);

static void arm(dk_cron *cron)
{
    if (cron->timer == NULL)
        return;
    pthread_mutex_lock(&cron->lock);
    int64_t earliest = -1;
    if (cron->started)
        for (struct task *t = cron->head; t; t = t->next)
            if (t->enabled && t->next_run >= 0 && (earliest < 0 || t->next_run < earliest))
                earliest = t->next_run;
    int64_t now = now_ms(cron);
    pthread_mutex_unlock(&cron->lock);
    if (earliest < 0) {
        uv_timer_stop(cron->timer);
        return;
    }
    int64_t delay = earliest - now;
    if (delay < 0)
        delay = 0;
    if (delay > MAX_TIMER_MS)
        delay = MAX_TIMER_MS;
    uv_update_time(dk_loop_uv(cron->loop));
    uv_timer_start(cron->timer, on_timer, (uint64_t)delay, 0);
}

struct skip_note {
    char id[DK_CRON_ID_SIZE];
    char name[128];
};

static void on_timer(uv_timer_t *h)
{
    dk_cron *cron = h->data;
    struct run *runs = NULL;
    struct skip_note skips[8];
    size_t nskips = 0;

    pthread_mutex_lock(&cron->lock);
    int64_t now = now_ms(cron);
    for (struct task *t = cron->head; cron->started && t; t = t->next) {
        if (!t->enabled || t->next_run < 0 || t->next_run > now)
            continue;
        int64_t occurrence = t->next_run;
        t->next_run = next_after(t, now);
        if (t->running) {
            t->skipped++;
            if (nskips < sizeof(skips) / sizeof(skips[0])) {
                snprintf(skips[nskips].id, sizeof(skips[nskips].id), "%s", t->id);
                snprintf(skips[nskips].name, sizeof(skips[nskips].name), "%s", t->name);
                nskips++;
            }
            continue;
        }
        struct run *r = begin_run(cron, t, occurrence, now);
        if (r != NULL) {
            r->next = runs;
            runs = r;
        }
    }
    dk_logger *lg = cron->logger;
    pthread_mutex_unlock(&cron->lock);

    for (size_t i = 0; i < nskips; i++)
        log_task(lg, DK_LOG_WARN, skips[i].id, skips[i].name,
                 "cron task '%s' skipped: previous run still running", skips[i].name);
    queue_runs(cron, runs);
    arm(cron);
}

static void arm_cb(void *arg)
{
    dk_cron *cron = arg;
    if (cron->timer == NULL) {
        cron->timer = malloc(sizeof(*cron->timer));
        if (cron->timer == NULL)
            return;
        uv_timer_init(dk_loop_uv(cron->loop), cron->timer);
        cron->timer->data = cron;
    }
    arm(cron);
}

static void stop_cb(void *arg)
{
    dk_cron *cron = arg;
    if (cron->timer)
        uv_timer_stop(cron->timer);
}

static void free_handle(uv_handle_t *h) { free(h); }

static void close_cb(void *arg)
{
    dk_cron *cron = arg;
    if (cron->timer)
        uv_close((uv_handle_t *)cron->timer, free_handle);
    cron->timer = NULL;
}

static void post_run_cb(void *arg)
{
    struct run *r = arg;
    queue_runs(r->cron, r);
}

/* Re-arms after a change; only when started (a stopped scheduler has no timer running). */
static void rearm(dk_cron *cron, bool started)
{
    if (started)
        dk_loop_post(cron->loop, arm_cb, cron);
}

/* ------------------------------------------------------------------ */
/* Public API                                                          */

void dk_cron_options_init(dk_cron_options *o)
{
    memset(o, 0, sizeof(*o));
    o->timezone = "UTC";
}

void dk_cron_task_options_init(dk_cron_task_options *o)
{
    memset(o, 0, sizeof(*o));
    o->enabled = true;
}

dk_cron *dk_cron_new_with_backend(const dk_cron_options *opts, const dk_cron_backend *backend)
{
    dk_cron *cron = NULL;
    const char *tz = opts && opts->timezone ? opts->timezone : "UTC";
    if (opts == NULL || opts->loop == NULL || !dk_cron_tz_valid(tz))
        goto fail;
    cron = calloc(1, sizeof(*cron));
    if (cron == NULL)
        goto fail;
    cron->tz = strdup(tz);
    if (cron->tz == NULL)
        goto fail;
    cron->loop = opts->loop;
    cron->logger = opts->logger;
    cron->clock = opts->clock;
    cron->clock_user = opts->clock_user;
    if (backend)
        cron->be = *backend;
    pthread_mutex_init(&cron->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&cron->cond, &ca);
    pthread_condattr_destroy(&ca);
    return cron;

fail:
    if (cron)
        free(cron->tz);
    free(cron);
    if (backend && backend->destroy)
        backend->destroy(backend->user);
    return NULL;
}

dk_cron *dk_cron_new(const dk_cron_options *opts)
{
    struct mem *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    pthread_mutex_init(&m->lock, NULL);
    dk_cron_backend be = {.claim = mem_claim, .destroy = mem_destroy, .user = m};
    return dk_cron_new_with_backend(opts, &be);
}

/* Waits until no run is in flight or `deadline` (monotonic ms, 0 = none) passes. Lock held. */
static bool wait_idle(dk_cron *cron, uint64_t deadline)
{
    while (cron->running > 0) {
        if (deadline == 0) {
            pthread_cond_wait(&cron->cond, &cron->lock);
            continue;
        }
        uint64_t now = dk_now_ms();
        if (now >= deadline)
            return false;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t wait = deadline - now;
        ts.tv_sec += (time_t)(wait / 1000);
        ts.tv_nsec += (long)(wait % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&cron->cond, &cron->lock, &ts);
    }
    return true;
}

int dk_cron_stop(dk_cron *cron, uint64_t timeout_ms)
{
    pthread_mutex_lock(&cron->lock);
    cron->started = false;
    pthread_mutex_unlock(&cron->lock);
    dk_loop_call(cron->loop, stop_cb, cron);
    pthread_mutex_lock(&cron->lock);
    bool idle = wait_idle(cron, dk_now_ms() + timeout_ms + (timeout_ms == 0));
    pthread_mutex_unlock(&cron->lock);
    return idle ? 0 : DK_EBUSY;
}

void dk_cron_free(dk_cron *cron)
{
    if (cron == NULL)
        return;
    pthread_mutex_lock(&cron->lock);
    cron->started = false;
    wait_idle(cron, 0);
    pthread_mutex_unlock(&cron->lock);
    /* Runs after every call posted before it, so no queued arm_cb can outlive us. */
    dk_loop_call(cron->loop, close_cb, cron);
    struct task *t = cron->head;
    while (t) {
        struct task *next = t->next;
        task_free(t);
        t = next;
    }
    if (cron->be.destroy)
        cron->be.destroy(cron->be.user);
    pthread_cond_destroy(&cron->cond);
    pthread_mutex_destroy(&cron->lock);
    free(cron->tz);
    free(cron);
}

int dk_cron_schedule(dk_cron *cron, const char *name, const char *expr, dk_cron_fn fn, void *user,
                     dk_free_fn user_free, const dk_cron_task_options *opts, char *out_id,
                     dk_err *err)
{
    dk_cron_task_options o;
    if (opts)
        o = *opts;
    else
        dk_cron_task_options_init(&o);
    struct task *t = NULL;
    int rc;
    if (fn == NULL) {
        rc = dk_err_set(err, DK_EINVAL, "cron task needs a function");
        goto fail;
    }
    const char *tz = o.timezone ? o.timezone : cron->tz;
    if (!dk_cron_tz_valid(tz)) {
        rc = dk_err_set(err, DK_EINVAL, "unknown time zone '%s'", tz);
        goto fail;
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        rc = dk_err_set(err, DK_ENOMEM, "out of memory");
        goto fail;
    }
    rc = dk_cron_expr_parse(expr, o.flags, &t->expr, err);
    if (rc < 0)
        goto fail;
    t->expr_text = strdup(expr);
    t->tz = strdup(tz);
    if (t->expr_text == NULL || t->tz == NULL) {
        rc = dk_err_set(err, DK_ENOMEM, "out of memory");
        goto fail;
    }
    t->fn = fn;
    t->enabled = o.enabled;
    t->last_run = -1;
    t->last_duration_ms = -1;
    int64_t now = now_ms(cron);

    pthread_mutex_lock(&cron->lock);
    snprintf(t->id, sizeof(t->id), "cron_%llu_%lld", (unsigned long long)++cron->seq,
             (long long)now);
    t->name = strdup(name && *name ? name : t->id);
    if (t->name == NULL) {
        pthread_mutex_unlock(&cron->lock);
        rc = dk_err_set(err, DK_ENOMEM, "out of memory");
        goto fail;
    }
    t->next_run = t->enabled ? next_after(t, now) : -1;
    if (cron->tail)
        cron->tail->next = t;
    else
        cron->head = t;
    cron->tail = t;
    t->user = user;
    t->user_free = user_free;
    if (out_id)
        memcpy(out_id, t->id, DK_CRON_ID_SIZE);
    bool started = cron->started;
    pthread_mutex_unlock(&cron->lock);
    rearm(cron, started);
    return 0;

fail:
    if (t) {
        t->user_free = NULL;
        task_free(t);
    }
    if (user_free)
        user_free(user);
    return rc;
}

int dk_cron_unschedule(dk_cron *cron, const char *id)
{
    pthread_mutex_lock(&cron->lock);
    struct task *t = find(cron, id);
    if (t == NULL) {
        pthread_mutex_unlock(&cron->lock);
        return DK_ENOTFOUND;
    }
    unlink_task(cron, t);
    bool running = t->running;
    if (running)
        t->removed = true;
    pthread_mutex_unlock(&cron->lock);
    if (!running)
        task_free(t);
    return 0;
}

int dk_cron_pause(dk_cron *cron, const char *id)
{
    pthread_mutex_lock(&cron->lock);
    struct task *t = find(cron, id);
    if (t) {
        t->enabled = false;
        t->next_run = -1;
    }
    pthread_mutex_unlock(&cron->lock);
    return t ? 0 : DK_ENOTFOUND;
}

int dk_cron_resume(dk_cron *cron, const char *id)
{
    pthread_mutex_lock(&cron->lock);
    struct task *t = find(cron, id);
    bool started = cron->started;
    if (t) {
        t->enabled = true;
        t->next_run = next_after(t, now_ms(cron));
    }
    pthread_mutex_unlock(&cron->lock);
    if (t == NULL)
        return DK_ENOTFOUND;
    rearm(cron, started);
    return 0;
}

static int cron_trigger(dk_cron *cron, const char *id, int *out_result)
{
    if (out_result && dk_loop_on_thread(cron->loop))
        return DK_ESTATE;
    struct waiter w = {0};
    pthread_mutex_lock(&cron->lock);
    struct task *t = find(cron, id);
    if (t == NULL || t->running) {
        pthread_mutex_unlock(&cron->lock);
        return t ? DK_EBUSY : DK_ENOTFOUND;
    }
    struct run *r = begin_run(cron, t, 0, now_ms(cron));
    if (r == NULL) {
        pthread_mutex_unlock(&cron->lock);
        return DK_ENOMEM;
    }
    r->waiter = out_result ? &w : NULL;
    pthread_mutex_unlock(&cron->lock);

    int rc = dk_loop_post(cron->loop, post_run_cb, r);
    if (rc < 0) {
        pthread_mutex_lock(&cron->lock);
        t->running = false;
        cron->running--;
        pthread_cond_broadcast(&cron->cond);
        pthread_mutex_unlock(&cron->lock);
        free(r);
        return rc;
    }
    if (out_result) {
        pthread_mutex_lock(&cron->lock);
        while (!w.done)
            pthread_cond_wait(&cron->cond, &cron->lock);
        pthread_mutex_unlock(&cron->lock);
        *out_result = w.result;
    }
    return 0;
}

/* Waiting for the body: from a request handler the wait happens on a worker
 * thread (src/base/offload.h), so the HTTP thread goes on serving. */
typedef struct trigger_call {
    dk_cron *cron;
    const char *id;
    int *out_result;
} trigger_call;

static int trigger_run(void *arg)
{
    trigger_call *c = arg;
    return cron_trigger(c->cron, c->id, c->out_result);
}

int dk_cron_trigger(dk_cron *cron, const char *id, int *out_result)
{
    if (out_result == NULL)
        return cron_trigger(cron, id, NULL);
    trigger_call c = {cron, id, out_result};
    return dk__offload(DK__POOL_WORK, trigger_run, &c);
}

static json_t *time_json(int64_t ms)
{
    char buf[32];
    return ms < 0 ? json_null() : json_string(dk_iso8601(ms, buf, sizeof(buf)));
}

/* Lock held. */
static json_t *task_json(const struct task *t)
{
    bool done = t->last_duration_ms >= 0;
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:b, s:b, s:o, s:o, s:I, s:I, s:I, s:o, s:o}", "id", t->id, "name",
        t->name, "expression", t->expr_text, "timezone", t->tz, "enabled", t->enabled, "running",
        t->running, "lastRun", time_json(t->last_run), "nextRun", time_json(t->next_run), "runs",
        (json_int_t)t->runs, "failures", (json_int_t)t->failures, "skipped", (json_int_t)t->skipped,
        "lastDurationMs", done ? json_integer(t->last_duration_ms) : json_null(), "lastResult",
        done ? json_integer(t->last_result) : json_null());
}

json_t *dk_cron_list(dk_cron *cron)
{
    json_t *arr = json_array();
    if (arr == NULL)
        return NULL;
    pthread_mutex_lock(&cron->lock);
    for (struct task *t = cron->head; t; t = t->next) {
        if (json_array_append_new(arr, task_json(t)) != 0) {
            pthread_mutex_unlock(&cron->lock);
            json_decref(arr);
            return NULL;
        }
    }
    pthread_mutex_unlock(&cron->lock);
    return arr;
}

json_t *dk_cron_get(dk_cron *cron, const char *id)
{
    pthread_mutex_lock(&cron->lock);
    struct task *t = find(cron, id);
    json_t *j = t ? task_json(t) : NULL;
    pthread_mutex_unlock(&cron->lock);
    return j;
}

int dk_cron_start(dk_cron *cron)
{
    pthread_mutex_lock(&cron->lock);
    if (cron->started) {
        pthread_mutex_unlock(&cron->lock);
        return 0;
    }
    cron->started = true;
    int64_t now = now_ms(cron);
    for (struct task *t = cron->head; t; t = t->next)
        if (t->enabled)
            t->next_run = next_after(t, now);
    pthread_mutex_unlock(&cron->lock);
    int rc = dk_loop_call(cron->loop, arm_cb, cron);
    if (rc < 0) {
        pthread_mutex_lock(&cron->lock);
        cron->started = false;
        pthread_mutex_unlock(&cron->lock);
    }
    return rc;
}
