/* Unit tests for the SSE service (include/donkey/sse.h): exact frame bytes,
 * field checks, and the registry operations on streams that are never sent
 * (no HTTP server: frames just queue). Wire behaviour over sockets is in
 * tests/http/test_sse.py. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "donkey/loop.h"
#include "donkey/sse.h"
#include "internal.h"

/* ---- framing ---- */

static void expect_frame(const char *id, const char *event, const char *data, size_t len,
                         const char *want)
{
    dk_buf *b = NULL;
    assert_int_equal(dk_sse_format(id, event, data, len, &b), 0);
    size_t n;
    const char *p = dk_buf_data(b, &n);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(p, want, n);
    assert_string_equal(p, want);
    dk_buf_unref(b);
}

#define FRAME(id, ev, data, want) expect_frame(id, ev, data, strlen(data), want)

static void test_format_with_and_without_id(void **state)
{
    FRAME("msg-123", "notification", "{\"message\":\"Hello\"}",
          "id: msg-123\nevent: notification\ndata: {\"message\":\"Hello\"}\n\n");
    FRAME(NULL, "update", "x", "event: update\ndata: x\n\n");
    FRAME("", "update", "x", "event: update\ndata: x\n\n");
    FRAME("7", NULL, "x", "id: 7\nevent: message\ndata: x\n\n");
}

static void test_format_line_splitting(void **state)
{
    FRAME(NULL, "e", "a\nb", "event: e\ndata: a\ndata: b\n\n");
    FRAME(NULL, "e", "a\r\nb", "event: e\ndata: a\ndata: b\n\n");
    FRAME(NULL, "e", "a\rb", "event: e\ndata: a\ndata: b\n\n");
    FRAME(NULL, "e", "x\r\ny\rz\nw", "event: e\ndata: x\ndata: y\ndata: z\ndata: w\n\n");
    FRAME(NULL, "e", "a\n\nb", "event: e\ndata: a\ndata: \ndata: b\n\n");
    FRAME(NULL, "e", "a\r\r\nb", "event: e\ndata: a\ndata: \ndata: b\n\n");
    FRAME(NULL, "e", "a\n", "event: e\ndata: a\ndata: \n\n");
    FRAME(NULL, "e", "\n", "event: e\ndata: \ndata: \n\n");
    FRAME(NULL, "e", "a\r", "event: e\ndata: a\ndata: \n\n");
    FRAME(NULL, "e", "", "event: e\ndata: \n\n");
    expect_frame(NULL, "e", NULL, 0, "event: e\ndata: \n\n");
    /* Only `len` bytes count. */
    expect_frame(NULL, "e", "abc\ndef", 5, "event: e\ndata: abc\ndata: d\n\n");
}

static void test_format_refuses_injection(void **state)
{
    dk_buf *b = (dk_buf *)&b;
    assert_int_equal(dk_sse_format(NULL, "a\nb", "x", 1, &b), DK_EINVAL);
    assert_null(b);
    assert_int_equal(dk_sse_format(NULL, "a\rb", "x", 1, &b), DK_EINVAL);
    assert_int_equal(dk_sse_format("1\n", "e", "x", 1, &b), DK_EINVAL);
    assert_int_equal(dk_sse_format("1\revent: x", "e", "x", 1, &b), DK_EINVAL);
    assert_int_equal(dk_sse_check_field("ok"), 0);
    assert_int_equal(dk_sse_check_field(NULL), 0);
    assert_int_equal(dk_sse_check_field("no\r\n"), DK_EINVAL);
}

/* ---- registry (streams without a server) ---- */

typedef struct fixture {
    dk_app *app;
    dk_sse *sse;
} fixture;

typedef struct fake_req {
    dk__exchange x; /* ctx, req, res set up as the HTTP server does */
    dk__header hdr;
} fake_req;

static fake_req *fake_new(dk_app *app, const char *last_event_id)
{
    fake_req *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    dk__exchange_init(&f->x);
    f->x.req.method = "GET";
    f->x.req.path = "/sse";
    if (last_event_id != NULL) {
        f->hdr.name = "last-event-id";
        f->hdr.value = last_event_id;
        f->x.req.headers = &f->hdr;
        f->x.req.nheaders = 1;
    }
    dk__exchange_begin(&f->x, app);
    return f;
}

