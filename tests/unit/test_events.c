/* Unit tests for the event bus (include/donkey/events.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "donkey/events.h"
#include "donkey/loop.h"
#include "donkey/log.h"

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* A recorder handler: appends "<tag>:<event>" to a shared log. */
#define MAX_CALLS 64
struct rec {
    int calls;
    char log[MAX_CALLS][64];
    json_t *last;
    int ret;
};

static int record(const char *event, const json_t *data, void *user)
{
    struct rec *r = user;
    if (r->calls < MAX_CALLS)
        snprintf(r->log[r->calls], sizeof(r->log[0]), "%s", event);
    r->calls++;
    json_decref(r->last);
    r->last = json_deep_copy(data);
    return r->ret;
}

static void rec_reset(struct rec *r)
{
    json_decref(r->last);
    memset(r, 0, sizeof(*r));
}

/* Shared ordering log across handlers. */
static char order[256];
static int tagged(const char *event, const json_t *data, void *user)
{
    (void)event;
    (void)data;
    strncat(order, (const char *)user, sizeof(order) - strlen(order) - 1);
    return 0;
}

static dk_events *new_bus(size_t history)
{
    dk_events_options o;
    dk_events_options_init(&o);
    o.history_size = history;
    dk_events *ev = dk_events_new(&o);
    assert_non_null(ev);
    return ev;
}

static int emit_json(dk_events *ev, const char *name, const char *fmt, int value)
{
    json_t *d = json_pack(fmt, "v", value);
    int n = dk_events_emit(ev, name, d);
    json_decref(d);
    return n;
}

static void test_defaults_and_basic(void **state)
{
    (void)state;
    dk_events_options o;
    dk_events_options_init(&o);
    assert_int_equal(o.history_size, 1000);
    assert_int_equal(o.history_limit, 100);
    assert_null(o.logger);
    assert_null(o.loop);

    dk_events *ev = dk_events_new(NULL);
    struct rec a = {0}, b = {0};
    assert_true(dk_events_on(ev, "user.created", record, &a, NULL) > 0);
    assert_true(dk_events_on(ev, "user.created", record, &b, NULL) > 0);
    json_t *d = json_pack("{s:i, s:s}", "id", 1, "name", "Alice");
    assert_int_equal(dk_events_emit(ev, "user.created", d), 2);
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 1);
    assert_true(json_equal(a.last, d));
    assert_string_equal(a.log[0], "user.created");
    json_decref(d);
    /* NULL data is delivered as JSON null. */
    assert_int_equal(dk_events_emit(ev, "user.created", NULL), 2);
    assert_true(json_is_null(a.last));
    assert_int_equal(dk_events_emit(ev, "", NULL), DK_EINVAL);
    assert_int_equal(dk_events_on(ev, "", record, &a, NULL), DK_EINVAL);
    assert_int_equal(dk_events_on(ev, "x", NULL, &a, NULL), DK_EINVAL);
    rec_reset(&a);
    rec_reset(&b);
    dk_events_free(ev);
    dk_events_free(NULL);
}

