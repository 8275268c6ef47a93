/* Unit tests for the cache service (include/donkey/cache.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "donkey/cache.h"

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* A manual clock for deterministic expiry tests. */
static uint64_t fake_now;
static uint64_t fake_clock(void *user)
{
    (void)user;
    return fake_now;
}

static dk_cache *new_cache(size_t max, int64_t default_ttl, bool fake)
{
    dk_cache_options o;
    dk_cache_options_init(&o);
    o.max_entries = max;
    o.default_ttl_ms = default_ttl;
    if (fake) {
        fake_now = 1000;
        o.clock = fake_clock;
    }
    dk_cache *c = dk_cache_new(&o);
    assert_non_null(c);
    return c;
}

static void set_int(dk_cache *c, const char *key, json_int_t v, int64_t ttl)
{
    json_t *j = json_integer(v);
    assert_int_equal(dk_cache_set(c, key, j, ttl), 0);
    json_decref(j);
}

static bool present(dk_cache *c, const char *key)
{
    json_t *v = NULL;
    int rc = dk_cache_get(c, key, &v);
    json_decref(v);
    assert_true(rc == 0 || rc == DK_ENOTFOUND);
    return rc == 0;
}

static void test_defaults(void **state)
{
    (void)state;
    dk_cache_options o;
    dk_cache_options_init(&o);
    assert_int_equal(o.default_ttl_ms, 300000);
    assert_int_equal(o.max_entries, 1000);
    o.max_entries = 0;
    assert_null(dk_cache_new(&o));
    dk_cache_options_init(&o);
    o.default_ttl_ms = -5;
    assert_null(dk_cache_new(&o));
    dk_cache_free(NULL);
}

