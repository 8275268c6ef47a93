/* The rate limiter facade (argument checks, clocks, periodic sweep) and the
 * built-in in-memory backend (chained hash map plus an LRU list that bounds
 * the number of keys). */
#include "donkey/ratelimit.h"
#include "base/internal.h"
#include "base/htab.h"
#include "base/list.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_BUCKETS 64

/* ------------------------------------------------------------------ */
/* In-memory backend                                                   */

struct window {
    dk__hnode node; /* first: in the table, by key */
    dk__lnode lru;  /* LRU order: head = most recently used */
    dk_ratelimit_algorithm algorithm;
    uint64_t start;      /* monotonic ms the current window began */
    uint64_t length;     /* window length fixed by the call that opened it */
    uint64_t count;      /* calls counted in the current window */
    uint64_t prev_count; /* sliding: calls counted in the previous window */
    char key[];
};

struct mem {
    pthread_mutex_t lock;
    dk__htab tab; /* struct window by key */
    size_t max_keys;
    dk__list lru;
};

/* A window stops mattering when nothing it counted can influence a decision. */
static bool window_expired(const struct window *w, uint64_t now)
{
    uint64_t span = w->algorithm == DK_RATELIMIT_SLIDING ? 2 * w->length : w->length;
    return now >= w->start + span;
}

#define WINDOW_OF(node) DK__CONTAINER_OF(node, struct window, lru)

static void lru_unlink(struct mem *m, struct window *w) { dk__list_unlink(&m->lru, &w->lru); }

static void lru_push_front(struct mem *m, struct window *w)
{
    dk__list_push_front(&m->lru, &w->lru);
}

static void mem_remove(struct mem *m, struct window *w)
{
    dk__htab_remove(&m->tab, &w->node);
    lru_unlink(m, w);
    free(w);
}

static struct window *mem_find(struct mem *m, const char *key, uint64_t h)
{
    for (dk__hnode *n = *dk__htab_chain(&m->tab, h); n; n = n->next) {
        struct window *w = (struct window *)n;
        if (n->hash == h && strcmp(w->key, key) == 0)
            return w;
    }
    return NULL;
}

static int sweep_locked(struct mem *m, uint64_t now)
{
    int removed = 0;
    for (size_t i = 0; i < dk__htab_nbuckets(&m->tab); i++) {
        dk__hnode **pp = dk__htab_bucket(&m->tab, i);
        while (*pp) {
            struct window *w = (struct window *)*pp;
            if (window_expired(w, now)) {
                dk__htab_unlink(&m->tab, pp);
                lru_unlink(m, w);
                free(w);
                removed++;
            } else {
                pp = &(*pp)->next;
            }
        }
    }
    return removed;
}

/* Smallest elapsed time e in [0, W] at which prev * (W - e) + (cur + 1) * W <= L * W,
 * for prev > 0 and L > cur. All products stay below 2^64 thanks to the maxima. */
static uint64_t sliding_need(uint64_t prev, uint64_t cur, uint64_t limit, uint64_t w)
{
    uint64_t room = (limit - cur - 1) * w / prev; /* largest allowed W - e */
    return room >= w ? 0 : w - room;
}

static void decide_sliding(struct window *w, uint64_t limit, uint64_t now, dk_ratelimit_hit *out)
{
    uint64_t len = w->length;
    if (now >= w->start + 2 * len) {
        w->prev_count = 0;
        w->count = 0;
        w->start = now;
    } else if (now >= w->start + len) {
        w->prev_count = w->count;
        w->count = 0;
        w->start += len;
    }
    uint64_t elapsed = now - w->start;
    uint64_t weighted = w->prev_count * (len - elapsed); /* previous window's share, times len */
    uint64_t budget = limit * len;
    out->reset_in_ms = w->start + len - now;
    if (weighted + (w->count + 1) * len <= budget) {
        w->count++;
        out->allowed = true;
        out->remaining = (budget - weighted - w->count * len) / len;
        out->retry_in_ms = 0;
        return;
    }
    out->allowed = false;
    out->remaining = 0;
    if (limit == 0) {
        out->retry_in_ms = out->reset_in_ms;
    } else if (w->count < limit) {
        /* Within this window, once enough of the previous window has slid out. */
        out->retry_in_ms = sliding_need(w->prev_count, w->count, limit, len) - elapsed;
    } else {
        /* In the next window the current count becomes the previous one. */
        uint64_t e = w->count == 0 ? 0 : sliding_need(w->count, 0, limit, len);
        out->retry_in_ms = out->reset_in_ms + e;
    }
    if (out->retry_in_ms == 0)
        out->retry_in_ms = 1;
}

static void decide_fixed(struct window *w, uint64_t limit, uint64_t now, dk_ratelimit_hit *out)
{
    if (now >= w->start + w->length) {
        w->start = now;
        w->count = 0;
    }
    w->count++; /* blocked calls count too, as in the original */
    out->allowed = w->count <= limit;
    out->remaining = w->count >= limit ? 0 : limit - w->count;
    out->reset_in_ms = w->start + w->length - now;
    out->retry_in_ms = out->allowed ? 0 : out->reset_in_ms;
}