static void test_pattern_semantics(void **state)
{
    (void)state;
    dk_events *ev = new_bus(0);
    struct rec user = {0}, all = {0}, shop = {0}, mid = {0}, q = {0}, exact_star = {0};
    dk_events_on(ev, "user.*", record, &user, NULL);
    dk_events_on(ev, "*", record, &all, NULL);
    dk_events_on(ev, "shop.order.*", record, &shop, NULL);
    dk_events_on(ev, "user.*.updated", record, &mid, NULL);
    dk_events_on(ev, "a?c", record, &q, NULL);    /* no `*`: exact key */
    dk_events_on(ev, "x.?*", record, &exact_star, NULL); /* `?` literal in patterns */

    dk_events_emit(ev, "user.created", NULL);
    dk_events_emit(ev, "user.profile.updated", NULL);
    dk_events_emit(ev, "user", NULL);
    dk_events_emit(ev, "post.created", NULL);
    dk_events_emit(ev, "user.", NULL);
    dk_events_emit(ev, "shop.order.paid", NULL);
    dk_events_emit(ev, "shop.orders", NULL);
    dk_events_emit(ev, "xuser.created", NULL);
    dk_events_emit(ev, "abc", NULL);
    dk_events_emit(ev, "a?c", NULL);
    dk_events_emit(ev, "x.yz", NULL);
    dk_events_emit(ev, "x.?z", NULL);

    /* `*` includes dots and the empty run; the whole name must match. */
    assert_int_equal(user.calls, 3);
    assert_string_equal(user.log[0], "user.created");
    assert_string_equal(user.log[1], "user.profile.updated");
    assert_string_equal(user.log[2], "user.");
    assert_int_equal(all.calls, 12);
    assert_int_equal(shop.calls, 1);
    assert_int_equal(mid.calls, 1);
    assert_int_equal(q.calls, 1);
    assert_string_equal(q.log[0], "a?c");
    assert_int_equal(exact_star.calls, 1);
    assert_string_equal(exact_star.log[0], "x.?z");

    /* A pattern key emitted literally runs that subscription once, not twice. */
    rec_reset(&user);
    assert_int_equal(dk_events_emit(ev, "user.*", NULL), 2); /* user.* and * */
    assert_int_equal(user.calls, 1);
    rec_reset(&user);
    rec_reset(&all);
    rec_reset(&shop);
    rec_reset(&mid);
    rec_reset(&q);
    rec_reset(&exact_star);
    dk_events_free(ev);
}

static void test_delivery_order(void **state)
{
    (void)state;
    dk_events *ev = new_bus(0);
    order[0] = '\0';
    /* Pattern keys run after exact subscribers, grouped by key in key-creation order. */
    dk_events_on(ev, "a.*", tagged, "P1", NULL);
    dk_events_on(ev, "*", tagged, "P2", NULL);
    dk_events_on(ev, "a.b", tagged, "E1", NULL);
    dk_events_on(ev, "a.*", tagged, "P1b", NULL);
    dk_events_on(ev, "a.b", tagged, "E2", NULL);
    assert_int_equal(dk_events_emit(ev, "a.b", NULL), 5);
    assert_string_equal(order, "E1E2P1P1bP2");
    dk_events_free(ev);
}

static void test_duplicate_subscription(void **state)
{
    (void)state;
    dk_events *ev = new_bus(0);
    struct rec r = {0};
    int64_t id1 = dk_events_on(ev, "dup", record, &r, NULL);
    int64_t id2 = dk_events_on(ev, "dup", record, &r, NULL);
    assert_true(id1 > 0);
    assert_int_equal(id1, id2);
    assert_int_equal(dk_events_emit(ev, "dup", NULL), 1);
    assert_int_equal(r.calls, 1);
    rec_reset(&r);
    dk_events_free(ev);
}

static void test_once_and_off(void **state)
{
    (void)state;
    dk_events *ev = new_bus(0);
    struct rec once = {0}, cancelled = {0}, sub = {0};
    assert_true(dk_events_once(ev, "tick", record, &once, NULL) > 0);
    int64_t cid = dk_events_once(ev, "tick", record, &cancelled, NULL);
    assert_int_equal(dk_events_off(ev, cid), 0);
    json_t *d1 = json_pack("{s:i}", "count", 1), *d2 = json_pack("{s:i}", "count", 2);
    dk_events_emit(ev, "tick", d1);
    dk_events_emit(ev, "tick", d2);
    assert_int_equal(once.calls, 1);
    assert_true(json_equal(once.last, d1));
    assert_int_equal(cancelled.calls, 0);
    json_decref(d1);
    json_decref(d2);

    int64_t id = dk_events_on(ev, "x", record, &sub, NULL);
    dk_events_emit(ev, "x", NULL);
    assert_int_equal(dk_events_off(ev, id), 0);
    assert_int_equal(dk_events_off(ev, id), DK_ENOTFOUND);
    dk_events_emit(ev, "x", NULL);
    assert_int_equal(sub.calls, 1);

    /* off_key: every handler under the exact key, other keys untouched. */
    struct rec c1 = {0}, c2 = {0}, pat = {0};
    dk_events_on(ev, "cleanup", record, &c1, NULL);
    dk_events_on(ev, "cleanup", record, &c2, NULL);
    dk_events_on(ev, "clean*", record, &pat, NULL);
    dk_events_emit(ev, "cleanup", NULL);
    assert_int_equal(c1.calls + c2.calls, 2);
    assert_int_equal(dk_events_off_key(ev, "cleanup", NULL, NULL), 2);
    dk_events_emit(ev, "cleanup", NULL);
    assert_int_equal(c1.calls + c2.calls, 2);
    assert_int_equal(pat.calls, 2);
    /* off_key with a handler removes only that one. */
    dk_events_on(ev, "k", record, &c1, NULL);
    dk_events_on(ev, "k", record, &c2, NULL);
    assert_int_equal(dk_events_off_key(ev, "k", record, &c1), 1);
    dk_events_emit(ev, "k", NULL);
    assert_int_equal(c1.calls, 1);
    assert_int_equal(c2.calls, 2);

    dk_events_stats st;
    dk_events_stats_get(ev, &st);
    assert_int_equal(st.subscriptions, 2); /* clean*, k/c2 */
    rec_reset(&once);
    rec_reset(&cancelled);
    rec_reset(&sub);
    rec_reset(&c1);
    rec_reset(&c2);
    rec_reset(&pat);
    dk_events_free(ev);
}