static void test_get_set_delete_has_clear(void **state)
{
    (void)state;
    dk_cache *c = dk_cache_new(NULL);
    assert_non_null(c);
    json_t *v = json_pack("{s:i, s:s, s:[i,i], s:{s:s}}", "id", 1, "name", "Alice", "list", 1, 2,
                          "nested", "at", "2024-01-15T12:34:56.789Z");
    assert_int_equal(dk_cache_set(c, "user:1", v, DK_TTL_DEFAULT), 0);

    json_t *got = (json_t *)0x1;
    assert_int_equal(dk_cache_get(c, "missing", &got), DK_ENOTFOUND);
    assert_null(got);
    assert_int_equal(dk_cache_get(c, "user:1", &got), 0);
    assert_true(json_equal(got, v));
    /* The cache holds its own copy: changing either side changes nothing. */
    assert_true(got != v);
    json_object_set_new(got, "id", json_integer(99));
    json_object_set_new(v, "id", json_integer(42));
    json_decref(got);
    assert_int_equal(dk_cache_get(c, "user:1", &got), 0);
    assert_int_equal(json_integer_value(json_object_get(got, "id")), 1);
    json_decref(got);

    assert_int_equal(dk_cache_has(c, "user:1"), 1);
    assert_int_equal(dk_cache_has(c, "nope"), 0);
    assert_int_equal(dk_cache_delete(c, "user:1"), 0);
    assert_int_equal(dk_cache_delete(c, "user:1"), DK_ENOTFOUND);
    assert_int_equal(dk_cache_has(c, "user:1"), 0);

    /* A stored JSON null is a hit, not a miss. */
    assert_int_equal(dk_cache_set(c, "n", json_null(), DK_TTL_DEFAULT), 0);
    assert_int_equal(dk_cache_get(c, "n", &got), 0);
    assert_true(json_is_null(got));
    json_decref(got);

    set_int(c, "a", 1, DK_TTL_DEFAULT);
    set_int(c, "b", 2, DK_TTL_DEFAULT);
    set_int(c, "c", 3, DK_TTL_DEFAULT);
    assert_int_equal(dk_cache_clear(c), 0);
    assert_false(present(c, "a"));
    assert_false(present(c, "b"));
    assert_false(present(c, "c"));
    assert_int_equal(dk_cache_size(c), 0);

    /* Argument checks. */
    assert_int_equal(dk_cache_set(c, "", v, 0), DK_EINVAL);
    assert_int_equal(dk_cache_set(c, NULL, v, 0), DK_EINVAL);
    assert_int_equal(dk_cache_set(c, "k", NULL, 0), DK_EINVAL);
    assert_int_equal(dk_cache_set(c, "k", v, -2), DK_EINVAL);
    assert_int_equal(dk_cache_set(c, "bad\xff", v, 0), DK_EINVAL);
    char longkey[1100];
    memset(longkey, 'k', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    assert_int_equal(dk_cache_set(c, longkey, v, 0), DK_ELIMIT);
    assert_int_equal(dk_cache_size(c), 0);

    dk_cache_stats st;
    dk_cache_stats_get(c, &st);
    assert_true(st.hits >= 3);
    assert_true(st.misses >= 4);
    assert_int_equal(st.deletes, 1);
    json_decref(v);
    dk_cache_free(c);
}

static void test_ttl_expiry_sleep(void **state)
{
    (void)state;
    dk_cache *c = new_cache(100, 30, false);
    set_int(c, "short", 1, 30);
    set_int(c, "default", 2, DK_TTL_DEFAULT); /* configured default: 30 ms */
    set_int(c, "never", 3, DK_TTL_NEVER);
    set_int(c, "long", 4, 60000);
    assert_true(present(c, "short"));
    assert_true(present(c, "default"));
    sleep_ms(60);
    assert_false(present(c, "short"));
    assert_int_equal(dk_cache_has(c, "default"), 0);
    assert_true(present(c, "never"));
    assert_true(present(c, "long"));
    dk_cache_free(c);
}

static void test_ttl_exact_boundaries(void **state)
{
    (void)state;
    dk_cache *c = new_cache(100, 500, true);
    set_int(c, "a", 1, 100);
    set_int(c, "d", 2, DK_TTL_DEFAULT);
    set_int(c, "n", 3, DK_TTL_NEVER);
    fake_now += 100; /* expired only when now > expiresAt */
    assert_true(present(c, "a"));
    fake_now += 1;
    assert_false(present(c, "a"));
    assert_true(present(c, "d"));
    fake_now += 400;
    assert_false(present(c, "d"));
    fake_now += 1000000000;
    assert_true(present(c, "n"));

    /* Overwrite refreshes the TTL. */
    set_int(c, "o", 1, 100);
    fake_now += 80;
    set_int(c, "o", 2, 100);
    fake_now += 80;
    assert_true(present(c, "o"));

    /* delete of an expired, not yet purged entry still reports "present". */
    set_int(c, "x", 1, 10);
    fake_now += 20;
    assert_int_equal(dk_cache_delete(c, "x"), 0);
    dk_cache_free(c);
}

static void test_lru_eviction(void **state)
{
    (void)state;
    dk_cache *c = new_cache(3, DK_TTL_NEVER, false);
    set_int(c, "a", 1, 0);
    set_int(c, "b", 2, 0);
    set_int(c, "c", 3, 0);
    assert_true(present(c, "a")); /* a becomes most recently used */
    set_int(c, "d", 4, 0);         /* evicts b */
    assert_false(present(c, "b"));
    assert_true(present(c, "a"));
    assert_true(present(c, "c"));
    assert_true(present(c, "d"));
    assert_int_equal(dk_cache_size(c), 3);

    /* a, c, d were read in that order, so a is the least recently used; has()
     * must not refresh it. */
    assert_int_equal(dk_cache_has(c, "a"), 1);
    set_int(c, "e", 5, 0);
    assert_false(present(c, "a"));

    /* Overwriting an existing key in a full cache evicts nothing. */
    set_int(c, "e", 6, 0);
    assert_int_equal(dk_cache_size(c), 3);
    assert_true(present(c, "c"));
    assert_true(present(c, "d"));

    /* Overwrite refreshes recency: LRU order now e, c, d -> set e -> c is LRU. */
    set_int(c, "e", 7, 0);
    set_int(c, "f", 8, 0);
    assert_false(present(c, "c"));
    assert_true(present(c, "d"));
    assert_true(present(c, "e"));
    assert_true(present(c, "f"));

    dk_cache_stats st;
    dk_cache_stats_get(c, &st);
    assert_int_equal(st.evictions, 3);
    dk_cache_free(c);
}

static void test_expired_purged_before_eviction(void **state)
{
    (void)state;
    dk_cache *c = new_cache(3, DK_TTL_NEVER, true);
    set_int(c, "live1", 1, DK_TTL_NEVER);
    set_int(c, "dead", 2, 10);
    set_int(c, "live2", 3, DK_TTL_NEVER);
    fake_now += 50;
    /* Inserting into the full cache reclaims the expired entry instead of
     * evicting live1, the least recently used live one. */
    set_int(c, "new", 4, DK_TTL_NEVER);
    assert_true(present(c, "live1"));
    assert_true(present(c, "live2"));
    assert_true(present(c, "new"));
    dk_cache_stats st;
    dk_cache_stats_get(c, &st);
    assert_int_equal(st.evictions, 0);
    assert_int_equal(st.expired, 1);
    dk_cache_free(c);
}

static void test_keys_glob(void **state)
{
    (void)state;
    dk_cache *c = new_cache(100, 60000, true);
    const char *keys[] = {"user:2", "user:1", "post:1",        "a.b[1]",
                          "axb[1]", "a.b1",   "user:1:profile"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        set_int(c, keys[i], (json_int_t)i, DK_TTL_DEFAULT);
    set_int(c, "user:9", 9, 10);
    fake_now += 20; /* user:9 expired: never listed */

    json_t *all = dk_cache_keys(c, NULL);
    assert_non_null(all);
    assert_int_equal(json_array_size(all), 7);
    /* Sorted bytewise. */
    for (size_t i = 1; i < json_array_size(all); i++)
        assert_true(strcmp(json_string_value(json_array_get(all, i - 1)),
                           json_string_value(json_array_get(all, i))) < 0);
    json_decref(all);

    json_t *users = dk_cache_keys(c, "user:*");
    assert_int_equal(json_array_size(users), 3);
    assert_string_equal(json_string_value(json_array_get(users, 0)), "user:1");
    assert_string_equal(json_string_value(json_array_get(users, 1)), "user:1:profile");
    assert_string_equal(json_string_value(json_array_get(users, 2)), "user:2");
    json_decref(users);

    /* `.` and `[` are literal, `?` is one character. */
    json_t *lit = dk_cache_keys(c, "a.b[?]");
    assert_int_equal(json_array_size(lit), 1);
    assert_string_equal(json_string_value(json_array_get(lit, 0)), "a.b[1]");
    json_decref(lit);
    json_t *none = dk_cache_keys(c, "a.b[");
    assert_int_equal(json_array_size(none), 0);
    json_decref(none);
    json_t *one = dk_cache_keys(c, "user:?");
    assert_int_equal(json_array_size(one), 2);
    json_decref(one);

    /* keys() does not purge the expired entry (still counted in size). */
    assert_int_equal(dk_cache_size(c), 8);
    dk_cache_free(c);
}

static void test_memory_reclaimed_by_sweep(void **state)
{
    (void)state;
    dk_cache *c = new_cache(1000, 30, false);
    char key[32];
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        set_int(c, key, i, DK_TTL_DEFAULT);
    }
    set_int(c, "keep", 1, DK_TTL_NEVER);
    assert_int_equal(dk_cache_size(c), 201);
    sleep_ms(60);
    assert_int_equal(dk_cache_sweep(c), 200);
    assert_int_equal(dk_cache_size(c), 1);
    assert_int_equal(dk_cache_sweep(c), 0);
    assert_true(present(c, "keep"));
    dk_cache_free(c);
}

static void test_set_sweeps_some_expired(void **state)
{
    (void)state;
    dk_cache *c = new_cache(100000, 10, true);
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "old%d", i);
        set_int(c, key, i, DK_TTL_DEFAULT);
    }
    fake_now += 100;
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "new%d", i);
        set_int(c, key, i, DK_TTL_NEVER);
    }
    /* Without any get or sweep, inserts alone reclaimed some expired entries. */
    assert_true(dk_cache_size(c) < 1200);
    dk_cache_free(c);
}