static int mem_hit(void *user, const char *key, uint64_t limit, uint64_t window_ms,
                   dk_ratelimit_algorithm algorithm, uint64_t now, dk_ratelimit_hit *out)
{
    struct mem *m = user;
    uint64_t h = dk__hash_str(key);
    pthread_mutex_lock(&m->lock);
    struct window *w = mem_find(m, key, h);
    if (w != NULL && (w->algorithm != algorithm || window_expired(w, now))) {
        mem_remove(m, w);
        w = NULL;
    }
    if (w == NULL) {
        if (m->tab.count >= m->max_keys) {
            sweep_locked(m, now);
            /* Still full: evict the least recently used key rather than refuse service. */
            while (m->tab.count >= m->max_keys && m->lru.tail)
                mem_remove(m, WINDOW_OF(m->lru.tail));
        }
        size_t klen = strlen(key);
        w = malloc(sizeof(*w) + klen + 1);
        if (w == NULL) {
            pthread_mutex_unlock(&m->lock);
            return DK_ENOMEM;
        }
        memset(w, 0, sizeof(*w));
        memcpy(w->key, key, klen + 1);
        w->algorithm = algorithm;
        w->start = now;
        w->length = window_ms;
        dk__htab_add(&m->tab, &w->node, h);
    } else {
        lru_unlink(m, w);
    }
    lru_push_front(m, w);
    if (algorithm == DK_RATELIMIT_SLIDING)
        decide_sliding(w, limit, now, out);
    else
        decide_fixed(w, limit, now, out);
    pthread_mutex_unlock(&m->lock);
    return 0;
}

static int mem_reset(void *user, const char *key)
{
    struct mem *m = user;
    pthread_mutex_lock(&m->lock);
    struct window *w = mem_find(m, key, dk__hash_str(key));
    if (w)
        mem_remove(m, w);
    pthread_mutex_unlock(&m->lock);
    return w ? 0 : DK_ENOTFOUND;
}

static int mem_sweep(void *user, uint64_t now)
{
    struct mem *m = user;
    pthread_mutex_lock(&m->lock);
    int n = sweep_locked(m, now);
    pthread_mutex_unlock(&m->lock);
    return n;
}

static size_t mem_size(void *user)
{
    struct mem *m = user;
    pthread_mutex_lock(&m->lock);
    size_t n = m->tab.count;
    pthread_mutex_unlock(&m->lock);
    return n;
}