/* user_free runs exactly once, after the last call, also for failures. */
static atomic_int freed;
static void count_free(void *user)
{
    (void)user;
    atomic_fetch_add(&freed, 1);
}

struct self_off {
    dk_events *ev;
    int64_t id;
    int calls;
    bool freed_during_call;
};

static int off_self(const char *event, const json_t *data, void *user)
{
    (void)event;
    (void)data;
    struct self_off *s = user;
    s->calls++;
    int before = atomic_load(&freed);
    assert_int_equal(dk_events_off(s->ev, s->id), 0);
    /* The handler is still running: its user_free must not have run yet. */
    s->freed_during_call = atomic_load(&freed) != before;
    return 0;
}

struct off_other {
    dk_events *ev;
    int64_t victim;
};

static int off_next(const char *event, const json_t *data, void *user)
{
    (void)event;
    (void)data;
    struct off_other *o = user;
    dk_events_off(o->ev, o->victim);
    return 0;
}

static void test_off_inside_handler(void **state)
{
    (void)state;
    dk_events *ev = new_bus(0);
    atomic_store(&freed, 0);
    struct self_off s = {.ev = ev};
    s.id = dk_events_on(ev, "e", off_self, &s, count_free);
    assert_int_equal(dk_events_emit(ev, "e", NULL), 1);
    assert_int_equal(dk_events_emit(ev, "e", NULL), 0);
    assert_int_equal(s.calls, 1);
    assert_false(s.freed_during_call);
    assert_int_equal(atomic_load(&freed), 1);

    /* A handler removing a later one in the same emit: the later one is skipped. */
    struct rec victim = {0};
    struct off_other o = {.ev = ev};
    dk_events_on(ev, "f", off_next, &o, NULL);
    o.victim = dk_events_on(ev, "f", record, &victim, count_free);
    assert_int_equal(dk_events_emit(ev, "f", NULL), 1);
    assert_int_equal(victim.calls, 0);
    assert_int_equal(atomic_load(&freed), 2);

    /* A failed subscription runs user_free right away. */
    assert_int_equal(dk_events_on_async(ev, "g", record, &victim, count_free), DK_ESTATE);
    assert_int_equal(atomic_load(&freed), 3);

    /* Subscriptions left at free time are released once each. */
    dk_events_on(ev, "h", record, &victim, count_free);
    dk_events_once(ev, "h.*", record, &victim, count_free);
    dk_events_free(ev);
    assert_int_equal(atomic_load(&freed), 5);
    rec_reset(&victim);
}

struct reentrant {
    dk_events *ev;
    struct rec *inner;
    int depth;
};

static int emit_again(const char *event, const json_t *data, void *user)
{
    (void)data;
    struct reentrant *r = user;
    if (strcmp(event, "outer") == 0) {
        /* Emit and subscribe from inside a handler. */
        assert_true(dk_events_on(r->ev, "late", record, r->inner, NULL) > 0);
        assert_int_equal(dk_events_emit(r->ev, "inner", NULL), 1);
    }
    return 0;
}

