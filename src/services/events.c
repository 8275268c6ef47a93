/* The event bus: subscriptions grouped by key (exact keys in a hash table,
 * pattern keys in creation order), a ring of history records, synchronous
 * delivery on the emitting thread and asynchronous delivery on a dk_loop.
 *
 * Handlers never run under the bus lock: emit takes a snapshot of the
 * matching subscriptions, each with a reference, and calls them after
 * unlocking. A subscription's user_free runs when its last reference goes. */
#include "donkey/events.h"
#include "donkey/loop.h"
#include "base/internal.h"
#include "base/list.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXACT_BUCKETS 256

struct group;

struct sub {
    dk__lnode node;      /* first: within the group, in subscription order */
    struct group *group; /* NULL once removed from the registry */
    int64_t id;
    dk_event_fn fn;
    void *user;
    dk_free_fn user_free;
    bool once, async;
    atomic_bool cancelled; /* set by off/free: calls not yet started are skipped */
    atomic_int refs;       /* registry + each snapshot holding it */
    char key[];            /* the subscription key, for error reports */
};

struct group {
    dk__lnode node; /* first: pattern list, or exact bucket chain */
    dk__list subs;  /* struct sub, in subscription order */
    bool pattern;
    char key[];
};

struct record {
    char *event;
    json_t *data;
    int64_t wall_ms;
};

struct dk_events {
    pthread_mutex_t lock;
    atomic_int refs; /* the owner + each queued async delivery */
    bool closed;
    dk__list exact[EXACT_BUCKETS]; /* struct group, by bucket_of(key) */
    dk__list patterns;             /* struct group with a `*`, in creation order */
    int64_t next_id;
    size_t nsubs;
    struct record *ring;
    size_t ring_cap, ring_start, ring_len;
    size_t history_limit;
    dk_logger *logger;
    dk_loop *loop;
    dk_events_backend be;
    atomic_uint_fast64_t emitted, handled, failed, async_dropped;
};

/* A growable array of referenced subscriptions. */
struct snap {
    struct sub **v;
    size_t n, cap;
    struct sub *local[16];
};

struct async_task {
    dk_events *ev;
    char *event;
    json_t *data;
    size_t n;
    struct sub *subs[];
};

/* The node is each struct's first member. */
static struct sub *sub_of(dk__lnode *n) { return (struct sub *)(void *)n; }

static struct group *group_of(dk__lnode *n) { return (struct group *)(void *)n; }

static size_t bucket_of(const char *key) { return (size_t)dk__hash_str(key) & (EXACT_BUCKETS - 1); }

static void events_unref(dk_events *ev)
{
    if (atomic_fetch_sub(&ev->refs, 1) != 1)
        return;
    for (size_t i = 0; i < ev->ring_len; i++) {
        struct record *r = &ev->ring[(ev->ring_start + i) % ev->ring_cap];
        free(r->event);
        json_decref(r->data);
    }
    free(ev->ring);
    pthread_mutex_destroy(&ev->lock);
    free(ev);
}

