/* Unit tests for cron expressions and the scheduler (include/donkey/cron.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "donkey/cron.h"
#include "donkey/loop.h"
#include "donkey/trace.h"

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static int64_t at(const char *iso)
{
    int64_t ms;
    assert_int_equal(dk_iso8601_parse(iso, &ms), 0);
    return ms;
}

/* Next fire time after `after` as an ISO-8601 UTC string (static buffer). */
static const char *next_iso(const char *expr, const char *tz, const char *after)
{
    static char buf[32];
    int64_t out = 0;
    dk_err err = {0};
    int rc = dk_cron_next(expr, tz, at(after), &out, &err);
    if (rc != 0)
        fail_msg("dk_cron_next(%s) = %d: %s", expr, rc, err.message);
    return dk_iso8601(out, buf, sizeof(buf));
}

static void expect_error(const char *expr, const char *needle)
{
    dk_err err = {0};
    int64_t out;
    assert_int_equal(dk_cron_next(expr, NULL, 0, &out, &err), DK_EINVAL);
    if (strstr(err.message, needle) == NULL)
        fail_msg("'%s': message '%s' lacks '%s'", expr, err.message, needle);
}

static void test_parse_errors(void **state)
{
    (void)state;
    expect_error("* * * *", "expected 5 or 6 fields, got 4");
    expect_error("* * * * * * *", "expected 5 or 6 fields");
    expect_error("", "got 0");
    expect_error("60 * * * * *", "second value out of range 0-59");
    expect_error("* 60 * * * *", "minute value out of range");
    expect_error("0 24 * * *", "hour value out of range 0-23");
    expect_error("0 0 0 * *", "day-of-month value out of range 1-31");
    expect_error("0 0 32 * *", "day-of-month value out of range");
    expect_error("0 0 * 13 *", "month value out of range 1-12");
    expect_error("0 0 * * 8", "day-of-week value out of range 0-7");
    expect_error("*/0 * * * *", "step must be at least 1");
    expect_error("5-1 * * * *", "reversed");
    expect_error("0 0 31 2 *", "never fires");
    expect_error("0 0 30,31 2 *", "never fires");
    expect_error("0 0 31 4,6,9,11 *", "never fires");
    expect_error("abc * * * *", "invalid minute 'abc'");
    expect_error("MON * * * *", "invalid minute");
    expect_error("0 0 * FOO *", "invalid month");
    expect_error("1,,2 * * * *", "empty list item");
    expect_error("1- * * * *", "invalid minute");
    expect_error("*/ * * * *", "invalid minute");
    expect_error("? * * * *", "invalid minute");
    /* Accepted forms from the spec. */
    int64_t out;
    static const char *const ok[] = {"* * * * *",      "0 30 9 * * 1",  "*/5 * * * *",
                                     "0 9-17 * * 1-5", "0 0 1 1 *",     "0 0 31 1-12 *",
                                     "0 0 ? * MON",    "  0  0 * * *  ", "0 0 29 2 *"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        dk_err err = {0};
        if (dk_cron_next(ok[i], NULL, 0, &out, &err) != 0)
            fail_msg("'%s' refused: %s", ok[i], err.message);
    }
    /* A compatibility parse that requires both day fields still rejects 31 Feb. */
    dk_cron_expr *e = NULL;
    dk_err err = {0};
    assert_int_equal(dk_cron_expr_parse("0 0 31 2 1", DK_CRON_DOM_AND_DOW, &e, &err), DK_EINVAL);
    assert_null(e);
    /* With the OR rule, "31 Feb or Monday" fires every Monday. */
    assert_string_equal(next_iso("0 0 31 2 1", NULL, "2026-01-01T00:00:00Z"),
                        "2026-02-02T00:00:00.000Z");
}