static void test_emit_inside_handler(void **state)
{
    (void)state;
    dk_events *ev = new_bus(10);
    struct rec inner = {0};
    struct reentrant r = {.ev = ev, .inner = &inner};
    dk_events_on(ev, "outer", emit_again, &r, NULL);
    dk_events_on(ev, "inner", record, &inner, NULL);
    assert_int_equal(dk_events_emit(ev, "outer", NULL), 1);
    assert_int_equal(inner.calls, 1);
    assert_int_equal(dk_events_emit(ev, "late", NULL), 1);
    assert_int_equal(inner.calls, 2);
    /* History order: outer recorded before inner (recorded before delivery). */
    json_t *h = NULL;
    assert_int_equal(dk_events_history(ev, "*", DK_EVENTS_LIMIT_DEFAULT, &h), 0);
    assert_int_equal(json_array_size(h), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(h, 0), "event")), "outer");
    assert_string_equal(json_string_value(json_object_get(json_array_get(h, 1), "event")), "inner");
    json_decref(h);
    rec_reset(&inner);
    dk_events_free(ev);
}

static int add_during_emit(const char *event, const json_t *data, void *user)
{
    (void)event;
    (void)data;
    struct reentrant *r = user;
    dk_events_on(r->ev, "same", record, r->inner, NULL);
    return 0;
}

static void test_snapshot_iteration(void **state)
{
    (void)state;
    dk_events *ev = new_bus(0);
    struct rec added = {0};
    struct reentrant r = {.ev = ev, .inner = &added};
    dk_events_on(ev, "same", add_during_emit, &r, NULL);
    assert_int_equal(dk_events_emit(ev, "same", NULL), 1);
    assert_int_equal(added.calls, 0);
    assert_int_equal(dk_events_emit(ev, "same", NULL), 2);
    assert_int_equal(added.calls, 1);
    rec_reset(&added);
    dk_events_free(ev);
}

/* Captures log entries. */
struct captured {
    pthread_mutex_t lock;
    int errors;
    char last[160];
    char pattern[64];
};

static void capture(const dk_log_entry *e, void *user)
{
    struct captured *c = user;
    pthread_mutex_lock(&c->lock);
    if (e->level == DK_LOG_ERROR) {
        c->errors++;
        snprintf(c->last, sizeof(c->last), "%s", e->message);
        const char *p = json_string_value(json_object_get(e->data, "pattern"));
        snprintf(c->pattern, sizeof(c->pattern), "%s", p ? p : "");
    }
    pthread_mutex_unlock(&c->lock);
}

static int failing(const char *event, const json_t *data, void *user)
{
    (void)event;
    (void)data;
    (void)user;
    return DK_EINTERNAL;
}

static void test_failing_handler(void **state)
{
    (void)state;
    struct captured cap = {.lock = PTHREAD_MUTEX_INITIALIZER};
    dk_logger *lg = dk_logger_new_empty(DK_LOG_DEBUG);
    assert_non_null(lg);
    assert_int_equal(dk_logger_add_transport(lg, capture, &cap, NULL), 0);
    dk_events_options o;
    dk_events_options_init(&o);
    o.logger = lg;
    dk_events *ev = dk_events_new(&o);
    struct rec before = {0}, after = {0}, pat = {0};
    dk_events_on(ev, "job.done", record, &before, NULL);
    dk_events_on(ev, "job.done", failing, NULL, NULL);
    dk_events_on(ev, "job.done", record, &after, NULL);
    dk_events_on(ev, "job.*", failing, NULL, NULL);
    dk_events_on(ev, "job.*", record, &pat, NULL);
    assert_int_equal(dk_events_emit(ev, "job.done", NULL), 5);
    assert_int_equal(before.calls, 1);
    assert_int_equal(after.calls, 1);
    assert_int_equal(pat.calls, 1);
    dk_logger_flush(lg);
    pthread_mutex_lock(&cap.lock);
    assert_int_equal(cap.errors, 2);
    assert_string_equal(cap.last, "Pattern handler error for \"job.*\"");
    assert_string_equal(cap.pattern, "job.*");
    pthread_mutex_unlock(&cap.lock);
    dk_events_stats st;
    dk_events_stats_get(ev, &st);
    assert_int_equal(st.failed, 2);
    assert_int_equal(st.handled, 5);

    /* Without a logger failures are only counted. */
    dk_events *quiet = new_bus(0);
    dk_events_on(quiet, "x", failing, NULL, NULL);
    dk_events_on(quiet, "x", record, &after, NULL);
    assert_int_equal(dk_events_emit(quiet, "x", NULL), 2);
    assert_int_equal(after.calls, 2);
    dk_events_free(quiet);

    rec_reset(&before);
    rec_reset(&after);
    rec_reset(&pat);
    dk_events_free(ev);
    dk_logger_free(lg);
}