static void sub_unref(struct sub *s)
{
    if (atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    if (s->user_free)
        s->user_free(s->user);
    free(s);
}

/* ------------------------------------------------------------------ */
/* Registry (lock held)                                                */

/* The list a group with this key is (or goes) in. */
static dk__list *groups_for(dk_events *ev, const char *key, bool pattern)
{
    return pattern ? &ev->patterns : &ev->exact[bucket_of(key)];
}

static struct group *group_find(dk_events *ev, const char *key)
{
    dk__list *l = groups_for(ev, key, strchr(key, '*') != NULL);
    for (dk__lnode *n = l->head; n; n = n->next)
        if (strcmp(group_of(n)->key, key) == 0)
            return group_of(n);
    return NULL;
}

static void group_unlink_free(dk_events *ev, struct group *g)
{
    dk__list_unlink(groups_for(ev, g->key, g->pattern), &g->node);
    free(g);
}

/* Takes `s` out of its group (dropping an empty group). The registry's
 * reference is left for the caller to release after unlocking. */
static void sub_detach(dk_events *ev, struct sub *s)
{
    struct group *g = s->group;
    dk__list_unlink(&g->subs, &s->node);
    s->group = NULL;
    ev->nsubs--;
    if (g->subs.head == NULL)
        group_unlink_free(ev, g);
}

static struct sub *sub_in(dk__list *groups, int64_t id)
{
    for (dk__lnode *gn = groups->head; gn; gn = gn->next)
        for (dk__lnode *n = group_of(gn)->subs.head; n; n = n->next)
            if (sub_of(n)->id == id)
                return sub_of(n);
    return NULL;
}

static struct sub *sub_by_id(dk_events *ev, int64_t id)
{
    struct sub *s = NULL;
    for (size_t i = 0; i < EXACT_BUCKETS && s == NULL; i++)
        s = sub_in(&ev->exact[i], id);
    return s != NULL ? s : sub_in(&ev->patterns, id);
}

/* Cancels and detaches `s`, keeping the registry's reference in `removed`
 * (released by release_removed() once the lock is dropped). */
static void sub_remove(dk_events *ev, struct sub *s, dk__list *removed)
{
    atomic_store(&s->cancelled, true);
    sub_detach(ev, s);
    dk__list_push_back(removed, &s->node);
}

/* Outside the lock: user_free may run. */
static void release_removed(dk__list *removed)
{
    while (removed->head != NULL) {
        dk__lnode *n = removed->head;
        dk__list_unlink(removed, n);
        sub_unref(sub_of(n));
    }
}

/* ------------------------------------------------------------------ */
/* Lifecycle                                                           */

void dk_events_options_init(dk_events_options *o)
{
    memset(o, 0, sizeof(*o));
    o->history_size = 1000;
    o->history_limit = 100;
}

dk_events *dk_events_new(const dk_events_options *opts)
{
    dk_events_options defaults;
    if (opts == NULL) {
        dk_events_options_init(&defaults);
        opts = &defaults;
    }
    dk_events *ev = calloc(1, sizeof(*ev));
    if (ev == NULL)
        goto fail;
    if (opts->history_size > 0) {
        ev->ring = calloc(opts->history_size, sizeof(*ev->ring));
        if (ev->ring == NULL)
            goto fail;
        ev->ring_cap = opts->history_size;
    }
    if (pthread_mutex_init(&ev->lock, NULL) != 0)
        goto fail;
    atomic_init(&ev->refs, 1);
    ev->next_id = 1;
    ev->history_limit = opts->history_limit;
    ev->logger = opts->logger;
    ev->loop = opts->loop;
    if (opts->backend)
        ev->be = *opts->backend;
    return ev;

fail:
    if (ev)
        free(ev->ring);
    free(ev);
    if (opts->backend && opts->backend->destroy)
        opts->backend->destroy(opts->backend->user);
    return NULL;
}

void dk_events_free(dk_events *ev)
{
    if (ev == NULL)
        return;
    pthread_mutex_lock(&ev->lock);
    ev->closed = true;
    /* Detach everything; the registry references are released below,
     * outside the lock, because they may run user_free. */
    dk__list removed = {0};
    for (size_t i = 0; i < EXACT_BUCKETS; i++)
        while (ev->exact[i].head)
            sub_remove(ev, sub_of(group_of(ev->exact[i].head)->subs.head), &removed);
    while (ev->patterns.head)
        sub_remove(ev, sub_of(group_of(ev->patterns.head)->subs.head), &removed);
    pthread_mutex_unlock(&ev->lock);
    release_removed(&removed);
    if (ev->be.destroy)
        ev->be.destroy(ev->be.user);
    events_unref(ev);
}

/* ------------------------------------------------------------------ */
/* Subscribing                                                         */

static int64_t subscribe(dk_events *ev, const char *pattern, dk_event_fn fn, void *user,
                         dk_free_fn user_free, bool once, bool async)
{
    int64_t rc;
    struct sub *s = NULL;
    struct group *fresh = NULL;
    if (ev == NULL || pattern == NULL || pattern[0] == '\0' || fn == NULL) {
        rc = DK_EINVAL;
        goto fail;
    }
    if (async && ev->loop == NULL) {
        rc = DK_ESTATE;
        goto fail;
    }
    size_t klen = strlen(pattern);
    s = calloc(1, sizeof(*s) + klen + 1);
    fresh = malloc(sizeof(*fresh) + klen + 1);
    if (s == NULL || fresh == NULL) {
        rc = DK_ENOMEM;
        goto fail;
    }
    memcpy(s->key, pattern, klen + 1);
    s->fn = fn;
    s->user = user;
    s->user_free = user_free;
    s->once = once;
    s->async = async;
    atomic_init(&s->cancelled, false);
    atomic_init(&s->refs, 1);

    pthread_mutex_lock(&ev->lock);
    if (ev->closed) {
        pthread_mutex_unlock(&ev->lock);
        rc = DK_ESTATE;
        goto fail;
    }
    struct group *g = group_find(ev, pattern);
    if (g != NULL && !once) {
        for (dk__lnode *n = g->subs.head; n; n = n->next) {
            struct sub *o = sub_of(n);
            if (!o->once && o->async == async && o->fn == fn && o->user == user) {
                /* Handlers under one key form a set: already there. */
                rc = o->id;
                pthread_mutex_unlock(&ev->lock);
                free(s);
                free(fresh);
                return rc;
            }
        }
    }
    if (g == NULL) {
        g = fresh;
        fresh = NULL;
        memcpy(g->key, pattern, klen + 1);
        g->pattern = strchr(pattern, '*') != NULL;
        g->subs = (dk__list){0};
        dk__list_push_back(groups_for(ev, g->key, g->pattern), &g->node);
    }
    s->id = ev->next_id++;
    s->group = g;
    dk__list_push_back(&g->subs, &s->node);
    ev->nsubs++;
    rc = s->id;
    pthread_mutex_unlock(&ev->lock);
    free(fresh);
    return rc;

fail:
    free(s);
    free(fresh);
    if (user_free)
        user_free(user);
    return rc;
}

int64_t dk_events_on(dk_events *ev, const char *pattern, dk_event_fn fn, void *user,
                     dk_free_fn user_free)
{
    return subscribe(ev, pattern, fn, user, user_free, false, false);
}

int64_t dk_events_once(dk_events *ev, const char *pattern, dk_event_fn fn, void *user,
                       dk_free_fn user_free)
{
    return subscribe(ev, pattern, fn, user, user_free, true, false);
}

int64_t dk_events_on_async(dk_events *ev, const char *pattern, dk_event_fn fn, void *user,
                           dk_free_fn user_free)
{
    return subscribe(ev, pattern, fn, user, user_free, false, true);
}

int64_t dk_events_once_async(dk_events *ev, const char *pattern, dk_event_fn fn, void *user,
                             dk_free_fn user_free)
{
    return subscribe(ev, pattern, fn, user, user_free, true, true);
}

int dk_events_off(dk_events *ev, int64_t id)
{
    if (id <= 0)
        return DK_ENOTFOUND;
    pthread_mutex_lock(&ev->lock);
    struct sub *s = sub_by_id(ev, id);
    if (s != NULL) {
        atomic_store(&s->cancelled, true);
        sub_detach(ev, s);
    }
    pthread_mutex_unlock(&ev->lock);
    if (s == NULL)
        return DK_ENOTFOUND;
    sub_unref(s);
    return 0;
}

int dk_events_off_key(dk_events *ev, const char *pattern, dk_event_fn fn, void *user)
{
    if (pattern == NULL || pattern[0] == '\0')
        return DK_EINVAL;
    dk__list removed = {0};
    int n = 0;
    pthread_mutex_lock(&ev->lock);
    struct group *g = group_find(ev, pattern);
    dk__lnode *node = g ? g->subs.head : NULL;
    while (node) {
        dk__lnode *next = node->next;
        struct sub *s = sub_of(node);
        if (fn == NULL || (s->fn == fn && s->user == user)) {
            sub_remove(ev, s, &removed); /* may free g, but `next` is already read */
            n++;
        }
        node = next;
    }
    pthread_mutex_unlock(&ev->lock);
    release_removed(&removed);
    return n;
}

/* ------------------------------------------------------------------ */
/* Emitting                                                            */

static int snap_push(struct snap *sn, struct sub *s)
{
    if (sn->v == NULL) {
        sn->v = sn->local;
        sn->cap = sizeof(sn->local) / sizeof(sn->local[0]);
    }
    if (sn->n == sn->cap) {
        size_t cap = sn->cap * 2;
        struct sub **v = malloc(cap * sizeof(*v));
        if (v == NULL)
            return DK_ENOMEM;
        memcpy(v, sn->v, sn->n * sizeof(*v));
        if (sn->v != sn->local)
            free(sn->v);
        sn->v = v;
        sn->cap = cap;
    }
    sn->v[sn->n++] = s;
    return 0;
}

static void snap_release(struct snap *sn)
{
    if (sn->v != sn->local)
        free(sn->v);
    sn->v = NULL;
    sn->n = sn->cap = 0;
}

static int collect_group(struct group *g, struct snap *sync, struct snap *async)
{
    for (dk__lnode *n = g->subs.head; n; n = n->next) {
        struct sub *s = sub_of(n);
        int rc = snap_push(s->async ? async : sync, s);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void report_failure(dk_events *ev, const struct sub *s, const char *event, int rc)
{
    const char *key = s->key;
    atomic_fetch_add(&ev->failed, 1);
    if (ev->logger == NULL)
        return;
    char msg[160];
    bool pattern = strchr(key, '*') != NULL;
    snprintf(msg, sizeof(msg),
             pattern ? "Pattern handler error for \"%.100s\"" : "Handler error for \"%.100s\"",
             pattern ? key : event);
    json_t *data =
        json_pack("{s:s, s:s, s:I, s:i, s:s, s:b}", "event", event, "pattern", key, "subscription",
                  (json_int_t)s->id, "code", rc, "error", dk_err_name(rc), "async", s->async);
    dk_log(ev->logger, DK_LOG_ERROR, msg, data);
}

static void call_sub(dk_events *ev, struct sub *s, const char *event, const json_t *data)
{
    int rc = s->fn(event, data, s->user);
    atomic_fetch_add(&ev->handled, 1);
    if (rc < 0)
        report_failure(ev, s, event, rc);
}

static void run_async(void *arg)
{
    struct async_task *t = arg;
    dk_events *ev = t->ev;
    for (size_t i = 0; i < t->n; i++) {
        struct sub *s = t->subs[i];
        pthread_mutex_lock(&ev->lock);
        bool closed = ev->closed;
        pthread_mutex_unlock(&ev->lock);
        /* A once subscription was detached when it was picked, so only an
         * explicit off (or free) sets `cancelled`. */
        if (!closed && !atomic_load(&s->cancelled))
            call_sub(ev, s, t->event, t->data);
        sub_unref(s);
    }
    free(t->event);
    json_decref(t->data);
    free(t);
    events_unref(ev);
}

static struct group *exact_group(dk_events *ev, const char *name)
{
    for (dk__lnode *n = ev->exact[bucket_of(name)].head; n; n = n->next)
        if (strcmp(group_of(n)->key, name) == 0)
            return group_of(n);
    return NULL;
}

/* Queues the asynchronous part of one emit. Takes over the snapshot's
 * references in `subs` and one reference to `data`. */
static void post_async(dk_events *ev, const char *event, json_t *data, struct snap *subs)
{
    struct async_task *t = malloc(sizeof(*t) + subs->n * sizeof(t->subs[0]));
    char *name = dk__strdup(event);
    int rc = DK_ENOMEM;
    if (t != NULL && name != NULL && data != NULL) {
        t->ev = ev;
        t->event = name;
        t->data = data;
        t->n = subs->n;
        memcpy(t->subs, subs->v, subs->n * sizeof(t->subs[0]));
        atomic_fetch_add(&ev->refs, 1);
        rc = dk_loop_post(ev->loop, run_async, t);
        if (rc == 0)
            return;
        atomic_fetch_sub(&ev->refs, 1); /* the owner still holds one */
    }
    atomic_fetch_add(&ev->async_dropped, subs->n);
    if (ev->logger)
        dk_log(ev->logger, DK_LOG_WARN, "Asynchronous event delivery dropped",
               json_pack("{s:s, s:s, s:I}", "event", event, "error", dk_err_name(rc), "handlers",
                         (json_int_t)subs->n));
    for (size_t i = 0; i < subs->n; i++)
        sub_unref(subs->v[i]);
    free(name);
    free(t);
    json_decref(data);
}

static int emit(dk_events *ev, const char *event, const json_t *data, bool remote)
{
    if (ev == NULL || event == NULL || event[0] == '\0')
        return DK_EINVAL;
    if (data == NULL)
        data = json_null();
    json_t *copy = NULL;
    char *name = NULL;
    int64_t wall = dk_wall_ms();
    if (ev->ring_cap > 0) {
        copy = json_deep_copy(data);
        name = dk__strdup(event);
        if (copy == NULL || name == NULL) {
            json_decref(copy);
            free(name);
            return DK_ENOMEM;
        }
    }

    struct snap sync = {0}, async = {0};
    int rc = 0;
    pthread_mutex_lock(&ev->lock);
    if (ev->closed) {
        rc = DK_ESTATE;
    } else {
        struct group *g = exact_group(ev, event);
        if (g != NULL)
            rc = collect_group(g, &sync, &async);
        for (dk__lnode *n = ev->patterns.head; n != NULL && rc == 0; n = n->next)
            if (dk__event_match(group_of(n)->key, event))
                rc = collect_group(group_of(n), &sync, &async);
    }
    if (rc != 0) {
        pthread_mutex_unlock(&ev->lock);
        snap_release(&sync);
        snap_release(&async);
        json_decref(copy);
        free(name);
        return rc;
    }
    /* Commit: nothing below can fail. A once subscription leaves the registry
     * now, and the registry's reference becomes the snapshot's. */
    struct snap *both[2] = {&sync, &async};
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < both[k]->n; i++) {
            struct sub *s = both[k]->v[i];
            if (s->once)
                sub_detach(ev, s);
            else
                atomic_fetch_add(&s->refs, 1);
        }
    }
    if (ev->ring_cap > 0) {
        if (ev->ring_len == ev->ring_cap) {
            struct record *old = &ev->ring[ev->ring_start];
            free(old->event);
            json_decref(old->data);
            ev->ring_start = (ev->ring_start + 1) % ev->ring_cap;
            ev->ring_len--;
        }
        struct record *r = &ev->ring[(ev->ring_start + ev->ring_len) % ev->ring_cap];
        r->event = name;
        r->data = copy;
        copy = NULL;
        r->wall_ms = wall;
        ev->ring_len++;
    }
    pthread_mutex_unlock(&ev->lock);
    atomic_fetch_add(&ev->emitted, 1);

    if (!remote && ev->be.publish) {
        int prc = ev->be.publish(ev->be.user, event, data, wall);
        if (prc < 0 && ev->logger)
            dk_log(ev->logger, DK_LOG_ERROR, "Event publish failed",
                   json_pack("{s:s, s:i, s:s}", "event", event, "code", prc, "error",
                             dk_err_name(prc)));
    }
    if (async.n > 0) {
        /* Its own copy: the service thread releases it, and jansson reference
         * counts must not be shared between threads without a lock. */
        json_t *adata = json_deep_copy(data);
        post_async(ev, event, adata, &async);
    }
    int count = 0;
    for (size_t i = 0; i < sync.n; i++) {
        struct sub *s = sync.v[i];
        /* A handler that ran earlier in this emit may have removed s. */
        if (!atomic_load(&s->cancelled)) {
            call_sub(ev, s, event, data);
            count++;
        }
        sub_unref(s);
    }
    snap_release(&sync);
    snap_release(&async);
    json_decref(copy);
    return count;
}

int dk_events_emit(dk_events *ev, const char *event, const json_t *data)
{
    return emit(ev, event, data, false);
}

int dk_events_deliver_remote(dk_events *ev, const char *event, const json_t *data)
{
    return emit(ev, event, data, true);
}

/* ------------------------------------------------------------------ */
/* History and statistics                                              */

int dk_events_history(dk_events *ev, const char *pattern, int64_t limit, json_t **out)
{
    if (out == NULL)
        return DK_EINVAL;
    *out = NULL;
    size_t lim;
    if (limit == DK_EVENTS_LIMIT_DEFAULT)
        lim = ev->history_limit;
    else if (limit < 0)
        return DK_EINVAL;
    else
        lim = (size_t)limit;
    if (pattern == NULL)
        pattern = "*";
    if (ev->be.history)
        return ev->be.history(ev->be.user, pattern, lim, out);

    bool all = strcmp(pattern, "*") == 0;
    struct record *picked = NULL;
    size_t n = 0;
    int rc = 0;
    pthread_mutex_lock(&ev->lock);
    size_t want = lim < ev->ring_len ? lim : ev->ring_len;
    if (want > 0) {
        picked = malloc(want * sizeof(*picked));
        if (picked == NULL)
            rc = DK_ENOMEM;
    }
    /* Newest first, so the scan stops after `want` matches. */
    for (size_t i = ev->ring_len; rc == 0 && i > 0 && n < want; i--) {
        const struct record *r = &ev->ring[(ev->ring_start + i - 1) % ev->ring_cap];
        bool match = all || dk__event_match(pattern, r->event);
        if (!match)
            continue;
        picked[n].event = dk__strdup(r->event);
        picked[n].data = json_deep_copy(r->data);
        picked[n].wall_ms = r->wall_ms;
        n++;
        if (picked[n - 1].event == NULL || picked[n - 1].data == NULL)
            rc = DK_ENOMEM;
    }
    pthread_mutex_unlock(&ev->lock);

    json_t *arr = rc == 0 ? json_array() : NULL;
    if (rc == 0 && arr == NULL)
        rc = DK_ENOMEM;
    for (size_t i = n; rc == 0 && i > 0; i--) {
        const struct record *r = &picked[i - 1];
        char ts[32];
        dk_iso8601(r->wall_ms, ts, sizeof(ts));
        json_t *rec =
            json_pack("{s:s, s:O, s:s}", "event", r->event, "data", r->data, "timestamp", ts);
        if (rec == NULL || json_array_append_new(arr, rec) != 0)
            rc = DK_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        free(picked[i].event);
        json_decref(picked[i].data);
    }
    free(picked);
    if (rc != 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

void dk_events_stats_get(dk_events *ev, dk_events_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&ev->lock);
    out->subscriptions = ev->nsubs;
    out->history = ev->ring_len;
    pthread_mutex_unlock(&ev->lock);
    out->emitted = atomic_load(&ev->emitted);
    out->handled = atomic_load(&ev->handled);
    out->failed = atomic_load(&ev->failed);
    out->async_dropped = atomic_load(&ev->async_dropped);
}