static void test_next_basic(void **state)
{
    (void)state;
    /* Strictly after the reference time. */
    assert_string_equal(next_iso("0 0 * * *", NULL, "2025-01-01T00:00:00Z"),
                        "2025-01-02T00:00:00.000Z");
    assert_string_equal(next_iso("* * * * *", NULL, "2025-01-01T00:00:00.999Z"),
                        "2025-01-01T00:01:00.000Z");
    /* Month ends and year ends. */
    assert_string_equal(next_iso("0 0 1 * *", NULL, "2025-01-31T12:00:00Z"),
                        "2025-02-01T00:00:00.000Z");
    assert_string_equal(next_iso("0 12 31 * *", NULL, "2025-04-01T00:00:00Z"),
                        "2025-05-31T12:00:00.000Z");
    assert_string_equal(next_iso("59 23 31 12 *", NULL, "2025-12-31T23:59:00Z"),
                        "2026-12-31T23:59:00.000Z");
    assert_string_equal(next_iso("0 0 30 * *", NULL, "2025-01-30T00:00:00Z"),
                        "2025-03-30T00:00:00.000Z");
    /* Leap years. */
    assert_string_equal(next_iso("0 0 29 2 *", NULL, "2025-01-01T00:00:00Z"),
                        "2028-02-29T00:00:00.000Z");
    assert_string_equal(next_iso("0 0 29 2 *", NULL, "2096-03-01T00:00:00Z"),
                        "2104-02-29T00:00:00.000Z"); /* 2100 is not a leap year */
    /* 6 fields: seconds. */
    assert_string_equal(next_iso("*/15 * * * * *", NULL, "2025-06-01T12:00:07.500Z"),
                        "2025-06-01T12:00:15.000Z");
    assert_string_equal(next_iso("*/15 * * * * *", NULL, "2025-06-01T12:00:45Z"),
                        "2025-06-01T12:01:00.000Z");
    assert_string_equal(next_iso("30 30 9 * * 1", NULL, "2026-01-01T00:00:00Z"),
                        "2026-01-05T09:30:30.000Z");
    /* Steps and ranges, including a-b/s. */
    assert_string_equal(next_iso("1-10/3 * * * *", NULL, "2025-01-01T00:04:00Z"),
                        "2025-01-01T00:07:00.000Z");
    assert_string_equal(next_iso("1-10/3 * * * *", NULL, "2025-01-01T00:10:00Z"),
                        "2025-01-01T01:01:00.000Z");
    assert_string_equal(next_iso("50/5 * * * *", NULL, "2025-01-01T00:56:00Z"),
                        "2025-01-01T01:50:00.000Z");
    assert_string_equal(next_iso("0 9-17/4 * * *", NULL, "2025-01-01T14:00:00Z"),
                        "2025-01-01T17:00:00.000Z");
    /* Names and 7 = Sunday. 2026-01-01 is a Thursday. */
    assert_string_equal(next_iso("0 0 * * SUN", NULL, "2026-01-01T00:00:00Z"),
                        "2026-01-04T00:00:00.000Z");
    assert_string_equal(next_iso("0 0 * * 7", NULL, "2026-01-01T00:00:00Z"),
                        "2026-01-04T00:00:00.000Z");
    assert_string_equal(next_iso("0 0 * * 0", NULL, "2026-01-01T00:00:00Z"),
                        "2026-01-04T00:00:00.000Z");
    assert_string_equal(next_iso("0 0 * * fri-sat", NULL, "2026-01-01T00:00:00Z"),
                        "2026-01-02T00:00:00.000Z");
    assert_string_equal(next_iso("0 0 1 jun-AUG *", NULL, "2026-01-01T00:00:00Z"),
                        "2026-06-01T00:00:00.000Z");
    assert_string_equal(next_iso("0 0 * * 5-7", NULL, "2026-01-05T00:00:00Z"),
                        "2026-01-09T00:00:00.000Z");
}

