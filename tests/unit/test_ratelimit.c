/* Unit tests for the rate limiter, client-IP helpers and durations
 * (include/donkey/ratelimit.h, dk_duration_parse). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "donkey/ratelimit.h"

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Manual clocks: monotonic `fake_now`, wall = WALL0 + fake_now. */
#define WALL0 INT64_C(1700000000000)
static uint64_t fake_now;
static uint64_t fake_clock(void *u)
{
    (void)u;
    return fake_now;
}
static int64_t fake_wall(void *u)
{
    (void)u;
    return WALL0 + (int64_t)fake_now;
}

static dk_ratelimit *new_rl(dk_ratelimit_algorithm algo, bool fake)
{
    dk_ratelimit_options o;
    dk_ratelimit_options_init(&o);
    o.algorithm = algo;
    if (fake) {
        fake_now = 1000;
        o.clock = fake_clock;
        o.wall_clock = fake_wall;
    }
    dk_ratelimit *rl = dk_ratelimit_new(&o);
    assert_non_null(rl);
    return rl;
}

static dk_ratelimit_result check(dk_ratelimit *rl, const char *key, uint64_t limit, uint64_t win)
{
    dk_ratelimit_result r;
    assert_int_equal(dk_ratelimit_check(rl, key, limit, win, &r), 0);
    return r;
}

/* The original's test facts hold for both algorithms. */
static void test_spec_facts(void **state)
{
    (void)state;
    for (int a = 0; a < 2; a++) {
        dk_ratelimit *rl = new_rl(a == 0 ? DK_RATELIMIT_SLIDING : DK_RATELIMIT_FIXED, false);
        dk_ratelimit_result r = check(rl, "user:1", 10, 60000);
        assert_true(r.allowed);
        assert_int_equal(r.remaining, 9);
        assert_int_equal(r.limit, 10);
        assert_int_equal(r.retry_after_s, 0);
        assert_true(r.reset_ms > dk_wall_ms());

        for (int i = 0; i < 5; i++)
            assert_true(check(rl, "five", 5, 60000).allowed);
        r = check(rl, "five", 5, 60000);
        assert_false(r.allowed);
        assert_int_equal(r.remaining, 0);
        assert_true(r.retry_after_s > 0);

        for (int i = 0; i < 3; i++)
            r = check(rl, "key:a", 3, 60000);
        assert_int_equal(r.remaining, 0);
        assert_int_equal(check(rl, "key:b", 3, 60000).remaining, 2);

        /* Real time: window 50 ms, then 100 ms later everything is forgotten. */
        for (int i = 0; i < 3; i++)
            assert_true(check(rl, "exp", 3, 50).allowed);
        assert_false(check(rl, "exp", 3, 50).allowed);
        sleep_ms(110);
        r = check(rl, "exp", 3, 50);
        assert_true(r.allowed);
        assert_int_equal(r.remaining, 2);

        /* reset(key) */
        check(rl, "r", 2, 60000);
        check(rl, "r", 2, 60000);
        assert_false(check(rl, "r", 2, 60000).allowed);
        assert_int_equal(dk_ratelimit_reset(rl, "r"), 0);
        r = check(rl, "r", 2, 60000);
        assert_true(r.allowed);
        assert_int_equal(r.remaining, 1);
        assert_int_equal(dk_ratelimit_reset(rl, "nothing"), DK_ENOTFOUND);
        dk_ratelimit_free(rl);
    }
}