/* ---- get-or-set ---- */

static atomic_int compute_calls;

static int slow_compute(const char *key, json_t **out, void *user)
{
    (void)user;
    atomic_fetch_add(&compute_calls, 1);
    sleep_ms(50);
    *out = json_pack("{s:s}", "key", key);
    return 0;
}

static int failing_compute(const char *key, json_t **out, void *user)
{
    (void)key;
    (void)out;
    (void)user;
    atomic_fetch_add(&compute_calls, 1);
    sleep_ms(30);
    return DK_EUNAVAILABLE;
}

struct gos_arg {
    dk_cache *cache;
    dk_cache_compute_fn fn;
    pthread_barrier_t *barrier;
    int rc;
    json_t *value;
};

static void *gos_thread(void *p)
{
    struct gos_arg *a = p;
    pthread_barrier_wait(a->barrier);
    a->rc = dk_cache_get_or_set(a->cache, "shared", a->fn, NULL, DK_TTL_DEFAULT, &a->value);
    return NULL;
}

static void run_concurrent(dk_cache *c, dk_cache_compute_fn fn, struct gos_arg *args)
{
    enum { N = 8 };
    pthread_t th[N];
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, N);
    for (int i = 0; i < N; i++) {
        args[i] = (struct gos_arg){.cache = c, .fn = fn, .barrier = &barrier};
        assert_int_equal(pthread_create(&th[i], NULL, gos_thread, &args[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&barrier);
}

static void test_get_or_set_single_flight(void **state)
{
    (void)state;
    dk_cache *c = dk_cache_new(NULL);
    struct gos_arg args[8];
    atomic_store(&compute_calls, 0);
    run_concurrent(c, slow_compute, args);
    assert_int_equal(atomic_load(&compute_calls), 1);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(args[i].rc, 0);
        assert_string_equal(json_string_value(json_object_get(args[i].value, "key")), "shared");
        for (int k = 0; k < i; k++)
            assert_true(args[k].value != args[i].value); /* private copies */
        json_decref(args[i].value);
    }
    /* A later call is served from the cache. */
    json_t *v = NULL;
    assert_int_equal(dk_cache_get_or_set(c, "shared", slow_compute, NULL, 0, &v), 0);
    json_decref(v);
    assert_int_equal(atomic_load(&compute_calls), 1);
    dk_cache_stats st;
    dk_cache_stats_get(c, &st);
    assert_int_equal(st.computes, 1);
    dk_cache_free(c);
}

static void test_get_or_set_failure_shared(void **state)
{
    (void)state;
    dk_cache *c = dk_cache_new(NULL);
    struct gos_arg args[8];
    atomic_store(&compute_calls, 0);
    run_concurrent(c, failing_compute, args);
    /* Every thread that joined the flight got its error; a thread that came
     * after it ended may have started a second computation. */
    int calls = atomic_load(&compute_calls);
    assert_true(calls >= 1 && calls < 8);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(args[i].rc, DK_EUNAVAILABLE);
        assert_null(args[i].value);
    }
    assert_int_equal(dk_cache_has(c, "shared"), 0);
    assert_int_equal(dk_cache_size(c), 0);
    dk_cache_free(c);
}