/* Issue 16: `a-a/s` is just `a`; day-of-week 7 is Sunday everywhere and `a/s` runs up to 7. */
static void test_equal_range_step_and_sunday7(void **state)
{
    (void)state;
    /* 2026-01-01 is a Thursday. */
    assert_string_equal(next_iso("0 0 5-5/2 * *", NULL, "2026-01-05T00:00:00Z"),
                        "2026-02-05T00:00:00.000Z"); /* not the 7th */
    assert_string_equal(next_iso("0 3-3/1 * * *", NULL, "2026-01-01T03:00:00Z"),
                        "2026-01-02T03:00:00.000Z"); /* not 04:00 */
    assert_string_equal(next_iso("5-5/2 * * * * *", NULL, "2026-01-01T00:00:05Z"),
                        "2026-01-01T00:01:05.000Z");
    assert_string_equal(next_iso("0 0 * * 7/1", NULL, "2026-01-01T00:00:00Z"),
                        "2026-01-04T00:00:00.000Z");
    assert_string_equal(next_iso("0 0 * * 7/1", NULL, "2026-01-04T00:00:00Z"),
                        "2026-01-11T00:00:00.000Z");
    assert_string_equal(next_iso("0 0 * * 7-7", NULL, "2026-01-01T00:00:00Z"),
                        "2026-01-04T00:00:00.000Z");
    /* 2/5 = Tuesday and 7 (Sunday). */
    assert_string_equal(next_iso("0 0 * * 2/5", NULL, "2026-01-01T00:00:00Z"),
                        "2026-01-04T00:00:00.000Z");
    assert_string_equal(next_iso("0 0 * * 2/5", NULL, "2026-01-04T00:00:00Z"),
                        "2026-01-06T00:00:00.000Z");
    assert_string_equal(next_iso("0 0 * * 2/5", NULL, "2026-01-06T00:00:00Z"),
                        "2026-01-11T00:00:00.000Z");
    /* A star still means 0-6: every 2nd day is Sunday, Tuesday, Thursday, Saturday. */
    assert_string_equal(next_iso("0 0 * * */2", NULL, "2026-01-01T00:00:00Z"),
                        "2026-01-03T00:00:00.000Z");
    expect_error("0 0 * * 8/1", "day-of-week value out of range 0-7");
}

static void test_dom_dow_semantics(void **state)
{
    (void)state;
    /* Both restricted: the 1st OR a Monday. */
    assert_string_equal(next_iso("0 9 1 * 1", NULL, "2026-01-01T10:00:00Z"),
                        "2026-01-05T09:00:00.000Z");
    assert_string_equal(next_iso("0 9 1 * 1", NULL, "2026-01-26T10:00:00Z"),
                        "2026-02-01T09:00:00.000Z");
    /* One is '*': only the other decides. */
    assert_string_equal(next_iso("0 9 1 * *", NULL, "2026-01-01T10:00:00Z"),
                        "2026-02-01T09:00:00.000Z");
    assert_string_equal(next_iso("0 9 */10 * 1", NULL, "2026-01-01T10:00:00Z"),
                        "2026-05-11T09:00:00.000Z"); /* dom starts with '*': AND, not OR */
    /* Compatibility flag: both must match (the 1st that is a Monday). */
    dk_cron_expr *e;
    assert_int_equal(dk_cron_expr_parse("0 9 1 * 1", DK_CRON_DOM_AND_DOW, &e, NULL), 0);
    int64_t out;
    char buf[32];
    assert_int_equal(dk_cron_expr_next(e, "UTC", at("2026-01-01T10:00:00Z"), &out, NULL), 0);
    assert_string_equal(dk_iso8601(out, buf, sizeof(buf)), "2026-06-01T09:00:00.000Z");
    dk_cron_expr_free(e);
}