static void test_history(void **state)
{
    (void)state;
    dk_events *ev = new_bus(5);
    const char *msgs[] = {"first", "second", "third"};
    for (int i = 0; i < 3; i++) {
        json_t *d = json_pack("{s:s}", "msg", msgs[i]);
        dk_events_emit(ev, "log", d);
        json_decref(d);
    }
    json_t *h = NULL;
    assert_int_equal(dk_events_history(ev, "log", DK_EVENTS_LIMIT_DEFAULT, &h), 0);
    assert_int_equal(json_array_size(h), 3);
    json_t *r0 = json_array_get(h, 0), *r2 = json_array_get(h, 2);
    assert_string_equal(json_string_value(json_object_get(json_object_get(r0, "data"), "msg")),
                        "first");
    assert_string_equal(json_string_value(json_object_get(json_object_get(r2, "data"), "msg")),
                        "third");
    assert_string_equal(json_string_value(json_object_get(r0, "event")), "log");
    /* ISO-8601 timestamp with milliseconds, UTC. */
    const char *ts = json_string_value(json_object_get(r0, "timestamp"));
    assert_non_null(ts);
    assert_int_equal(strlen(ts), 24);
    assert_int_equal(ts[10], 'T');
    assert_int_equal(ts[23], 'Z');
    int64_t ms;
    assert_int_equal(dk_iso8601_parse(ts, &ms), 0);
    json_decref(h);

    /* Bounded: 5 kept, oldest dropped; history recorded with no listeners. */
    emit_json(ev, "user.created", "{s:i}", 1);
    emit_json(ev, "user.deleted", "{s:i}", 2);
    emit_json(ev, "post.created", "{s:i}", 3);
    assert_int_equal(dk_events_history(ev, "*", 100, &h), 0);
    assert_int_equal(json_array_size(h), 5);
    assert_string_equal(json_string_value(json_object_get(json_array_get(h, 0), "event")), "log");
    assert_string_equal(json_string_value(json_object_get(json_array_get(h, 4), "event")),
                        "post.created");
    json_decref(h);
    dk_events_stats st;
    dk_events_stats_get(ev, &st);
    assert_int_equal(st.history, 5);

    /* Filter by name, by pattern, and keep the newest `limit`, oldest first. */
    assert_int_equal(dk_events_history(ev, "log", 1, &h), 0);
    assert_int_equal(json_array_size(h), 1);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(json_array_get(h, 0), "data"), "msg")),
        "third");
    json_decref(h);
    assert_int_equal(dk_events_history(ev, "user.*", DK_EVENTS_LIMIT_DEFAULT, &h), 0);
    assert_int_equal(json_array_size(h), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(h, 1), "event")),
                        "user.deleted");
    json_decref(h);
    assert_int_equal(dk_events_history(ev, "*", 2, &h), 0);
    assert_int_equal(json_array_size(h), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(h, 0), "event")),
                        "user.deleted");
    json_decref(h);
    assert_int_equal(dk_events_history(ev, "log", 0, &h), 0);
    assert_int_equal(json_array_size(h), 0);
    json_decref(h);
    assert_int_equal(dk_events_history(ev, "log", -2, &h), DK_EINVAL);
    assert_null(h);

    /* The history holds a copy: changing the emitted value afterwards changes nothing. */
    json_t *d = json_pack("{s:i}", "n", 1);
    dk_events_emit(ev, "mut", d);
    json_object_set_new(d, "n", json_integer(2));
    json_decref(d);
    assert_int_equal(dk_events_history(ev, "mut", 10, &h), 0);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(json_array_get(h, 0), "data"), "n")), 1);
    json_decref(h);
    dk_events_free(ev);

    /* The default limit is 100. */
    ev = new_bus(1000);
    for (int i = 0; i < 150; i++)
        dk_events_emit(ev, "many", NULL);
    assert_int_equal(dk_events_history(ev, NULL, DK_EVENTS_LIMIT_DEFAULT, &h), 0);
    assert_int_equal(json_array_size(h), 100);
    json_decref(h);
    dk_events_free(ev);
}