static void fake_free(fake_req *f)
{
    dk__exchange_finish(&f->x);
    free(f);
}

/* Accepts a client on `channels`; returns its id in `id` (and the fake request to free). */
static fake_req *accept_client(fixture *fx, const char *const *channels, size_t n, char *id)
{
    fake_req *f = fake_new(fx->app, NULL);
    assert_int_equal(dk_sse_accept(fx->sse, &f->x.ctx, &f->x.req, &f->x.res, channels, n, id), 0);
    assert_int_equal(dk_response_status(&f->x.res), 200);
    assert_string_equal(dk_response_header(&f->x.res, "Content-Type"), "text/event-stream");
    assert_string_equal(dk_response_header(&f->x.res, "Cache-Control"), "no-cache");
    assert_string_equal(dk_response_header(&f->x.res, "X-Accel-Buffering"), "no");
    assert_string_equal(dk_response_header(&f->x.res, "X-SSE-Client-Id"), id);
    return f;
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));
    dk_app_options o;
    dk_app_options_init(&o);
    o.install_signals = false;
    o.log_level = DK_LOG_ERROR;
    fx->app = dk_app_new(&o);
    assert_non_null(fx->app);
    dk_sse_options so;
    dk_sse_options_init(&so);
    so.max_clients = 5;
    so.max_clients_per_channel = 3;
    so.max_channels_per_client = 4;
    fx->sse = dk_sse_new(&so);
    assert_non_null(fx->sse);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    dk_sse_free(fx->sse);
    dk_app_free(fx->app);
    free(fx);
    return 0;
}

static void test_accept_get_subscribe(void **state)
{
    fixture *fx = *state;
    char id[DK_SSE_ID_LEN];
    const char *chans[] = {"news", "sports", "news"};
    fake_req *f = accept_client(fx, chans, 3, id);
    assert_int_equal(strncmp(id, "sse_1_", 6), 0);
    assert_int_equal(dk_sse_count(fx->sse, NULL), 1);
    assert_int_equal(dk_sse_count(fx->sse, "news"), 1);

    json_t *c = NULL;
    assert_int_equal(dk_sse_get(fx->sse, id, &c), 0);
    assert_string_equal(json_string_value(json_object_get(c, "id")), id);
    json_t *ch = json_object_get(c, "channels");
    assert_int_equal(json_array_size(ch), 2); /* duplicate ignored */
    assert_string_equal(json_string_value(json_array_get(ch, 0)), "news");
    assert_true(json_is_null(json_object_get(c, "lastEventId")));
    assert_non_null(json_string_value(json_object_get(c, "createdAt")));
    json_decref(c);

    assert_int_equal(dk_sse_subscribe(fx->sse, id, "updates"), 0);
    assert_int_equal(dk_sse_subscribe(fx->sse, id, "updates"), 0); /* idempotent */
    assert_int_equal(dk_sse_count(fx->sse, "updates"), 1);
    assert_int_equal(dk_sse_subscribe(fx->sse, id, "fourth"), 0);
    assert_int_equal(dk_sse_subscribe(fx->sse, id, "fifth"), DK_ELIMIT);
    assert_int_equal(dk_sse_subscribe(fx->sse, id, ""), DK_EINVAL);
    assert_int_equal(dk_sse_subscribe(fx->sse, "sse_99_1", "x"), DK_ENOTFOUND);
    assert_int_equal(dk_sse_subscribe(fx->sse, "nonsense", "x"), DK_ENOTFOUND);

    assert_int_equal(dk_sse_unsubscribe(fx->sse, id, "sports"), 1);
    assert_int_equal(dk_sse_unsubscribe(fx->sse, id, "sports"), 0);
    assert_int_equal(dk_sse_unsubscribe(fx->sse, id, "never"), 0);
    assert_int_equal(dk_sse_unsubscribe(fx->sse, "sse_99_1", "news"), DK_ENOTFOUND);
    assert_int_equal(dk_sse_count(fx->sse, "sports"), 0);

    assert_int_equal(dk_sse_get(fx->sse, "sse_1_0", &c), DK_ENOTFOUND);
    assert_null(c);
    fake_free(f);
}