static void test_dst_new_york(void **state)
{
    (void)state;
    const char *ny = "America/New_York";
    const char *tz_before = getenv("TZ");
    char *saved = tz_before ? strdup(tz_before) : NULL;
    /* Winter (EST, -5) and summer (EDT, -4) offsets. */
    assert_string_equal(next_iso("0 9 * * *", ny, "2026-01-10T00:00:00Z"),
                        "2026-01-10T14:00:00.000Z");
    assert_string_equal(next_iso("0 9 * * *", ny, "2026-07-10T00:00:00Z"),
                        "2026-07-10T13:00:00.000Z");
    /* 2026-03-08 02:30 does not exist: skipped, next is 03-09 02:30 EDT. */
    assert_string_equal(next_iso("30 2 * * *", ny, "2026-03-07T17:00:00Z"),
                        "2026-03-09T06:30:00.000Z");
    /* Every minute: 01:59 EST is followed by 03:00 EDT. */
    assert_string_equal(next_iso("* * * * *", ny, "2026-03-08T06:59:00Z"),
                        "2026-03-08T07:00:00.000Z");
    /* 2026-11-01 01:30 happens twice: fires at the first (EDT) only. */
    assert_string_equal(next_iso("30 1 * * *", ny, "2026-11-01T04:00:00Z"),
                        "2026-11-01T05:30:00.000Z");
    assert_string_equal(next_iso("30 1 * * *", ny, "2026-11-01T05:30:00Z"),
                        "2026-11-02T06:30:00.000Z");
    assert_string_equal(next_iso("30 1 * * *", ny, "2026-11-01T06:00:00Z"),
                        "2026-11-02T06:30:00.000Z");
    /* The repeated hour's local times do not fire again. */
    assert_string_equal(next_iso("0 * * * *", ny, "2026-11-01T05:00:00Z"),
                        "2026-11-01T07:00:00.000Z");
    /* Other zones: a half-hour offset. */
    assert_string_equal(next_iso("0 0 * * *", "Asia/Kolkata", "2026-01-01T00:00:00Z"),
                        "2026-01-01T18:30:00.000Z");
    /* The process TZ is restored. */
    const char *tz_after = getenv("TZ");
    if (saved == NULL)
        assert_null(tz_after);
    else
        assert_string_equal(tz_after, saved);
    free(saved);

    int64_t out;
    dk_err err = {0};
    assert_int_equal(dk_cron_next("* * * * *", "Mars/Olympus", 0, &out, &err), DK_EINVAL);
    assert_non_null(strstr(err.message, "Mars/Olympus"));
    assert_int_equal(dk_cron_next("* * * * *", "../../etc/passwd", 0, &out, NULL), DK_EINVAL);
    assert_int_equal(dk_cron_next("* * * * *", NULL, -1, &out, NULL), DK_EINVAL);
    /* Found by fuzz_cron: an instant near INT64_MAX overflowed the ms result. */
    assert_int_equal(dk_cron_next("* * 6 * *", NULL, INT64_MAX - 5, &out, NULL), DK_EINVAL);
    assert_int_equal(dk_cron_next("* * * * *", NULL, 253402300680000LL, &out, NULL), 0);
    assert_int_equal(out, 253402300740000LL); /* 9999-12-31T23:59:00Z */
    assert_true(dk_cron_tz_valid("Europe/Berlin"));
    assert_true(dk_cron_tz_valid(NULL));
    assert_false(dk_cron_tz_valid("Europe/Nowhere"));
}

/* ------------------------------------------------------------------ */
/* Scheduler                                                           */

struct counter {
    atomic_int runs;
    atomic_int active;
    atomic_int max_active;
    atomic_int freed;
    int sleep_ms;
    int result;
};

static int count_fn(const char *name, void *user)
{
    (void)name;
    struct counter *c = user;
    int now = atomic_fetch_add(&c->active, 1) + 1;
    int seen = atomic_load(&c->max_active);
    while (now > seen && !atomic_compare_exchange_weak(&c->max_active, &seen, now))
        ;
    if (c->sleep_ms)
        sleep_ms(c->sleep_ms);
    atomic_fetch_add(&c->runs, 1);
    atomic_fetch_sub(&c->active, 1);
    return c->result;
}

static void count_free(void *user)
{
    atomic_fetch_add(&((struct counter *)user)->freed, 1);
}

/* Counters live in the fixture: tasks still scheduled at teardown are released then. */
struct fixture {
    dk_loop *loop;
    dk_cron *cron;
    struct counter c[4];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->loop = dk_loop_new();
    dk_cron_options o;
    dk_cron_options_init(&o);
    o.loop = f->loop;
    f->cron = dk_cron_new(&o);
    if (f->loop == NULL || f->cron == NULL)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    dk_cron_stop(f->cron, 5000);
    dk_cron_free(f->cron);
    dk_loop_free(f->loop);
    free(f);
    return 0;
}

static void schedule(dk_cron *cron, const char *name, const char *expr, struct counter *c,
                     char *id)
{
    dk_err err = {0};
    int rc = dk_cron_schedule(cron, name, expr, count_fn, c, count_free, NULL, id, &err);
    if (rc != 0)
        fail_msg("schedule %s: %s", expr, err.message);
}