/* ---- asynchronous handlers on the service loop ---- */

struct async_rec {
    dk_loop *loop;
    atomic_int calls;
    atomic_bool on_loop;
    atomic_int sum;
};

static int async_handler(const char *event, const json_t *data, void *user)
{
    (void)event;
    struct async_rec *a = user;
    if (!dk_loop_on_thread(a->loop))
        atomic_store(&a->on_loop, false);
    atomic_fetch_add(&a->sum, (int)json_integer_value(json_object_get(data, "v")));
    atomic_fetch_add(&a->calls, 1);
    return 0;
}

static bool wait_for(atomic_int *v, int want, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 5) {
        if (atomic_load(v) >= want)
            return true;
        sleep_ms(5);
    }
    return atomic_load(v) >= want;
}

static void noop(void *arg)
{
    (void)arg;
}

static void test_async_handlers(void **state)
{
    (void)state;
    dk_loop *loop = dk_loop_new();
    assert_non_null(loop);
    dk_events_options o;
    dk_events_options_init(&o);
    o.loop = loop;
    dk_events *ev = dk_events_new(&o);
    struct async_rec a = {.loop = loop}, once = {.loop = loop};
    atomic_store(&a.on_loop, true);
    atomic_store(&once.on_loop, true);
    atomic_store(&freed, 0);
    int64_t id = dk_events_on_async(ev, "async.*", async_handler, &a, count_free);
    assert_true(id > 0);
    assert_true(dk_events_once_async(ev, "async.*", async_handler, &once, NULL) > 0);
    struct rec sync = {0};
    dk_events_on(ev, "async.x", record, &sync, NULL);

    /* emit counts only synchronous handlers. */
    assert_int_equal(emit_json(ev, "async.x", "{s:i}", 2), 1);
    assert_int_equal(emit_json(ev, "async.y", "{s:i}", 3), 0);
    assert_true(wait_for(&a.calls, 2, 2000));
    assert_true(wait_for(&once.calls, 1, 2000));
    assert_int_equal(atomic_load(&a.sum), 5);
    assert_true(atomic_load(&a.on_loop));
    sleep_ms(20);
    assert_int_equal(atomic_load(&once.calls), 1);

    assert_int_equal(dk_events_off(ev, id), 0);
    emit_json(ev, "async.z", "{s:i}", 100);
    dk_loop_call(loop, noop, NULL); /* everything queued before has run */
    assert_int_equal(atomic_load(&a.calls), 2);
    assert_int_equal(atomic_load(&freed), 1);
    rec_reset(&sync);

    /* Free the bus with deliveries still queued: they are dropped safely. */
    dk_events_on_async(ev, "late", async_handler, &a, count_free);
    for (int i = 0; i < 20; i++)
        emit_json(ev, "late", "{s:i}", 1);
    dk_events_free(ev);
    dk_loop_free(loop);
    assert_int_equal(atomic_load(&freed), 2);
    assert_true(atomic_load(&a.calls) <= 22);
}

/* ---- distributed back end hook ---- */

struct bridge {
    int published;
    char last[64];
    int destroyed;
};

static int bridge_publish(void *user, const char *event, const json_t *data, int64_t wall_ms)
{
    (void)data;
    struct bridge *b = user;
    assert_true(wall_ms > 0);
    b->published++;
    snprintf(b->last, sizeof(b->last), "%s", event);
    return 0;
}

static void bridge_destroy(void *user)
{
    ((struct bridge *)user)->destroyed++;
}

