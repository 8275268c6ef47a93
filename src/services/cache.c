/* The cache facade (default TTL, single-flight get-or-set, statistics) and the
 * built-in in-memory backend (chained hash map + doubly linked LRU list). */
#include "donkey/cache.h"
#include "base/internal.h"
#include "base/htab.h"
#include "base/list.h"
#include "base/offload.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define NEVER UINT64_MAX
#define MIN_BUCKETS 16
/* Entries looked at by the incremental sweep that runs when a key is added. */
#define SET_SWEEP_BUDGET 16
#define SET_SWEEP_MAX_BUCKETS 64

/* ------------------------------------------------------------------ */
/* In-memory backend                                                   */

struct entry {
    dk__hnode node;      /* first: in the table, by key */
    dk__lnode lru;       /* LRU order: head = most recently used */
    uint64_t expires_at; /* monotonic ms, NEVER when it does not expire */
    json_t *value;       /* the cache's own copy */
    size_t klen;
    char key[];
};

struct mem {
    pthread_mutex_t lock;
    dk__htab tab; /* struct entry by key */
    size_t max_entries;
    size_t sweep_cursor;
    dk__list lru;
    uint64_t evictions, expired;
    uint64_t (*clock)(void *user);
    void *clock_user;
};

static uint64_t mem_now(struct mem *m) { return m->clock ? m->clock(m->clock_user) : dk_now_ms(); }

static bool is_expired(const struct entry *e, uint64_t now) { return now > e->expires_at; }

static uint64_t expiry_for(uint64_t now, int64_t ttl_ms)
{
    if (ttl_ms < 0)
        return NEVER;
    if ((uint64_t)ttl_ms >= NEVER - 1 - now)
        return NEVER - 1;
    return now + (uint64_t)ttl_ms;
}

/* The node is each entry's first member. */
#define ENT(n) ((struct entry *)(void *)(n))

static dk__hnode **find_slot(struct mem *m, const char *key, size_t klen, uint64_t h)
{
    dk__hnode **pp = dk__htab_chain(&m->tab, h);
    for (; *pp != NULL; pp = &(*pp)->next) {
        struct entry *e = ENT(*pp);
        if ((*pp)->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0)
            return pp;
    }
    return pp;
}

#define ENTRY_OF(node) DK__CONTAINER_OF(node, struct entry, lru)

static void lru_unlink(struct mem *m, struct entry *e) { dk__list_unlink(&m->lru, &e->lru); }

static void lru_push_front(struct mem *m, struct entry *e)
{
    dk__list_push_front(&m->lru, &e->lru);
}

static void entry_free(struct entry *e)
{
    json_decref(e->value);
    free(e);
}

/* Removes the entry that *pp points to (a bucket slot). Lock held. */
static void remove_at(struct mem *m, dk__hnode **pp)
{
    struct entry *e = ENT(*pp);
    dk__htab_unlink(&m->tab, pp);
    lru_unlink(m, e);
    entry_free(e);
}

static void remove_entry(struct mem *m, struct entry *e)
{
    remove_at(m, find_slot(m, e->key, e->klen, e->node.hash));
}

/* Purges a few expired entries, resuming where the previous call stopped, so
 * that memory of entries nobody touches again is reclaimed without a full
 * scan on every insert. Lock held. */
static void sweep_some(struct mem *m, uint64_t now)
{
    size_t seen = 0;
    for (size_t b = 0; b < SET_SWEEP_MAX_BUCKETS && b < dk__htab_nbuckets(&m->tab); b++) {
        size_t i = m->sweep_cursor;
        m->sweep_cursor = (m->sweep_cursor + 1) & m->tab.mask;
        dk__hnode **pp = dk__htab_bucket(&m->tab, i);
        while (*pp) {
            seen++;
            if (is_expired(ENT(*pp), now)) {
                remove_at(m, pp);
                m->expired++;
            } else {
                pp = &(*pp)->next;
            }
        }
        if (seen >= SET_SWEEP_BUDGET)
            break;
    }
}