static void test_fires_every_second(void **state)
{
    struct fixture *f = *state;
    struct counter *c = &f->c[0];
    *c = (struct counter){0};
    char id[DK_CRON_ID_SIZE];
    schedule(f->cron, "tick", "* * * * * *", c, id);
    assert_int_equal(dk_cron_start(f->cron), 0);
    assert_int_equal(dk_cron_start(f->cron), 0); /* idempotent */
    sleep_ms(2500);
    assert_int_equal(dk_cron_stop(f->cron, 2000), 0);
    int runs = atomic_load(&c->runs);
    if (runs < 2 || runs > 3)
        fail_msg("expected 2-3 runs in 2.5 s, got %d", runs);
    json_t *t = dk_cron_get(f->cron, id);
    assert_non_null(t);
    assert_int_equal(json_integer_value(json_object_get(t, "runs")), runs);
    assert_true(json_is_string(json_object_get(t, "lastRun")));
    json_decref(t);
    /* Stopped: no more runs. */
    sleep_ms(1200);
    assert_int_equal(atomic_load(&c->runs), runs);
}

static void test_list_get_unschedule(void **state)
{
    struct fixture *f = *state;
    struct counter *c1 = &f->c[1];
    *c1 = (struct counter){0};
    struct counter *c2 = &f->c[2];
    *c2 = (struct counter){0};
    char id1[DK_CRON_ID_SIZE], id2[DK_CRON_ID_SIZE];
    schedule(f->cron, "task1", "0 30 9 * * 1", c1, id1);
    schedule(f->cron, "task2", "*/5 * * * *", c2, id2);
    assert_int_equal(strncmp(id1, "cron_", 5), 0);
    assert_string_not_equal(id1, id2);

    json_t *list = dk_cron_list(f->cron);
    assert_int_equal(json_array_size(list), 2);
    json_t *t = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_object_get(t, "id")), id1);
    assert_string_equal(json_string_value(json_object_get(t, "name")), "task1");
    assert_string_equal(json_string_value(json_object_get(t, "expression")), "0 30 9 * * 1");
    assert_true(json_is_true(json_object_get(t, "enabled")));
    assert_true(json_is_null(json_object_get(t, "lastRun")));
    const char *next = json_string_value(json_object_get(t, "nextRun"));
    assert_non_null(next);
    assert_int_equal(strlen(next), 24);
    assert_int_equal(next[23], 'Z');
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "name")),
                        "task2");
    json_decref(list);

    /* Default name is the id. */
    char id3[DK_CRON_ID_SIZE];
    schedule(f->cron, NULL, "0 0 1 1 *", c1, id3);
    t = dk_cron_get(f->cron, id3);
    assert_string_equal(json_string_value(json_object_get(t, "name")), id3);
    json_decref(t);

    assert_int_equal(dk_cron_unschedule(f->cron, id1), 0);
    assert_int_equal(atomic_load(&c1->freed), 1);
    assert_int_equal(dk_cron_unschedule(f->cron, id1), DK_ENOTFOUND);
    assert_int_equal(dk_cron_unschedule(f->cron, id2), 0);
    assert_int_equal(dk_cron_unschedule(f->cron, id3), 0);
    list = dk_cron_list(f->cron);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    assert_null(dk_cron_get(f->cron, id1));
    assert_int_equal(atomic_load(&c2->freed), 1);

    /* A refused schedule still releases the user data, and says why. */
    struct counter *c4 = &f->c[3];
    *c4 = (struct counter){0};
    dk_err err = {0};
    assert_int_equal(dk_cron_schedule(f->cron, "bad", "*/0 * * * *", count_fn, c4, count_free,
                                      NULL, NULL, &err),
                     DK_EINVAL);
    assert_non_null(strstr(err.message, "step"));
    assert_int_equal(atomic_load(&c4->freed), 1);
    dk_cron_task_options to;
    dk_cron_task_options_init(&to);
    to.timezone = "Nowhere/Land";
    assert_int_equal(dk_cron_schedule(f->cron, "bad", "* * * * *", count_fn, c4, count_free,
                                      &to, NULL, &err),
                     DK_EINVAL);
    assert_int_equal(atomic_load(&c4->freed), 2);
}