static void test_fixed_window_boundaries(void **state)
{
    (void)state;
    dk_ratelimit *rl = new_rl(DK_RATELIMIT_FIXED, true);
    dk_ratelimit_result r = check(rl, "k", 3, 100); /* window [1000, 1100) */
    assert_int_equal(r.reset_ms, WALL0 + 1100);
    fake_now = 1099;
    assert_true(check(rl, "k", 3, 100).allowed);
    r = check(rl, "k", 3, 100);
    assert_true(r.allowed);
    assert_int_equal(r.remaining, 0);
    r = check(rl, "k", 3, 100);
    assert_false(r.allowed);
    assert_int_equal(r.retry_after_s, 1); /* 1 ms left rounds up to 1 s */
    assert_int_equal(r.reset_ms, WALL0 + 1100);
    /* The fixed window's weakness: a fresh window right at the boundary. */
    fake_now = 1100;
    for (int i = 0; i < 3; i++)
        assert_true(check(rl, "k", 3, 100).allowed);
    r = check(rl, "k", 3, 100);
    assert_false(r.allowed);
    assert_int_equal(r.reset_ms, WALL0 + 1200);

    /* Blocked calls are counted; the window length stays that of the opener. */
    fake_now = 5000;
    check(rl, "w", 1, 100);
    fake_now = 5050;
    r = check(rl, "w", 1, 100000);
    assert_false(r.allowed);
    assert_int_equal(r.reset_ms, WALL0 + 5100);

    /* retry-after rounds up: 4999 ms -> 5 s. */
    fake_now = 10000;
    check(rl, "ra", 1, 5000);
    fake_now = 10001;
    assert_int_equal(check(rl, "ra", 1, 5000).retry_after_s, 5);

    /* limit 0 blocks everything. */
    r = check(rl, "zero", 0, 2000);
    assert_false(r.allowed);
    assert_int_equal(r.remaining, 0);
    assert_int_equal(r.retry_after_s, 2);
    dk_ratelimit_free(rl);
}

static void test_sliding_window_boundaries(void **state)
{
    (void)state;
    dk_ratelimit *rl = new_rl(DK_RATELIMIT_SLIDING, true);
    assert_int_equal(dk_ratelimit_default_algorithm(rl), DK_RATELIMIT_SLIDING);
    dk_ratelimit_result r;
    for (int i = 0; i < 10; i++) {
        r = check(rl, "s", 10, 100); /* window [1000, 1100) */
        assert_true(r.allowed);
        assert_int_equal(r.remaining, (uint64_t)(9 - i));
    }
    r = check(rl, "s", 10, 100);
    assert_false(r.allowed);
    assert_int_equal(r.reset_ms, WALL0 + 1100);
    assert_int_equal(r.retry_after_s, 1);

    /* Right after the boundary the previous window still weighs fully. */
    fake_now = 1100;
    r = check(rl, "s", 10, 100);
    assert_false(r.allowed);
    assert_int_equal(r.reset_ms, WALL0 + 1200);
    fake_now = 1109;
    assert_false(check(rl, "s", 10, 100).allowed);
    /* 10% slid out: room for exactly one call. */
    fake_now = 1110;
    r = check(rl, "s", 10, 100);
    assert_true(r.allowed);
    assert_int_equal(r.remaining, 0);
    assert_false(check(rl, "s", 10, 100).allowed);
    /* Half way: 10 * 0.5 + 2 = 7 used after this call, 3 remain. */
    fake_now = 1150;
    r = check(rl, "s", 10, 100);
    assert_true(r.allowed);
    assert_int_equal(r.remaining, 3);
    /* Two windows later everything is forgotten. */
    fake_now = 1300;
    r = check(rl, "s", 10, 100);
    assert_true(r.allowed);
    assert_int_equal(r.remaining, 9);

    /* No burst of 2 x limit across a boundary (contrast with the fixed test). */
    fake_now = 2000;
    check(rl, "b", 3, 100);
    fake_now = 2099;
    check(rl, "b", 3, 100);
    check(rl, "b", 3, 100);
    fake_now = 2100;
    assert_false(check(rl, "b", 3, 100).allowed);

    /* Explicit algorithm per call; the other algorithm restarts the key. */
    fake_now = 3000;
    dk_ratelimit_result f;
    assert_int_equal(dk_ratelimit_check_with(rl, "b", 3, 100, DK_RATELIMIT_FIXED, &f), 0);
    assert_true(f.allowed);
    assert_int_equal(f.remaining, 2);
    dk_ratelimit_free(rl);
}