static int mem_get(void *user, const char *key, json_t **out)
{
    struct mem *m = user;
    size_t klen = strlen(key);
    uint64_t h = dk__hash(key, klen);
    pthread_mutex_lock(&m->lock);
    dk__hnode **pp = find_slot(m, key, klen, h);
    if (*pp == NULL) {
        pthread_mutex_unlock(&m->lock);
        return DK_ENOTFOUND;
    }
    if (is_expired(ENT(*pp), mem_now(m))) {
        remove_at(m, pp);
        m->expired++;
        pthread_mutex_unlock(&m->lock);
        return DK_ENOTFOUND;
    }
    struct entry *e = ENT(*pp);
    lru_unlink(m, e);
    lru_push_front(m, e);
    /* Copied under the lock: the stored value's reference count is only ever
     * touched with the lock held (jansson's refcount check is not atomic). */
    *out = json_deep_copy(e->value);
    pthread_mutex_unlock(&m->lock);
    return *out ? 0 : DK_ENOMEM;
}

static int mem_set(void *user, const char *key, const json_t *value, int64_t ttl_ms)
{
    struct mem *m = user;
    size_t klen = strlen(key);
    json_t *copy = json_deep_copy(value);
    struct entry *fresh = malloc(sizeof(*fresh) + klen + 1);
    if (copy == NULL || fresh == NULL) {
        json_decref(copy);
        free(fresh);
        return DK_ENOMEM;
    }
    memcpy(fresh->key, key, klen + 1);
    fresh->klen = klen;
    fresh->value = copy;
    fresh->lru.prev = fresh->lru.next = NULL;

    pthread_mutex_lock(&m->lock);
    uint64_t now = mem_now(m);
    fresh->expires_at = expiry_for(now, ttl_ms);
    uint64_t h = dk__hash(key, klen);
    dk__hnode **pp = find_slot(m, key, klen, h);
    json_t *old = NULL;
    if (*pp != NULL) {
        /* Overwrite: the size does not grow, so nothing is evicted. */
        struct entry *e = ENT(*pp);
        old = e->value;
        e->value = copy;
        e->expires_at = fresh->expires_at;
        lru_unlink(m, e);
        lru_push_front(m, e);
        pthread_mutex_unlock(&m->lock);
        free(fresh);
        json_decref(old);
        return 0;
    }
    sweep_some(m, now);
    while (m->tab.count >= m->max_entries && m->lru.tail) {
        remove_entry(m, ENTRY_OF(m->lru.tail));
        m->evictions++;
    }
    if (dk__htab_add(&m->tab, &fresh->node, h))
        m->sweep_cursor = 0; /* the buckets were doubled */
    lru_push_front(m, fresh);
    pthread_mutex_unlock(&m->lock);
    return 0;
}