static void test_backend_bridge(void **state)
{
    (void)state;
    struct bridge b = {0};
    dk_events_backend be = {.publish = bridge_publish, .destroy = bridge_destroy, .user = &b};
    dk_events_options o;
    dk_events_options_init(&o);
    o.backend = &be;
    dk_events *ev = dk_events_new(&o);
    struct rec r = {0};
    dk_events_on(ev, "order.*", record, &r, NULL);
    assert_int_equal(dk_events_emit(ev, "order.paid", NULL), 1);
    assert_int_equal(b.published, 1);
    assert_string_equal(b.last, "order.paid");
    /* Remote events are delivered locally and recorded, not published again. */
    json_t *d = json_pack("{s:s}", "from", "node-2");
    assert_int_equal(dk_events_deliver_remote(ev, "order.shipped", d), 1);
    json_decref(d);
    assert_int_equal(b.published, 1);
    assert_int_equal(r.calls, 2);
    assert_string_equal(json_string_value(json_object_get(r.last, "from")), "node-2");
    json_t *h = NULL;
    assert_int_equal(dk_events_history(ev, "order.*", 10, &h), 0);
    assert_int_equal(json_array_size(h), 2);
    json_decref(h);
    rec_reset(&r);
    dk_events_free(ev);
    assert_int_equal(b.destroyed, 1);
}

/* ---- concurrency stress: 4 threads emitting and subscribing ---- */

struct stress {
    dk_events *ev;
    atomic_int handled;
    atomic_int errors; /* cmocka asserts must stay on the main thread */
};

static struct stress shared_stress;

static int stress_handler(const char *event, const json_t *data, void *user)
{
    (void)event;
    (void)data;
    (void)user;
    atomic_fetch_add(&shared_stress.handled, 1);
    return 0;
}

static void *stress_thread(void *p)
{
    struct stress *s = &shared_stress;
    int me = *(int *)p; /* also the user pointer: identical (key, fn, user) would be deduplicated */
    char name[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(name, sizeof(name), "t%d.e%d", me, i % 10);
        int64_t id = dk_events_on(s->ev, (i % 2) ? "t*" : name, stress_handler, p, count_free);
        if (id <= 0)
            atomic_fetch_add(&s->errors, 1);
        json_t *d = json_pack("{s:i}", "i", i);
        if (dk_events_emit(s->ev, name, d) < 1)
            atomic_fetch_add(&s->errors, 1);
        json_decref(d);
        if (i % 3 == 0)
            dk_events_once(s->ev, "t*", stress_handler, p, count_free);
        if (dk_events_off(s->ev, id) != 0)
            atomic_fetch_add(&s->errors, 1);
        if (i % 50 == 0) {
            json_t *h = NULL;
            if (dk_events_history(s->ev, "t*", 20, &h) != 0 || json_array_size(h) > 20)
                atomic_fetch_add(&s->errors, 1);
            json_decref(h);
        }
    }
    return NULL;
}

static void test_stress(void **state)
{
    (void)state;
    shared_stress.ev = new_bus(100);
    atomic_store(&shared_stress.handled, 0);
    atomic_store(&shared_stress.errors, 0);
    atomic_store(&freed, 0);
    pthread_t th[4];
    int idx[4] = {0, 1, 2, 3};
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, stress_thread, &idx[i]), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&shared_stress.errors), 0);
    assert_true(atomic_load(&shared_stress.handled) >= 4 * 2000);
    dk_events_free(shared_stress.ev);
    /* Every subscription (on and once) released exactly once. */
    int subs = 4 * 2000 + 4 * ((2000 + 2) / 3);
    assert_int_equal(atomic_load(&freed), subs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_basic),
        cmocka_unit_test(test_pattern_semantics),
        cmocka_unit_test(test_delivery_order),
        cmocka_unit_test(test_duplicate_subscription),
        cmocka_unit_test(test_once_and_off),
        cmocka_unit_test(test_off_inside_handler),
        cmocka_unit_test(test_emit_inside_handler),
        cmocka_unit_test(test_snapshot_iteration),
        cmocka_unit_test(test_failing_handler),
        cmocka_unit_test(test_history),
        cmocka_unit_test(test_async_handlers),
        cmocka_unit_test(test_backend_bridge),
        cmocka_unit_test(test_stress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