static void test_invalid_arguments(void **state)
{
    (void)state;
    dk_ratelimit *rl = new_rl(DK_RATELIMIT_SLIDING, false);
    dk_ratelimit_result r;
    assert_int_equal(dk_ratelimit_check(rl, "", 1, 100, &r), DK_EINVAL);
    assert_int_equal(dk_ratelimit_check(rl, NULL, 1, 100, &r), DK_EINVAL);
    assert_int_equal(dk_ratelimit_check(rl, "k", 1, 0, &r), DK_EINVAL);
    assert_int_equal(dk_ratelimit_check(rl, "k", DK_RATELIMIT_MAX_LIMIT + 1, 100, &r), DK_EINVAL);
    char longkey[600];
    memset(longkey, 'x', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    assert_int_equal(dk_ratelimit_check(rl, longkey, 1, 100, &r), DK_ELIMIT);
    assert_false(r.allowed);
    dk_ratelimit_algorithm a;
    assert_int_equal(dk_ratelimit_algorithm_parse("fixed", &a), 0);
    assert_int_equal(a, DK_RATELIMIT_FIXED);
    assert_int_equal(dk_ratelimit_algorithm_parse("token", &a), DK_EINVAL);
    char key[64];
    assert_int_equal(dk_ratelimit_key("api.users.list", "192.168.1.1", key, sizeof(key)), 0);
    assert_string_equal(key, "ratelimit:api.users.list:192.168.1.1");
    assert_int_equal(dk_ratelimit_key("api.users.list", "192.168.1.1", key, 10), DK_ELIMIT);
    dk_ratelimit_free(rl);
    dk_ratelimit_free(NULL);
}

static void test_memory_bounded(void **state)
{
    (void)state;
    dk_ratelimit_options o;
    dk_ratelimit_options_init(&o);
    o.max_keys = 3;
    o.sweep_interval_ms = 1000;
    o.clock = fake_clock;
    fake_now = 1000;
    dk_ratelimit *rl = dk_ratelimit_new(&o);
    assert_non_null(rl);
    char key[16];
    for (int i = 0; i < 5; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        check(rl, key, 1, 60000);
    }
    assert_int_equal(dk_ratelimit_size(rl), 3);
    /* The least recently used keys went: k0 starts afresh, k4 is still blocked. */
    assert_true(check(rl, "k0", 1, 60000).allowed);
    assert_false(check(rl, "k4", 1, 60000).allowed);

    /* Expired windows are swept explicitly... */
    fake_now = 1000 + 2 * 60000;
    assert_int_equal(dk_ratelimit_sweep(rl), 3);
    assert_int_equal(dk_ratelimit_size(rl), 0);
    /* ...and periodically by checks. */
    check(rl, "a", 1, 10);
    check(rl, "b", 1, 10);
    fake_now += 5000;
    check(rl, "c", 1, 10);
    assert_int_equal(dk_ratelimit_size(rl), 1);
    dk_ratelimit_free(rl);
    assert_null(dk_ratelimit_new(&(dk_ratelimit_options){.max_keys = 0}));
}

struct race {
    dk_ratelimit *rl;
    dk_ratelimit_algorithm algo;
    atomic_int allowed;
};

static void *race_main(void *arg)
{
    struct race *rc = arg;
    for (int i = 0; i < 2000; i++) {
        dk_ratelimit_result r;
        if (dk_ratelimit_check_with(rc->rl, "shared", 1000, 600000, rc->algo, &r) == 0 &&
            r.allowed)
            atomic_fetch_add(&rc->allowed, 1);
        char key[32];
        snprintf(key, sizeof(key), "t%d", i % 50);
        dk_ratelimit_check_with(rc->rl, key, 5, 600000, rc->algo, &r);
    }
    return NULL;
}

static void test_concurrency(void **state)
{
    (void)state;
    for (int a = 0; a < 2; a++) {
        struct race rc = {.rl = new_rl(DK_RATELIMIT_SLIDING, false),
                          .algo = a ? DK_RATELIMIT_FIXED : DK_RATELIMIT_SLIDING};
        atomic_init(&rc.allowed, 0);
        pthread_t th[4];
        for (int i = 0; i < 4; i++)
            assert_int_equal(pthread_create(&th[i], NULL, race_main, &rc), 0);
        for (int i = 0; i < 4; i++)
            pthread_join(th[i], NULL);
        assert_int_equal(atomic_load(&rc.allowed), 1000);
        dk_ratelimit_free(rc.rl);
    }
}

/* A custom backend is used through the same facade. */
static int stub_hit(void *user, const char *key, uint64_t limit, uint64_t window_ms,
                    dk_ratelimit_algorithm algorithm, uint64_t now_ms, dk_ratelimit_hit *out)
{
    (void)key, (void)limit, (void)window_ms, (void)algorithm, (void)now_ms;
    (*(int *)user)++;
    out->allowed = false;
    out->remaining = 0;
    out->reset_in_ms = 1500;
    out->retry_in_ms = 1001;
    return 0;
}
static int stub_reset(void *user, const char *key)
{
    (void)user, (void)key;
    return DK_EUNAVAILABLE;
}
static void stub_destroy(void *user)
{
    *(int *)user = -100;
}

static void test_custom_backend(void **state)
{
    (void)state;
    int calls = 0;
    dk_ratelimit_backend be = {.hit = stub_hit, .reset = stub_reset, .destroy = stub_destroy,
                               .user = &calls};
    dk_ratelimit *rl = dk_ratelimit_new_with_backend(NULL, &be);
    assert_non_null(rl);
    dk_ratelimit_result r;
    assert_int_equal(dk_ratelimit_check(rl, "x", 5, 1000, &r), 0);
    assert_int_equal(calls, 1);
    assert_false(r.allowed);
    assert_int_equal(r.retry_after_s, 2);
    assert_int_equal(dk_ratelimit_reset(rl, "x"), DK_EUNAVAILABLE);
    assert_int_equal(dk_ratelimit_size(rl), 0);
    dk_ratelimit_free(rl);
    assert_int_equal(calls, -100);
}

/* ------------------------------------------------------------------ */
/* Client IP                                                           */

struct hdrs {
    const char *names[6];
    const char *values[6];
};

static const char *lookup(void *u, const char *name)
{
    struct hdrs *h = u;
    for (int i = 0; i < 6 && h->names[i]; i++)
        if (strcasecmp(h->names[i], name) == 0)
            return h->values[i];
    return NULL;
}

static const char *ip_of(const char *peer, bool trusted, struct hdrs *h)
{
    static char out[64];
    assert_int_equal(dk_client_ip(peer, trusted, lookup, h, out, sizeof(out)), 0);
    return out;
}

static void test_client_ip(void **state)
{
    (void)state;
    struct hdrs cf = {{"cf-connecting-ip"}, {"1.2.3.4"}};
    assert_string_equal(ip_of("9.9.9.9", true, &cf), "1.2.3.4");
    struct hdrs real = {{"x-real-ip"}, {"5.6.7.8"}};
    assert_string_equal(ip_of("9.9.9.9", true, &real), "5.6.7.8");
    struct hdrs xff = {{"x-forwarded-for"}, {"10.0.0.1, 10.0.0.2, 10.0.0.3"}};
    assert_string_equal(ip_of("9.9.9.9", true, &xff), "10.0.0.1");
    struct hdrs none = {{NULL}, {NULL}};
    assert_string_equal(ip_of("192.168.1.1", true, &none), "192.168.1.1");
    assert_string_equal(ip_of(NULL, true, &none), "unknown");
    struct hdrs bad = {{"x-real-ip"}, {"not-an-ip"}};
    assert_string_equal(ip_of(NULL, true, &bad), "unknown");
    struct hdrs v6 = {{"x-real-ip"}, {"2001:db8::1"}};
    assert_string_equal(ip_of("9.9.9.9", true, &v6), "2001:db8::1");

    /* Priority: CF > True-Client-IP > X-Real-IP > X-Forwarded-For. */
    struct hdrs all = {{"x-forwarded-for", "x-real-ip", "true-client-ip", "cf-connecting-ip"},
                       {"4.4.4.4", "3.3.3.3", "2.2.2.2", "1.1.1.1"}};
    assert_string_equal(ip_of("9.9.9.9", true, &all), "1.1.1.1");
    all.values[3] = "999.1.1.1"; /* invalid CF falls through */
    assert_string_equal(ip_of("9.9.9.9", true, &all), "2.2.2.2");
    all.names[2] = "x-other";
    assert_string_equal(ip_of("9.9.9.9", true, &all), "3.3.3.3");
    struct hdrs list = {{"x-real-ip", "x-forwarded-for"}, {"1.1.1.1, 2.2.2.2", "8.8.8.8"}};
    assert_string_equal(ip_of("9.9.9.9", true, &list), "8.8.8.8"); /* a list is not split */
    struct hdrs xbad = {{"x-forwarded-for"}, {"garbage, 10.0.0.2"}};
    assert_string_equal(ip_of("9.9.9.9", true, &xbad), "9.9.9.9");
    struct hdrs octet = {{"x-real-ip"}, {"1.2.3.256"}};
    assert_string_equal(ip_of("9.9.9.9", true, &octet), "9.9.9.9");
    struct hdrs mapped = {{"x-real-ip"}, {" ::ffff:1.2.3.4 "}};
    assert_string_equal(ip_of("9.9.9.9", true, &mapped), "::ffff:1.2.3.4");
    struct hdrs zone = {{"x-real-ip"}, {"fe80::1%eth0"}};
    assert_string_equal(ip_of("9.9.9.9", true, &zone), "9.9.9.9");

    /* Untrusted peer: headers are ignored entirely (spoofing). */
    assert_string_equal(ip_of("9.9.9.9", false, &cf), "9.9.9.9");
    assert_string_equal(ip_of("9.9.9.9", false, &xff), "9.9.9.9");
    assert_string_equal(ip_of("bogus", false, &cf), "unknown");

    char small[4];
    assert_int_equal(dk_client_ip("9.9.9.9", false, lookup, &none, small, sizeof(small)),
                     DK_ELIMIT);
    assert_int_equal(dk_client_ip("9.9.9.9", false, NULL, NULL, NULL, 0), DK_EINVAL);
}

static void test_client_ip_trusted(void **state)
{
    (void)state;
    const char *const trusted[] = {"10.0.0.0/8", "fd00::/8", NULL};
    char out[64];
    struct hdrs xff = {{"x-forwarded-for"}, {"203.0.113.9, 198.51.100.7, 10.1.1.1"}};
    /* From the right: 10.1.1.1 is our proxy, 198.51.100.7 is the first outsider. */
    assert_int_equal(dk_client_ip_trusted("10.0.0.5", trusted, lookup, &xff, out, sizeof(out)), 0);
    assert_string_equal(out, "198.51.100.7");
    /* Peer not trusted: socket address. */
    assert_int_equal(dk_client_ip_trusted("8.8.8.8", trusted, lookup, &xff, out, sizeof(out)), 0);
    assert_string_equal(out, "8.8.8.8");
    /* No list: nobody is trusted. */
    assert_int_equal(dk_client_ip_trusted("10.0.0.5", NULL, lookup, &xff, out, sizeof(out)), 0);
    assert_string_equal(out, "10.0.0.5");
    struct hdrs inner = {{"x-forwarded-for"}, {"10.9.9.9, 10.1.1.1"}};
    assert_int_equal(dk_client_ip_trusted("10.0.0.5", trusted, lookup, &inner, out, sizeof(out)),
                     0);
    assert_string_equal(out, "10.9.9.9");
    /* Single-address headers only when named (the client can send them too). */
    struct hdrs cf = {{"cf-connecting-ip", "x-forwarded-for"}, {"1.2.3.4", "5.5.5.5"}};
    assert_int_equal(dk_client_ip_trusted("fd00::1", trusted, lookup, &cf, out, sizeof(out)), 0);
    assert_string_equal(out, "5.5.5.5");
    assert_int_equal(dk_client_ip_resolve("fd00::1", trusted, "CF-Connecting-IP", lookup, &cf, out,
                                          sizeof(out)),
                     0);
    assert_string_equal(out, "1.2.3.4");
    assert_int_equal(dk_client_ip_resolve("fd00::1", trusted, "X-Real-IP", lookup, &cf, out,
                                          sizeof(out)),
                     0);
    assert_string_equal(out, "5.5.5.5");
    /* Named header from an untrusted peer: ignored. */
    assert_int_equal(dk_client_ip_resolve("8.8.4.4", trusted, "CF-Connecting-IP", lookup, &cf, out,
                                          sizeof(out)),
                     0);
    assert_string_equal(out, "8.8.4.4");
}

static void test_cidr(void **state)
{
    (void)state;
    assert_int_equal(dk_cidr_match("10.0.0.0/8", "10.200.3.4"), 1);
    assert_int_equal(dk_cidr_match("10.0.0.0/8", "11.0.0.1"), 0);
    assert_int_equal(dk_cidr_match("192.168.1.0/24", "192.168.1.255"), 1);
    assert_int_equal(dk_cidr_match("192.168.1.0/24", "192.168.2.0"), 0);
    assert_int_equal(dk_cidr_match("172.16.0.0/12", "172.31.255.255"), 1);
    assert_int_equal(dk_cidr_match("172.16.0.0/12", "172.32.0.0"), 0);
    assert_int_equal(dk_cidr_match("0.0.0.0/0", "1.2.3.4"), 1);
    assert_int_equal(dk_cidr_match("127.0.0.1", "127.0.0.1"), 1);
    assert_int_equal(dk_cidr_match("127.0.0.1", "127.0.0.2"), 0);
    assert_int_equal(dk_cidr_match("127.0.0.1/32", "::ffff:127.0.0.1"), 1);
    assert_int_equal(dk_cidr_match("2001:db8::/32", "2001:db8:ffff::1"), 1);
    assert_int_equal(dk_cidr_match("2001:db8::/32", "2001:db9::1"), 0);
    assert_int_equal(dk_cidr_match("fe80::/10", "febf::1"), 1);
    assert_int_equal(dk_cidr_match("fe80::/10", "fec0::1"), 0);
    assert_int_equal(dk_cidr_match("::1/128", "::1"), 1);
    assert_int_equal(dk_cidr_match("::/0", "1.2.3.4"), 1); /* mapped addresses are IPv6 too */
    assert_int_equal(dk_cidr_match("2001:db8::/32", "10.0.0.1"), 0);
    /* Invalid input never matches. */
    assert_int_equal(dk_cidr_match("10.0.0.0/33", "10.0.0.1"), 0);
    assert_int_equal(dk_cidr_match("10.0.0.0/", "10.0.0.1"), 0);
    assert_int_equal(dk_cidr_match("10.0.0.0/8x", "10.0.0.1"), 0);
    assert_int_equal(dk_cidr_match("::/129", "::1"), 0);
    assert_int_equal(dk_cidr_match("nonsense/8", "10.0.0.1"), 0);
    assert_int_equal(dk_cidr_match("10.0.0.0/8", "not-an-ip"), 0);
    assert_int_equal(dk_cidr_match(NULL, "10.0.0.1"), 0);
    assert_true(dk_ip_valid("::ffff:1.2.3.4"));
    assert_false(dk_ip_valid("1.2.3"));
}

static void test_duration(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint64_t ms;
    } ok[] = {{"500ms", 500}, {"100ms", 100},   {"10s", 10000},    {"30s", 30000},
              {"1m", 60000},  {"5m", 300000},   {"1h", 3600000},   {"2h", 7200000},
              {"1d", 86400000}, {"0s", 0},      {"250", 250}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint64_t v = 12345;
        assert_int_equal(dk_duration_parse(ok[i].text, &v, NULL), 0);
        assert_int_equal(v, ok[i].ms);
    }
    static const char *const bad[] = {"invalid", "10x", "10S", "1.5s", "-1s", " 1s", "1s ",
                                      "1h30m", "", "s", "99999999999999999999d"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t v = 0;
        dk_err err = {0};
        assert_int_equal(dk_duration_parse(bad[i], &v, &err), DK_EINVAL);
        assert_true(err.message[0] != '\0');
    }
    assert_int_equal(dk_duration_parse(NULL, &(uint64_t){0}, NULL), DK_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_facts),
        cmocka_unit_test(test_fixed_window_boundaries),
        cmocka_unit_test(test_sliding_window_boundaries),
        cmocka_unit_test(test_invalid_arguments),
        cmocka_unit_test(test_memory_bounded),
        cmocka_unit_test(test_concurrency),
        cmocka_unit_test(test_custom_backend),
        cmocka_unit_test(test_client_ip),
        cmocka_unit_test(test_client_ip_trusted),
        cmocka_unit_test(test_cidr),
        cmocka_unit_test(test_duration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