static void mem_destroy(void *user)
{
    struct mem *m = user;
    dk__lnode *n = m->lru.head;
    while (n) {
        dk__lnode *next = n->next;
        free(WINDOW_OF(n));
        n = next;
    }
    dk__htab_free(&m->tab);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static struct mem *mem_new(size_t max_keys)
{
    struct mem *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    if (dk__htab_init(&m->tab, MIN_BUCKETS) < 0) {
        free(m);
        return NULL;
    }
    pthread_mutex_init(&m->lock, NULL);
    m->max_keys = max_keys;
    return m;
}

/* ------------------------------------------------------------------ */
/* Facade                                                              */

struct dk_ratelimit {
    dk_ratelimit_backend be;
    dk_ratelimit_options opts;
    pthread_mutex_t sweep_lock;
    uint64_t next_sweep;
};

void dk_ratelimit_options_init(dk_ratelimit_options *o)
{
    memset(o, 0, sizeof(*o));
    o->algorithm = DK_RATELIMIT_SLIDING;
    o->max_keys = 100000;
    o->max_key_len = 512;
    o->sweep_interval_ms = 10000;
}

static uint64_t mono_now(const dk_ratelimit *rl)
{
    return rl->opts.clock ? rl->opts.clock(rl->opts.clock_user) : dk_now_ms();
}

static int64_t wall_now(const dk_ratelimit *rl)
{
    return rl->opts.wall_clock ? rl->opts.wall_clock(rl->opts.clock_user) : dk_wall_ms();
}

dk_ratelimit *dk_ratelimit_new_with_backend(const dk_ratelimit_options *opts,
                                            const dk_ratelimit_backend *backend)
{
    dk_ratelimit_options o;
    if (opts)
        o = *opts;
    else
        dk_ratelimit_options_init(&o);
    bool ok = backend && backend->hit && backend->reset &&
              (o.algorithm == DK_RATELIMIT_SLIDING || o.algorithm == DK_RATELIMIT_FIXED);
    dk_ratelimit *rl = ok ? calloc(1, sizeof(*rl)) : NULL;
    if (rl == NULL) {
        if (backend && backend->destroy)
            backend->destroy(backend->user);
        return NULL;
    }
    rl->be = *backend;
    rl->opts = o;
    pthread_mutex_init(&rl->sweep_lock, NULL);
    rl->next_sweep = mono_now(rl) + o.sweep_interval_ms;
    return rl;
}

dk_ratelimit *dk_ratelimit_new(const dk_ratelimit_options *opts)
{
    dk_ratelimit_options o;
    if (opts)
        o = *opts;
    else
        dk_ratelimit_options_init(&o);
    if (o.max_keys == 0)
        return NULL;
    struct mem *m = mem_new(o.max_keys);
    if (m == NULL)
        return NULL;
    dk_ratelimit_backend be = {
        .hit = mem_hit,
        .reset = mem_reset,
        .sweep = mem_sweep,
        .size = mem_size,
        .destroy = mem_destroy,
        .user = m,
    };
    return dk_ratelimit_new_with_backend(&o, &be);
}

void dk_ratelimit_free(dk_ratelimit *rl)
{
    if (rl == NULL)
        return;
    if (rl->be.destroy)
        rl->be.destroy(rl->be.user);
    pthread_mutex_destroy(&rl->sweep_lock);
    free(rl);
}

dk_ratelimit_algorithm dk_ratelimit_default_algorithm(const dk_ratelimit *rl)
{
    return rl->opts.algorithm;
}

static int check_key(const dk_ratelimit *rl, const char *key)
{
    if (key == NULL || *key == '\0')
        return DK_EINVAL;
    if (strnlen(key, rl->opts.max_key_len + 1) > rl->opts.max_key_len)
        return DK_ELIMIT;
    return 0;
}

/* Sweeps at most once per interval; a thread finding the sweep busy skips it. */
static void maybe_sweep(dk_ratelimit *rl, uint64_t now)
{
    if (rl->be.sweep == NULL || pthread_mutex_trylock(&rl->sweep_lock) != 0)
        return;
    bool due = now >= rl->next_sweep;
    if (due)
        rl->next_sweep = now + rl->opts.sweep_interval_ms;
    pthread_mutex_unlock(&rl->sweep_lock);
    if (due)
        rl->be.sweep(rl->be.user, now);
}

int dk_ratelimit_check_with(dk_ratelimit *rl, const char *key, uint64_t limit, uint64_t window_ms,
                            dk_ratelimit_algorithm algorithm, dk_ratelimit_result *out)
{
    memset(out, 0, sizeof(*out));
    int rc = check_key(rl, key);
    if (rc < 0)
        return rc;
    if (window_ms == 0 || window_ms > DK_RATELIMIT_MAX_WINDOW_MS ||
        limit > DK_RATELIMIT_MAX_LIMIT ||
        (algorithm != DK_RATELIMIT_SLIDING && algorithm != DK_RATELIMIT_FIXED))
        return DK_EINVAL;
    uint64_t now = mono_now(rl);
    maybe_sweep(rl, now);
    dk_ratelimit_hit hit = {0};
    rc = rl->be.hit(rl->be.user, key, limit, window_ms, algorithm, now, &hit);
    if (rc < 0)
        return rc;
    out->allowed = hit.allowed;
    out->remaining = hit.remaining;
    out->limit = limit;
    out->reset_ms = wall_now(rl) + (int64_t)hit.reset_in_ms;
    if (!hit.allowed) {
        uint64_t ms = hit.retry_in_ms ? hit.retry_in_ms : 1;
        out->retry_after_s = (ms + 999) / 1000;
    }
    return 0;
}

int dk_ratelimit_check(dk_ratelimit *rl, const char *key, uint64_t limit, uint64_t window_ms,
                       dk_ratelimit_result *out)
{
    return dk_ratelimit_check_with(rl, key, limit, window_ms, rl->opts.algorithm, out);
}

int dk_ratelimit_reset(dk_ratelimit *rl, const char *key)
{
    int rc = check_key(rl, key);
    if (rc < 0)
        return rc;
    return rl->be.reset(rl->be.user, key);
}

int dk_ratelimit_sweep(dk_ratelimit *rl)
{
    if (rl->be.sweep == NULL)
        return 0;
    return rl->be.sweep(rl->be.user, mono_now(rl));
}

size_t dk_ratelimit_size(dk_ratelimit *rl) { return rl->be.size ? rl->be.size(rl->be.user) : 0; }

int dk_ratelimit_algorithm_parse(const char *text, dk_ratelimit_algorithm *out)
{
    if (text && strcmp(text, "sliding") == 0)
        *out = DK_RATELIMIT_SLIDING;
    else if (text && strcmp(text, "fixed") == 0)
        *out = DK_RATELIMIT_FIXED;
    else
        return DK_EINVAL;
    return 0;
}

int dk_ratelimit_key(const char *scope, const char *who, char *buf, size_t len)
{
    int n = snprintf(buf, len, "ratelimit:%s:%s", scope ? scope : "", who ? who : "");
    if (n < 0 || (size_t)n >= len) {
        if (len > 0)
            buf[0] = '\0';
        return DK_ELIMIT;
    }
    return 0;
}