static void test_trigger(void **state)
{
    struct fixture *f = *state;
    struct counter *c = &f->c[0];
    *c = (struct counter){0};
    char id[DK_CRON_ID_SIZE];
    schedule(f->cron, "yearly", "0 0 1 1 *", c, id);
    json_t *before = dk_cron_get(f->cron, id);
    int result = 99;
    assert_int_equal(dk_cron_trigger(f->cron, id, &result), 0); /* scheduler not started */
    assert_int_equal(result, 0);
    assert_int_equal(atomic_load(&c->runs), 1);
    json_t *after = dk_cron_get(f->cron, id);
    assert_true(json_is_string(json_object_get(after, "lastRun")));
    assert_true(json_equal(json_object_get(before, "nextRun"), json_object_get(after, "nextRun")));
    json_decref(before);
    json_decref(after);

    /* Paused tasks run when triggered; failures reach the caller. */
    assert_int_equal(dk_cron_pause(f->cron, id), 0);
    c->result = DK_EIO;
    assert_int_equal(dk_cron_trigger(f->cron, id, &result), 0);
    assert_int_equal(result, DK_EIO);
    assert_int_equal(atomic_load(&c->runs), 2);
    json_t *t = dk_cron_get(f->cron, id);
    assert_int_equal(json_integer_value(json_object_get(t, "failures")), 1);
    json_decref(t);

    /* Fire and forget. */
    c->result = 0;
    assert_int_equal(dk_cron_trigger(f->cron, id, NULL), 0);
    for (int i = 0; i < 200 && atomic_load(&c->runs) < 3; i++)
        sleep_ms(10);
    assert_int_equal(atomic_load(&c->runs), 3);
    assert_int_equal(dk_cron_trigger(f->cron, "cron_0_0", &result), DK_ENOTFOUND);

    /* A running task is not started twice. */
    c->sleep_ms = 300;
    assert_int_equal(dk_cron_trigger(f->cron, id, NULL), 0);
    assert_int_equal(dk_cron_trigger(f->cron, id, NULL), DK_EBUSY);
    assert_int_equal(dk_cron_stop(f->cron, 10), DK_EBUSY);
    assert_int_equal(dk_cron_stop(f->cron, 3000), 0);
    assert_int_equal(atomic_load(&c->runs), 4);
}

/* lastDurationMs / lastResult of the last finished run, and a trace per run
 * (dk_trace_current_id() inside the body; issue 17). */
static char traced[2][33];
static atomic_int ntraced;

static int trace_fn(const char *name, void *user)
{
    (void)name;
    (void)user;
    char buf[33];
    int i = atomic_fetch_add(&ntraced, 1);
    if (i < 2 && dk_trace_current_id(buf) != NULL)
        memcpy(traced[i], buf, 33);
    return DK_EIO;
}

static void test_last_run_and_trace(void **state)
{
    struct fixture *f = *state;
    char id[DK_CRON_ID_SIZE];
    dk_err err = {0};
    assert_int_equal(dk_cron_schedule(f->cron, "traced", "0 0 1 1 *", trace_fn, NULL, NULL, NULL,
                                      id, &err),
                     0);
    json_t *t = dk_cron_get(f->cron, id);
    assert_true(json_is_null(json_object_get(t, "lastDurationMs")));
    assert_true(json_is_null(json_object_get(t, "lastResult")));
    json_decref(t);
    int result = 0;
    assert_int_equal(dk_cron_trigger(f->cron, id, &result), 0);
    assert_int_equal(dk_cron_trigger(f->cron, id, &result), 0);
    assert_int_equal(result, DK_EIO);
    t = dk_cron_get(f->cron, id);
    assert_int_equal(json_integer_value(json_object_get(t, "lastResult")), DK_EIO);
    assert_true(json_is_integer(json_object_get(t, "lastDurationMs")));
    json_decref(t);
    assert_int_equal(atomic_load(&ntraced), 2);
    assert_int_equal(strlen(traced[0]), 32);
    assert_int_equal(strlen(traced[1]), 32);
    assert_string_not_equal(traced[0], traced[1]); /* each run its own trace */
    char buf[33];
    assert_null(dk_trace_current_id(buf)); /* not left behind on this thread */
}