static void test_broadcast_counts_and_send(void **state)
{
    fixture *fx = *state;
    char a[DK_SSE_ID_LEN], b[DK_SSE_ID_LEN], c[DK_SSE_ID_LEN];
    const char *news[] = {"news"}, *sports[] = {"sports"};
    fake_req *fa = accept_client(fx, news, 1, a);
    fake_req *fb = accept_client(fx, news, 1, b);
    fake_req *fc = accept_client(fx, sports, 1, c);

    json_t *data = json_pack("{s:i}", "value", 42);
    assert_int_equal(dk_sse_broadcast(fx->sse, "news", "newData", data, NULL), 2);
    assert_int_equal(dk_sse_broadcast(fx->sse, "sports", "x", data, "id-1"), 1);
    assert_int_equal(dk_sse_broadcast(fx->sse, "nobody", "x", data, NULL), 0);
    assert_int_equal(dk_sse_broadcast_all(fx->sse, "all", data, NULL), 3);
    assert_int_equal(dk_sse_broadcast_text(fx->sse, "news", "t", "a\nb", 3, NULL), 2);
    assert_int_equal(dk_sse_broadcast(fx->sse, "news", "bad\n", data, NULL), DK_EINVAL);
    assert_int_equal(dk_sse_broadcast(fx->sse, "news", "ok", data, "bad\r"), DK_EINVAL);
    assert_int_equal(dk_sse_broadcast(fx->sse, "", "ok", data, NULL), DK_EINVAL);

    assert_int_equal(dk_sse_send(fx->sse, a, "notification", data, "msg-1"), 0);
    assert_int_equal(dk_sse_send(fx->sse, "nonexistent", "n", data, NULL), DK_ENOTFOUND);
    assert_int_equal(dk_sse_send(fx->sse, a, "n\n", data, NULL), DK_EINVAL);

    json_t *list = dk_sse_clients(fx->sse, "news");
    assert_int_equal(json_array_size(list), 2);
    json_decref(list);
    list = dk_sse_clients(fx->sse, NULL);
    assert_int_equal(json_array_size(list), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "id")), a);
    json_decref(list);

    assert_int_equal(dk_sse_remove(fx->sse, b), 0);
    assert_int_equal(dk_sse_remove(fx->sse, b), DK_ENOTFOUND);
    assert_int_equal(dk_sse_count(fx->sse, "news"), 1);
    assert_int_equal(dk_sse_send(fx->sse, b, "n", data, NULL), DK_ENOTFOUND);
    assert_int_equal(dk_sse_broadcast(fx->sse, "news", "n", data, NULL), 1);

    dk_sse_shutdown(fx->sse);
    assert_int_equal(dk_sse_count(fx->sse, NULL), 0);
    assert_int_equal(dk_sse_broadcast_all(fx->sse, "all", data, NULL), 0);
    /* Still accepts afterwards. */
    char d[DK_SSE_ID_LEN];
    fake_req *fd = accept_client(fx, news, 1, d);
    assert_int_equal(dk_sse_count(fx->sse, NULL), 1);
    json_decref(data);
    fake_free(fa);
    fake_free(fb);
    fake_free(fc);
    fake_free(fd);
}

static void test_limits_answer_503_and_400(void **state)
{
    fixture *fx = *state;
    char id[DK_SSE_ID_LEN];
    const char *room[] = {"room"}, *solo[] = {"solo"};
    fake_req *f[5];
    for (int i = 0; i < 3; i++)
        f[i] = accept_client(fx, room, 1, id);
    fake_req *x = fake_new(fx->app, NULL);
    assert_int_equal(dk_sse_accept(fx->sse, &x->x.ctx, &x->x.req, &x->x.res, room, 1, id), DK_EHTTP);
    assert_int_equal(dk_error_status(x->x.ctx.error), 503);
    fake_free(x);
    f[3] = accept_client(fx, solo, 1, id);
    f[4] = accept_client(fx, NULL, 0, id);
    x = fake_new(fx->app, NULL);
    assert_int_equal(dk_sse_accept(fx->sse, &x->x.ctx, &x->x.req, &x->x.res, solo, 1, id), DK_EHTTP);
    assert_int_equal(dk_error_status(x->x.ctx.error), 503);
    fake_free(x);

    const char *bad[] = {""};
    x = fake_new(fx->app, NULL);
    assert_int_equal(dk_sse_accept(fx->sse, &x->x.ctx, &x->x.req, &x->x.res, bad, 1, id), DK_EHTTP);
    assert_int_equal(dk_error_status(x->x.ctx.error), 400);
    fake_free(x);
    const char *many[] = {"a", "b", "c", "d", "e"};
    x = fake_new(fx->app, NULL);
    assert_int_equal(dk_sse_accept(fx->sse, &x->x.ctx, &x->x.req, &x->x.res, many, 5, id), DK_EHTTP);
    assert_int_equal(dk_error_status(x->x.ctx.error), 400);
    fake_free(x);
    assert_int_equal(dk_sse_count(fx->sse, NULL), 5);
    for (int i = 0; i < 5; i++)
        fake_free(f[i]);
}