static int mem_del(void *user, const char *key)
{
    struct mem *m = user;
    size_t klen = strlen(key);
    pthread_mutex_lock(&m->lock);
    dk__hnode **pp = find_slot(m, key, klen, dk__hash(key, klen));
    int rc = DK_ENOTFOUND;
    if (*pp != NULL) {
        remove_at(m, pp);
        rc = 0;
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static int mem_has(void *user, const char *key)
{
    struct mem *m = user;
    size_t klen = strlen(key);
    pthread_mutex_lock(&m->lock);
    dk__hnode **pp = find_slot(m, key, klen, dk__hash(key, klen));
    int rc = 0;
    if (*pp != NULL) {
        if (is_expired(ENT(*pp), mem_now(m))) {
            remove_at(m, pp);
            m->expired++;
        } else {
            rc = 1;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static int mem_clear(void *user)
{
    struct mem *m = user;
    pthread_mutex_lock(&m->lock);
    dk__lnode *n = m->lru.head;
    dk__htab_clear(&m->tab);
    m->lru.head = m->lru.tail = NULL;
    pthread_mutex_unlock(&m->lock);
    while (n) {
        dk__lnode *next = n->next;
        entry_free(ENTRY_OF(n));
        n = next;
    }
    return 0;
}

static int mem_keys(void *user, const char *pattern, json_t **out)
{
    struct mem *m = user;
    json_t *arr = json_array();
    if (arr == NULL)
        return DK_ENOMEM;
    int rc = 0;
    pthread_mutex_lock(&m->lock);
    uint64_t now = mem_now(m);
    for (dk__lnode *n = m->lru.head; n; n = n->next) {
        const struct entry *e = ENTRY_OF(n);
        if (is_expired(e, now) || (pattern && !dk_glob_match(pattern, e->key)))
            continue;
        if (json_array_append_new(arr, json_stringn(e->key, e->klen)) != 0) {
            rc = DK_ENOMEM;
            break;
        }
    }
    pthread_mutex_unlock(&m->lock);
    if (rc != 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

static int mem_sweep(void *user)
{
    struct mem *m = user;
    int removed = 0;
    pthread_mutex_lock(&m->lock);
    uint64_t now = mem_now(m);
    for (size_t i = 0; i < dk__htab_nbuckets(&m->tab); i++) {
        dk__hnode **pp = dk__htab_bucket(&m->tab, i);
        while (*pp) {
            if (is_expired(ENT(*pp), now)) {
                remove_at(m, pp);
                m->expired++;
                if (removed < INT32_MAX)
                    removed++;
            } else {
                pp = &(*pp)->next;
            }
        }
    }
    pthread_mutex_unlock(&m->lock);
    return removed;
}

static void mem_stats(void *user, dk_cache_stats *out)
{
    struct mem *m = user;
    pthread_mutex_lock(&m->lock);
    out->size = m->tab.count;
    out->evictions = m->evictions;
    out->expired = m->expired;
    pthread_mutex_unlock(&m->lock);
}

static void mem_destroy(void *user)
{
    struct mem *m = user;
    mem_clear(m);
    pthread_mutex_destroy(&m->lock);
    dk__htab_free(&m->tab);
    free(m);
}

static struct mem *mem_new(const dk_cache_options *o)
{
    struct mem *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    if (dk__htab_init(&m->tab, MIN_BUCKETS) < 0) {
        free(m);
        return NULL;
    }
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        dk__htab_free(&m->tab);
        free(m);
        return NULL;
    }
    m->max_entries = o->max_entries;
    m->clock = o->clock;
    m->clock_user = o->clock_user;
    return m;
}

/* ------------------------------------------------------------------ */
/* Facade                                                              */

/* One get_or_set computation in progress, shared by the threads waiting for it. */
struct flight {
    struct flight *next;
    char *key;
    pthread_t owner;
    pthread_cond_t cond;
    int refs; /* the computing thread plus the waiters; guarded by cache->lock */
    bool done;
    int rc;
    json_t *value; /* on rc == 0; released with the last reference */
};

struct dk_cache {
    dk_cache_backend be;
    int64_t default_ttl_ms;
    size_t max_key_len;
    pthread_mutex_t lock; /* guards flights */
    struct flight *flights;
    atomic_uint_fast64_t hits, misses, sets, deletes, computes;
};

void dk_cache_options_init(dk_cache_options *o)
{
    memset(o, 0, sizeof(*o));
    o->default_ttl_ms = 300000;
    o->max_entries = 1000;
    o->max_key_len = 1024;
}

static bool options_valid(const dk_cache_options *o)
{
    return (o->default_ttl_ms > 0 || o->default_ttl_ms == DK_TTL_NEVER) && o->max_key_len > 0;
}

dk_cache *dk_cache_new_with_backend(const dk_cache_options *opts, const dk_cache_backend *backend)
{
    dk_cache_options defaults;
    if (opts == NULL) {
        dk_cache_options_init(&defaults);
        opts = &defaults;
    }
    if (backend == NULL)
        return NULL;
    dk_cache *c = NULL;
    if (!backend->get || !backend->set || !backend->del || !backend->has || !backend->clear ||
        !backend->keys || !options_valid(opts))
        goto fail;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        goto fail;
    if (pthread_mutex_init(&c->lock, NULL) != 0)
        goto fail;
    c->be = *backend;
    c->default_ttl_ms = opts->default_ttl_ms;
    c->max_key_len = opts->max_key_len;
    return c;

fail:
    free(c);
    if (backend->destroy)
        backend->destroy(backend->user);
    return NULL;
}

dk_cache *dk_cache_new(const dk_cache_options *opts)
{
    dk_cache_options defaults;
    if (opts == NULL) {
        dk_cache_options_init(&defaults);
        opts = &defaults;
    }
    if (opts->max_entries == 0 || !options_valid(opts))
        return NULL;
    struct mem *m = mem_new(opts);
    if (m == NULL)
        return NULL;
    dk_cache_backend be = {
        .get = mem_get,
        .set = mem_set,
        .del = mem_del,
        .has = mem_has,
        .clear = mem_clear,
        .keys = mem_keys,
        .sweep = mem_sweep,
        .stats = mem_stats,
        .destroy = mem_destroy,
        .user = m,
    };
    return dk_cache_new_with_backend(opts, &be);
}

void dk_cache_free(dk_cache *cache)
{
    if (cache == NULL)
        return;
    if (cache->be.destroy)
        cache->be.destroy(cache->be.user);
    pthread_mutex_destroy(&cache->lock);
    free(cache);
}

/* Keys are NUL-free byte strings; they must also be valid UTF-8 so that
 * dk_cache_keys() can return them as JSON strings. */
static bool utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + n >= len)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

static int check_key(const dk_cache *c, const char *key)
{
    if (key == NULL || key[0] == '\0')
        return DK_EINVAL;
    size_t len = strnlen(key, c->max_key_len + 1);
    if (len > c->max_key_len)
        return DK_ELIMIT;
    if (!utf8_valid((const unsigned char *)key, len))
        return DK_EINVAL;
    return 0;
}

static int resolve_ttl(const dk_cache *c, int64_t ttl_ms, int64_t *out)
{
    if (ttl_ms < DK_TTL_NEVER)
        return DK_EINVAL;
    *out = ttl_ms == DK_TTL_DEFAULT ? c->default_ttl_ms : ttl_ms;
    return 0;
}

int dk_cache_get(dk_cache *cache, const char *key, json_t **out)
{
    if (out == NULL)
        return DK_EINVAL;
    *out = NULL;
    int rc = check_key(cache, key);
    if (rc != 0)
        return rc;
    json_t *v = NULL;
    rc = cache->be.get(cache->be.user, key, &v);
    if (rc == 0) {
        atomic_fetch_add(&cache->hits, 1);
        *out = v;
    } else if (rc == DK_ENOTFOUND) {
        atomic_fetch_add(&cache->misses, 1);
    }
    return rc;
}

int dk_cache_set(dk_cache *cache, const char *key, const json_t *value, int64_t ttl_ms)
{
    int64_t ttl;
    int rc = check_key(cache, key);
    if (rc != 0)
        return rc;
    if (value == NULL || resolve_ttl(cache, ttl_ms, &ttl) != 0)
        return DK_EINVAL;
    rc = cache->be.set(cache->be.user, key, value, ttl);
    if (rc == 0)
        atomic_fetch_add(&cache->sets, 1);
    return rc;
}

int dk_cache_delete(dk_cache *cache, const char *key)
{
    int rc = check_key(cache, key);
    if (rc != 0)
        return rc;
    rc = cache->be.del(cache->be.user, key);
    if (rc == 0)
        atomic_fetch_add(&cache->deletes, 1);
    return rc;
}

int dk_cache_has(dk_cache *cache, const char *key)
{
    int rc = check_key(cache, key);
    if (rc != 0)
        return rc;
    return cache->be.has(cache->be.user, key);
}

int dk_cache_clear(dk_cache *cache) { return cache->be.clear(cache->be.user); }

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

json_t *dk_cache_keys(dk_cache *cache, const char *pattern)
{
    json_t *raw = NULL;
    if (cache->be.keys(cache->be.user, pattern, &raw) != 0 || !json_is_array(raw)) {
        json_decref(raw);
        return NULL;
    }
    size_t n = json_array_size(raw);
    json_t *sorted = json_array();
    const char **v = malloc((n ? n : 1) * sizeof(*v));
    if (sorted == NULL || v == NULL)
        goto fail;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(raw, i));
        if (s)
            v[m++] = s;
    }
    qsort(v, m, sizeof(*v), cmp_str);
    for (size_t i = 0; i < m; i++)
        if (json_array_append_new(sorted, json_string(v[i])) != 0)
            goto fail;
    free(v);
    json_decref(raw);
    return sorted;

fail:
    free(v);
    json_decref(sorted);
    json_decref(raw);
    return NULL;
}

static void flight_release(struct flight *f)
{
    /* Called with the cache lock held; frees when the last reference goes. */
    if (--f->refs > 0)
        return;
    json_decref(f->value);
    pthread_cond_destroy(&f->cond);
    free(f->key);
    free(f);
}

static struct flight *flight_find(dk_cache *c, const char *key)
{
    for (struct flight *f = c->flights; f; f = f->next)
        if (strcmp(f->key, key) == 0)
            return f;
    return NULL;
}

static void flight_unlink(dk_cache *c, struct flight *f)
{
    for (struct flight **pp = &c->flights; *pp; pp = &(*pp)->next) {
        if (*pp == f) {
            *pp = f->next;
            return;
        }
    }
}

/* Copies the shared result of a flight for one caller. Lock not held: the
 * value is immutable and kept alive by the caller's flight reference. */
static int flight_result(const struct flight *f, json_t **out)
{
    if (f->rc != 0)
        return f->rc;
    *out = json_deep_copy(f->value);
    return *out ? 0 : DK_ENOMEM;
}

static int get_or_set(dk_cache *cache, const char *key, dk_cache_compute_fn fn, void *user,
                      int64_t ttl_ms, json_t **out)
{
    int64_t ttl;
    if (out == NULL)
        return DK_EINVAL;
    *out = NULL;
    if (fn == NULL || resolve_ttl(cache, ttl_ms, &ttl) != 0)
        return DK_EINVAL;
    int rc = dk_cache_get(cache, key, out);
    if (rc != DK_ENOTFOUND)
        return rc;

    pthread_mutex_lock(&cache->lock);
    struct flight *f = flight_find(cache, key);
    if (f != NULL) {
        if (pthread_equal(f->owner, pthread_self())) {
            pthread_mutex_unlock(&cache->lock);
            return DK_EBUSY;
        }
        f->refs++;
        while (!f->done)
            pthread_cond_wait(&f->cond, &cache->lock);
        pthread_mutex_unlock(&cache->lock);
        rc = flight_result(f, out);
        pthread_mutex_lock(&cache->lock);
        flight_release(f);
        pthread_mutex_unlock(&cache->lock);
        return rc;
    }
    f = calloc(1, sizeof(*f));
    if (f == NULL || (f->key = dk__strdup(key)) == NULL || pthread_cond_init(&f->cond, NULL) != 0) {
        pthread_mutex_unlock(&cache->lock);
        if (f)
            free(f->key);
        free(f);
        return DK_ENOMEM;
    }
    f->owner = pthread_self();
    f->refs = 1;
    f->next = cache->flights;
    cache->flights = f;
    pthread_mutex_unlock(&cache->lock);

    /* Another thread may have stored the value between our miss and the
     * registration of this flight. */
    json_t *value = NULL;
    rc = cache->be.get(cache->be.user, key, &value);
    if (rc == DK_ENOTFOUND) {
        atomic_fetch_add(&cache->computes, 1);
        value = NULL;
        rc = fn(key, &value, user);
        if (rc >= 0 && value == NULL)
            rc = DK_EINTERNAL;
        if (rc >= 0)
            rc = dk_cache_set(cache, key, value, ttl);
    }
    if (rc < 0) {
        json_decref(value);
        value = NULL;
    } else {
        rc = 0;
    }

    pthread_mutex_lock(&cache->lock);
    flight_unlink(cache, f);
    f->done = true;
    f->rc = rc;
    f->value = value;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&cache->lock);
    rc = flight_result(f, out);
    pthread_mutex_lock(&cache->lock);
    flight_release(f);
    pthread_mutex_unlock(&cache->lock);
    return rc;
}

/* Single flight: waiters block on a condition variable and the computing
 * thread owns the flight, so in a request's fiber the whole call runs on an
 * I/O thread (src/base/offload.h): a suspended fiber never owns a flight and
 * an HTTP thread never blocks on one. */
typedef struct gos_call {
    dk_cache *cache;
    const char *key;
    dk_cache_compute_fn fn;
    void *user;
    int64_t ttl_ms;
    json_t **out;
} gos_call;

static int gos_run(void *arg)
{
    gos_call *c = arg;
    return get_or_set(c->cache, c->key, c->fn, c->user, c->ttl_ms, c->out);
}

int dk_cache_get_or_set(dk_cache *cache, const char *key, dk_cache_compute_fn fn, void *user,
                        int64_t ttl_ms, json_t **out)
{
    gos_call c = {cache, key, fn, user, ttl_ms, out};
    return dk__offload(DK__POOL_IO, gos_run, &c);
}

int dk_cache_sweep(dk_cache *cache)
{
    return cache->be.sweep ? cache->be.sweep(cache->be.user) : 0;
}

void dk_cache_stats_get(dk_cache *cache, dk_cache_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (cache->be.stats)
        cache->be.stats(cache->be.user, out);
    out->hits = atomic_load(&cache->hits);
    out->misses = atomic_load(&cache->misses);
    out->sets = atomic_load(&cache->sets);
    out->deletes = atomic_load(&cache->deletes);
    out->computes = atomic_load(&cache->computes);
}

size_t dk_cache_size(dk_cache *cache)
{
    dk_cache_stats st;
    dk_cache_stats_get(cache, &st);
    return st.size;
}