static void test_pause_resume(void **state)
{
    struct fixture *f = *state;
    struct counter *c = &f->c[0];
    *c = (struct counter){0};
    char id[DK_CRON_ID_SIZE];
    schedule(f->cron, "p", "* * * * * *", c, id);
    json_t *t = dk_cron_get(f->cron, id);
    assert_true(json_is_true(json_object_get(t, "enabled")));
    json_decref(t);
    assert_int_equal(dk_cron_pause(f->cron, id), 0);
    t = dk_cron_get(f->cron, id);
    assert_true(json_is_false(json_object_get(t, "enabled")));
    assert_true(json_is_null(json_object_get(t, "nextRun")));
    json_decref(t);
    assert_int_equal(dk_cron_start(f->cron), 0);
    sleep_ms(1300);
    assert_int_equal(atomic_load(&c->runs), 0);
    int64_t before = dk_wall_ms();
    assert_int_equal(dk_cron_resume(f->cron, id), 0);
    t = dk_cron_get(f->cron, id);
    assert_true(json_is_true(json_object_get(t, "enabled")));
    int64_t next;
    assert_int_equal(dk_iso8601_parse(json_string_value(json_object_get(t, "nextRun")), &next), 0);
    assert_true(next > before && next <= before + 1000);
    json_decref(t);
    sleep_ms(1600);
    assert_true(atomic_load(&c->runs) >= 1);
    assert_int_equal(dk_cron_pause(f->cron, "nope"), DK_ENOTFOUND);
    assert_int_equal(dk_cron_resume(f->cron, "nope"), DK_ENOTFOUND);
}

static void test_no_overlap(void **state)
{
    struct fixture *f = *state;
    struct counter *c = &f->c[0];
    *c = (struct counter){.sleep_ms = 2200};
    char id[DK_CRON_ID_SIZE];
    schedule(f->cron, "slow", "* * * * * *", c, id);
    assert_int_equal(dk_cron_start(f->cron), 0);
    sleep_ms(3600);
    assert_int_equal(dk_cron_stop(f->cron, 5000), 0);
    assert_int_equal(atomic_load(&c->max_active), 1);
    json_t *t = dk_cron_get(f->cron, id);
    if (json_integer_value(json_object_get(t, "skipped")) < 1)
        fail_msg("expected skipped occurrences, got %s", json_dumps(t, 0));
    json_decref(t);
    assert_true(atomic_load(&c->runs) >= 1 && atomic_load(&c->runs) <= 2);
}

static void test_unschedule_running(void **state)
{
    struct fixture *f = *state;
    struct counter *c = &f->c[0];
    *c = (struct counter){.sleep_ms = 400};
    char id[DK_CRON_ID_SIZE];
    schedule(f->cron, "r", "0 0 1 1 *", c, id);
    assert_int_equal(dk_cron_trigger(f->cron, id, NULL), 0);
    sleep_ms(100);
    assert_int_equal(dk_cron_unschedule(f->cron, id), 0);
    assert_int_equal(atomic_load(&c->freed), 0); /* still running */
    assert_int_equal(dk_cron_stop(f->cron, 3000), 0);
    for (int i = 0; i < 100 && atomic_load(&c->freed) == 0; i++)
        sleep_ms(10);
    assert_int_equal(atomic_load(&c->freed), 1);
    assert_int_equal(atomic_load(&c->runs), 1);
}

static void test_lifecycle(void **state)
{
    (void)state;
    /* Stop without start, free with tasks left, constructor checks. */
    dk_loop *loop = dk_loop_new();
    dk_cron_options o;
    dk_cron_options_init(&o);
    assert_null(dk_cron_new(&o)); /* no loop */
    o.loop = loop;
    o.timezone = "Nowhere/Land";
    assert_null(dk_cron_new(&o));
    o.timezone = "Europe/Berlin";
    dk_cron *cron = dk_cron_new(&o);
    assert_non_null(cron);
    assert_int_equal(dk_cron_stop(cron, 0), 0);
    struct counter c = {0};
    char id[DK_CRON_ID_SIZE];
    schedule(cron, "x", "0 12 * * *", &c, id);
    json_t *t = dk_cron_get(cron, id);
    assert_string_equal(json_string_value(json_object_get(t, "timezone")), "Europe/Berlin");
    json_decref(t);
    assert_int_equal(dk_cron_start(cron), 0);
    dk_cron_free(cron);
    assert_int_equal(atomic_load(&c.freed), 1);
    dk_cron_free(NULL);
    dk_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_next_basic),
        cmocka_unit_test(test_equal_range_step_and_sunday7),
        cmocka_unit_test(test_dom_dow_semantics),
        cmocka_unit_test(test_dst_new_york),
        cmocka_unit_test_setup_teardown(test_fires_every_second, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_get_unschedule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trigger, setup, teardown),
        cmocka_unit_test_setup_teardown(test_last_run_and_trace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_overlap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unschedule_running, setup, teardown),
        cmocka_unit_test(test_lifecycle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