static void test_last_event_id_stored(void **state)
{
    fixture *fx = *state;
    const char *news[] = {"news"};
    assert_true(dk_sse_broadcast(fx->sse, "news", "e", NULL, "k-1") >= 0);
    fake_req *f = fake_new(fx->app, "k-1");
    char id[DK_SSE_ID_LEN];
    assert_int_equal(dk_sse_accept(fx->sse, &f->x.ctx, &f->x.req, &f->x.res, news, 1, id), 0);
    json_t *c = NULL;
    assert_int_equal(dk_sse_get(fx->sse, id, &c), 0);
    assert_string_equal(json_string_value(json_object_get(c, "lastEventId")), "k-1");
    json_decref(c);
    fake_free(f);
}

/* ---- back end ---- */

typedef struct pub_log {
    int calls, destroyed;
    char channel[32], event[32], data[64], id[32];
    bool all;
} pub_log;

static int on_publish(void *user, const char *channel, const char *event, const char *data,
                      size_t len, const char *id)
{
    pub_log *l = user;
    l->calls++;
    l->all = channel == NULL;
    snprintf(l->channel, sizeof(l->channel), "%s", channel ? channel : "");
    snprintf(l->event, sizeof(l->event), "%s", event);
    snprintf(l->data, sizeof(l->data), "%.*s", (int)len, data);
    snprintf(l->id, sizeof(l->id), "%s", id ? id : "");
    return 0;
}

static void on_destroy(void *user)
{
    ((pub_log *)user)->destroyed++;
}

/* Issue 16: generated ids are unique across restarts. A service created later
 * (a restarted server) numbers its events above every id of the earlier one,
 * so an id from the earlier run can never name an event of this one. */