static int reentrant_compute(const char *key, json_t **out, void *user)
{
    dk_cache *c = user;
    json_t *inner = NULL;
    /* Using the cache from the factory is allowed... */
    json_t *one = json_integer(1);
    assert_int_equal(dk_cache_set(c, "other", one, 0), 0);
    json_decref(one);
    /* ...but asking for the same key from inside its own computation is not. */
    assert_int_equal(dk_cache_get_or_set(c, key, reentrant_compute, c, 0, &inner), DK_EBUSY);
    assert_null(inner);
    *out = json_string("done");
    return 0;
}

static void test_get_or_set_reentrant(void **state)
{
    (void)state;
    dk_cache *c = dk_cache_new(NULL);
    json_t *v = NULL;
    assert_int_equal(dk_cache_get_or_set(c, "k", reentrant_compute, c, DK_TTL_NEVER, &v), 0);
    assert_string_equal(json_string_value(v), "done");
    json_decref(v);
    assert_true(present(c, "other"));
    assert_true(present(c, "k"));
    dk_cache_free(c);
}

/* ---- custom backend: the facade resolves TTLs before calling ---- */

struct rec_backend {
    int64_t last_ttl;
    int destroyed;
};

static int rb_get(void *u, const char *k, json_t **o)
{
    (void)u;
    (void)k;
    (void)o;
    return DK_ENOTFOUND;
}
static int rb_set(void *u, const char *k, const json_t *v, int64_t ttl)
{
    (void)k;
    (void)v;
    ((struct rec_backend *)u)->last_ttl = ttl;
    return 0;
}
static int rb_del(void *u, const char *k)
{
    (void)u;
    (void)k;
    return DK_ENOTFOUND;
}
static int rb_has(void *u, const char *k)
{
    (void)u;
    (void)k;
    return 0;
}
static int rb_clear(void *u)
{
    (void)u;
    return 0;
}
static int rb_keys(void *u, const char *p, json_t **o)
{
    (void)u;
    (void)p;
    *o = json_pack("[s,s,s]", "b", "c", "a");
    return 0;
}
static void rb_destroy(void *u)
{
    ((struct rec_backend *)u)->destroyed++;
}