static void test_generated_ids_unique_across_restarts(void **state)
{
    (void)state;
    pub_log log = {0};
    dk_sse_backend be = {.publish = on_publish, .user = &log};
    dk_sse_options o;
    dk_sse_options_init(&o);
    o.backend = &be;
    unsigned long long first[5], second[5];
    for (int run = 0; run < 2; run++) {
        dk_sse *sse = dk_sse_new(&o);
        assert_non_null(sse);
        for (int i = 0; i < 5; i++) {
            assert_int_equal(dk_sse_broadcast(sse, "c", "e", NULL, NULL), 0);
            (run ? second : first)[i] = strtoull(log.id, NULL, 10);
        }
        dk_sse_free(sse);
        struct timespec ts = {0, 3 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < 5; i++) {
        if (i > 0) {
            assert_true(first[i] == first[i - 1] + 1);
            assert_true(second[i] == second[i - 1] + 1);
        }
        assert_true(second[i] > first[4]); /* never reused, still increasing */
    }
}

static void test_backend_publish_and_remote(void **state)
{
    pub_log log = {0};
    dk_sse_backend be = {.publish = on_publish, .destroy = on_destroy, .user = &log};
    dk_sse_options o;
    dk_sse_options_init(&o);
    o.backend = &be;
    int64_t before = dk_wall_ms();
    dk_sse *sse = dk_sse_new(&o);
    assert_non_null(sse);
    int64_t after = dk_wall_ms();
    json_t *data = json_pack("{s:b}", "ok", 1);
    assert_int_equal(dk_sse_broadcast(sse, "news", "created", data, NULL), 0);
    assert_int_equal(log.calls, 1);
    assert_string_equal(log.channel, "news");
    assert_string_equal(log.event, "created");
    assert_string_equal(log.data, "{\"ok\":true}");
    /* The generated id travels: the first of this run, boot time (ms) * 1000 + 1. */
    unsigned long long gen = strtoull(log.id, NULL, 10);
    assert_true(gen >= (unsigned long long)before * 1000 + 1);
    assert_true(gen <= (unsigned long long)after * 1000 + 1);
    assert_int_equal(gen % 1000, 1);
    assert_int_equal(dk_sse_broadcast_all(sse, "e", data, "x-9"), 0);
    assert_int_equal(log.calls, 2);
    assert_true(log.all);
    assert_string_equal(log.id, "x-9");
    assert_int_equal(dk_sse_deliver_remote(sse, "news", "remote", "r", 1, "r-1"), 0);
    assert_int_equal(dk_sse_deliver_remote(sse, NULL, "remote", "r", 1, "r-2"), 0);
    assert_int_equal(log.calls, 2); /* not published again */
    json_decref(data);
    dk_sse_free(sse);
    assert_int_equal(log.destroyed, 1);
}

static void test_heartbeat_timer_lifecycle(void **state)
{
    dk_loop *loop = dk_loop_new();
    assert_non_null(loop);
    dk_sse_options o;
    dk_sse_options_init(&o);
    o.loop = loop;
    o.heartbeat_ms = 5;
    dk_sse *sse = dk_sse_new(&o);
    assert_non_null(sse);
    struct timespec ts = {0, 30 * 1000000L};
    nanosleep(&ts, NULL);
    dk_sse_shutdown(sse);
    dk_sse_shutdown(sse); /* idempotent */
    dk_sse_free(sse);
    /* Freed before its timer ever started. */
    sse = dk_sse_new(&o);
    dk_sse_free(sse);
    dk_loop_free(loop);
}

/* ---- threads ---- */

typedef struct race {
    dk_sse *sse;
    int rounds;
} race;

static void *broadcaster(void *arg)
{
    race *r = arg;
    json_t *d = json_string("payload\nline");
    for (int i = 0; i < r->rounds; i++) {
        assert_true(dk_sse_broadcast(r->sse, (i & 1) ? "a" : "b", "e", d, NULL) >= 0);
        if (i % 16 == 0)
            assert_true(dk_sse_broadcast_all(r->sse, "all", d, NULL) >= 0);
    }
    json_decref(d);
    return NULL;
}

static void test_concurrent_broadcasts(void **state)
{
    fixture *fx = *state;
    const char *ab[] = {"a", "b"};
    char id[DK_SSE_ID_LEN];
    fake_req *f[3];
    for (int i = 0; i < 3; i++)
        f[i] = accept_client(fx, ab, 2, id);
    race r = {fx->sse, 400};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, broadcaster, &r);
    for (int i = 0; i < 50; i++) {
        json_t *list = dk_sse_clients(fx->sse, NULL);
        json_decref(list);
        dk_sse_subscribe(fx->sse, id, "c");
        dk_sse_unsubscribe(fx->sse, id, "c");
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    /* Every client's send buffer (256 KiB) overflowed long ago: all were cut off. */
    assert_true(dk_sse_count(fx->sse, NULL) <= 3);
    for (int i = 0; i < 3; i++)
        fake_free(f[i]);
}

/* Issue 14, item 13: replay windows are bounded in bytes, per channel and in
 * total, and a broadcast to a channel nobody listens to keeps no window. */
static void test_replay_byte_caps_and_idle_channels(void **state)
{
    (void)state;
    char big[1000];
    memset(big, 'x', sizeof(big));

    dk_sse *sse = dk_sse_new(NULL);
    assert_non_null(sse);
    for (int i = 0; i < 2000; i++) {
        char ch[32];
        snprintf(ch, sizeof(ch), "nobody-%d", i);
        assert_int_equal(dk_sse_broadcast_text(sse, ch, "e", big, sizeof(big), NULL), 0);
    }
    assert_int_equal(dk_sse_replay_bytes(sse), 0); /* was 2000 windows, ~2 MB */
    dk_sse_free(sse);

    dk_sse_options o;
    dk_sse_options_init(&o);
    o.replay_idle_channels = true;
    o.replay_max_bytes = 4500;
    o.replay_max_total_bytes = 20000;
    sse = dk_sse_new(&o);
    assert_non_null(sse);
    for (int i = 0; i < 10; i++)
        dk_sse_broadcast_text(sse, "one", "e", big, sizeof(big), NULL);
    size_t one = dk_sse_replay_bytes(sse);
    assert_true(one > 3000 && one <= 4500); /* 4 frames of ~1 KB fit */
    for (int i = 0; i < 200; i++) {
        char ch[32];
        snprintf(ch, sizeof(ch), "ch-%d", i % 40);
        dk_sse_broadcast_text(sse, ch, "e", big, sizeof(big), NULL);
        assert_true(dk_sse_replay_bytes(sse) <= 20000);
    }
    assert_true(dk_sse_replay_bytes(sse) > 15000);
    /* A frame larger than a window is not kept. */
    char *huge = malloc(5000);
    memset(huge, 'y', 5000);
    size_t before = dk_sse_replay_bytes(sse);
    dk_sse_broadcast_text(sse, "ch-1", "e", huge, 5000, NULL);
    assert_true(dk_sse_replay_bytes(sse) <= before);
    free(huge);
    dk_sse_free(sse);
}

/* Issue 14, items 2 and 9: streams per identity, closing by identity or session. */
static void test_identity_cap_and_close(void **state)
{
    fixture *fx = *state;
    const char *ch[] = {"x"};
    char id[DK_SSE_ID_LEN];
    fake_req *f[4];
    dk_sse_accept_options ao = {.identity = "user:1", .max_per_identity = 2, .session = "s1"};
    for (int i = 0; i < 2; i++) {
        f[i] = fake_new(fx->app, NULL);
        ao.session = i == 0 ? "s1" : "s2";
        assert_int_equal(dk_sse_accept_ex(fx->sse, &f[i]->x.ctx, &f[i]->x.req, &f[i]->x.res, ch, 1,
                                          &ao, id),
                         0);
    }
    f[2] = fake_new(fx->app, NULL);
    assert_int_equal(dk_sse_accept_ex(fx->sse, &f[2]->x.ctx, &f[2]->x.req, &f[2]->x.res, ch, 1, &ao,
                                      id),
                     DK_EHTTP);
    assert_int_equal(dk_error_status(f[2]->x.ctx.error), 429);
    /* Another identity is not affected. */
    dk_sse_accept_options other = {.identity = "user:2", .max_per_identity = 2};
    f[3] = fake_new(fx->app, NULL);
    assert_int_equal(dk_sse_accept_ex(fx->sse, &f[3]->x.ctx, &f[3]->x.req, &f[3]->x.res, ch, 1,
                                      &other, id),
                     0);
    assert_int_equal(dk_sse_count(fx->sse, "x"), 3);
    assert_int_equal(dk_sse_close_session(fx->sse, "s1"), 1);
    assert_int_equal(dk_sse_count(fx->sse, "x"), 2);
    assert_int_equal(dk_sse_close_identity(fx->sse, "user:1"), 1);
    assert_int_equal(dk_sse_close_identity(fx->sse, "user:1"), 0);
    assert_int_equal(dk_sse_count(fx->sse, "x"), 1);
    assert_int_equal(dk_sse_close_session(fx->sse, NULL), DK_EINVAL);
    for (int i = 0; i < 4; i++)
        fake_free(f[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_with_and_without_id),
        cmocka_unit_test(test_format_line_splitting),
        cmocka_unit_test(test_format_refuses_injection),
        cmocka_unit_test_setup_teardown(test_accept_get_subscribe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broadcast_counts_and_send, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits_answer_503_and_400, setup, teardown),
        cmocka_unit_test_setup_teardown(test_last_event_id_stored, setup, teardown),
        cmocka_unit_test(test_backend_publish_and_remote),
        cmocka_unit_test(test_generated_ids_unique_across_restarts),
        cmocka_unit_test(test_heartbeat_timer_lifecycle),
        cmocka_unit_test_setup_teardown(test_concurrent_broadcasts, setup, teardown),
        cmocka_unit_test(test_replay_byte_caps_and_idle_channels),
        cmocka_unit_test_setup_teardown(test_identity_cap_and_close, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