static void test_custom_backend(void **state)
{
    (void)state;
    struct rec_backend rb = {0};
    dk_cache_backend be = {.get = rb_get, .set = rb_set, .del = rb_del, .has = rb_has,
                           .clear = rb_clear, .keys = rb_keys, .destroy = rb_destroy, .user = &rb};
    dk_cache_options o;
    dk_cache_options_init(&o);
    o.default_ttl_ms = 1234;
    dk_cache *c = dk_cache_new_with_backend(&o, &be);
    assert_non_null(c);
    json_t *v = json_true();
    assert_int_equal(dk_cache_set(c, "k", v, DK_TTL_DEFAULT), 0);
    assert_int_equal(rb.last_ttl, 1234);
    assert_int_equal(dk_cache_set(c, "k", v, DK_TTL_NEVER), 0);
    assert_int_equal(rb.last_ttl, DK_TTL_NEVER);
    assert_int_equal(dk_cache_set(c, "k", v, 77), 0);
    assert_int_equal(rb.last_ttl, 77);
    json_t *keys = dk_cache_keys(c, NULL);
    assert_string_equal(json_string_value(json_array_get(keys, 0)), "a");
    assert_string_equal(json_string_value(json_array_get(keys, 2)), "c");
    json_decref(keys);
    assert_int_equal(dk_cache_sweep(c), 0);
    dk_cache_free(c);
    assert_int_equal(rb.destroyed, 1);

    /* Missing required op: creation fails and the backend is destroyed. */
    be.keys = NULL;
    assert_null(dk_cache_new_with_backend(&o, &be));
    assert_int_equal(rb.destroyed, 2);
}

/* ---- concurrency stress (meaningful under -fsanitize=thread) ---- */

static void *stress_thread(void *p)
{
    dk_cache *c = p;
    char key[16];
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof(key), "k%d", i % 97);
        json_t *v = json_integer(i);
        dk_cache_set(c, key, v, (i % 3) ? 5 : DK_TTL_NEVER);
        json_decref(v);
        json_t *out = NULL;
        if (dk_cache_get(c, key, &out) == 0)
            json_decref(out);
        if (i % 7 == 0)
            dk_cache_delete(c, key);
        if (i % 101 == 0) {
            json_t *k = dk_cache_keys(c, "k1*");
            json_decref(k);
            dk_cache_sweep(c);
        }
    }
    return NULL;
}

static void test_stress(void **state)
{
    (void)state;
    dk_cache *c = new_cache(50, 300000, false);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, stress_thread, c);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_true(dk_cache_size(c) <= 50);
    dk_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_get_set_delete_has_clear),
        cmocka_unit_test(test_ttl_expiry_sleep),
        cmocka_unit_test(test_ttl_exact_boundaries),
        cmocka_unit_test(test_lru_eviction),
        cmocka_unit_test(test_expired_purged_before_eviction),
        cmocka_unit_test(test_keys_glob),
        cmocka_unit_test(test_memory_reclaimed_by_sweep),
        cmocka_unit_test(test_set_sweeps_some_expired),
        cmocka_unit_test(test_get_or_set_single_flight),
        cmocka_unit_test(test_get_or_set_failure_shared),
        cmocka_unit_test(test_get_or_set_reentrant),
        cmocka_unit_test(test_custom_backend),
        cmocka_unit_test(test_stress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
