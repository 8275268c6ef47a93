/* Fibers, worker pools and dk_fetch outside a request (jobs, cron, main):
 * the pieces of the execution model that can be driven without a server. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "donkey/donkey.h"
#include "base/fiber.h"
#include "base/offload.h"

/* ---- fibers ---- */

static int trace[16];
static int ntrace;

static void body(void *arg)
{
    int base = *(int *)arg;
    trace[ntrace++] = base + 1;
    dk__fiber_yield();
    trace[ntrace++] = base + 2;
    dk__fiber_yield();
    trace[ntrace++] = base + 3;
}

static void test_fiber_yield_resume_reuse(void **state)
{
    dk__fiber *f = dk__fiber_new(0);
    assert_non_null(f);
    assert_null(dk__fiber_current());
    ntrace = 0;
    int a = 10;
    assert_false(dk__fiber_start(f, body, &a));
    trace[ntrace++] = 0;
    assert_false(dk__fiber_resume(f));
    trace[ntrace++] = 0;
    assert_true(dk__fiber_resume(f));
    int want[] = {11, 0, 12, 0, 13};
    assert_int_equal(ntrace, 5);
    assert_memory_equal(trace, want, sizeof(want));
    /* The same fiber runs another function: its stack is reused. */
    ntrace = 0;
    int b = 20;
    assert_false(dk__fiber_start(f, body, &b));
    assert_false(dk__fiber_resume(f));
    assert_true(dk__fiber_resume(f));
    assert_int_equal(trace[0], 21);
    assert_int_equal(trace[2], 23);
    dk__fiber_free(f);
}

/* Two fibers interleaved on one thread keep their own stacks. */
static void counter(void *arg)
{
    int *slot = arg;
    char local[4096];
    memset(local, (char)*slot, sizeof(local));
    for (int i = 0; i < 3; i++) {
        dk__fiber_yield();
        for (size_t k = 0; k < sizeof(local); k++)
            if (local[k] != (char)*slot)
                *slot = -1; /* another fiber wrote over this stack */
    }
}

static void test_fibers_interleave(void **state)
{
    dk__fiber *f1 = dk__fiber_new(64 * 1024), *f2 = dk__fiber_new(64 * 1024);
    int s1 = 1, s2 = 2;
    assert_false(dk__fiber_start(f1, counter, &s1));
    assert_false(dk__fiber_start(f2, counter, &s2));
    bool d1 = false, d2 = false;
    while (!d1 || !d2) {
        if (!d1)
            d1 = dk__fiber_resume(f1);
        if (!d2)
            d2 = dk__fiber_resume(f2);
    }
    assert_int_equal(s1, 1);
    assert_int_equal(s2, 2);
    dk__fiber_free(f1);
    dk__fiber_free(f2);
}

/* ---- off a request: everything runs on the calling thread ---- */

static int record_thread(void *arg)
{
    *(pthread_t *)arg = pthread_self();
    return 42;
}

static void test_blocking_outside_request_calls_directly(void **state)
{
    pthread_t who;
    memset(&who, 0, sizeof(who));
    assert_int_equal(dk_blocking(NULL, record_thread, &who), 42);
    assert_true(pthread_equal(who, pthread_self()));
    assert_int_equal(dk_blocking(NULL, NULL, NULL), DK_EINVAL);
    assert_int_equal(dk__offload(DK__POOL_IO, record_thread, &who), 42);
}

/* ---- a pool runs work and wakes the waiter ---- */

typedef struct {
    dk__waiter w;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool woken;
} test_waiter;

static void wake(dk__waiter *w)
{
    test_waiter *t = (test_waiter *)w;
    pthread_mutex_lock(&t->lock);
    t->woken = true;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

static int on_pool(void *arg)
{
    *(pthread_t *)arg = pthread_self();
    return 7;
}

/* In a "request" (a fiber with a current waiter), dk__offload suspends the
 * fiber, the pool runs the work on another thread and wakes the waiter. */
typedef struct {
    pthread_t who;
    int rc;
} offload_result;

static void offload_body(void *arg)
{
    offload_result *r = arg;
    r->rc = dk__offload(DK__POOL_IO, on_pool, &r->who);
}

static void test_pool_offload_from_fiber(void **state)
{
    dk__pool *p = dk__pool_new("t-io", 2, 0);
    assert_non_null(p);
    test_waiter t = {.w = {.wake = wake, .pools = {p, p}}};
    pthread_mutex_init(&t.lock, NULL);
    pthread_cond_init(&t.cond, NULL);
    offload_result res;
    memset(&res, 0, sizeof(res));
    dk__fiber *f = dk__fiber_new(0);
    dk__waiter_enter(&t.w);
    assert_false(dk__fiber_start(f, offload_body, &res)); /* suspended */
    dk__waiter_enter(NULL);
    pthread_mutex_lock(&t.lock);
    while (!t.woken)
        pthread_cond_wait(&t.cond, &t.lock);
    pthread_mutex_unlock(&t.lock);
    dk__waiter_enter(&t.w);
    assert_true(dk__fiber_resume(f));
    dk__waiter_enter(NULL);
    assert_false(pthread_equal(res.who, pthread_self()));
    assert_int_equal(res.rc, 7);
    dk__fiber_free(f);
    dk__pool_free(p);
    pthread_mutex_destroy(&t.lock);
    pthread_cond_destroy(&t.cond);
}

/* ---- transactions belong to the request, not to the thread ---- */

typedef struct sched sched;
typedef struct twaiter {
    dk__waiter w;
    dk__fiber *f;
    struct twaiter *next;
    sched *s;
    bool done;
} twaiter;

struct sched {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    twaiter *ready;
};

static void twake(dk__waiter *w)
{
    twaiter *t = (twaiter *)w;
    pthread_mutex_lock(&t->s->lock);
    t->next = t->s->ready;
    t->s->ready = t;
    pthread_cond_signal(&t->s->cond);
    pthread_mutex_unlock(&t->s->lock);
}

static void trun(twaiter *t, void (*fn)(void *), void *arg)
{
    dk__waiter_enter(&t->w);
    t->done = fn ? dk__fiber_start(t->f, fn, arg) : dk__fiber_resume(t->f);
    dk__waiter_enter(NULL);
}

static dk_db *tx_db;
static atomic_int a_inserted, b_read, b_count = -1;

static int wait_flag(void *arg)
{
    atomic_int *flag = arg;
    for (int i = 0; i < 5000 && atomic_load(flag) == 0; i++)
        usleep(1000);
    return 0;
}

static void fiber_a(void *arg)
{
    assert_int_equal(dk_db_begin(tx_db), 0);
    assert_int_equal(dk_db_exec(tx_db, "INSERT INTO t(v) VALUES ('a')", NULL, NULL, NULL), 0);
    atomic_store(&a_inserted, 1);
    dk__offload(DK__POOL_IO, wait_flag, &b_read); /* B runs on this thread meanwhile */
    assert_int_equal(dk_db_rollback(tx_db), 0);
}

static void fiber_b(void *arg)
{
    dk__offload(DK__POOL_IO, wait_flag, &a_inserted);
    json_t *row = NULL;
    assert_int_equal(dk_db_query_one(tx_db, "SELECT count(*) AS n FROM t", NULL, &row), 0);
    atomic_store(&b_count, (int)json_integer_value(json_object_get(row, "n")));
    json_decref(row);
    atomic_store(&b_read, 1);
    /* Not in A's transaction: a commit here has nothing to end. */
    assert_int_equal(dk_db_commit(tx_db), DK_ESTATE);
}

static void test_transactions_belong_to_the_request(void **state)
{
    char path[] = "/tmp/dk-test-exec-XXXXXX";
    int tfd = mkstemp(path);
    assert_true(tfd >= 0);
    close(tfd);
    char url[64];
    snprintf(url, sizeof(url), "sqlite:%s", path);
    tx_db = dk_db_open(url, NULL);
    assert_non_null(tx_db);
    assert_int_equal(dk_db_exec_script(tx_db, "CREATE TABLE t (v TEXT)"), 0);

    dk__pool *p = dk__pool_new("t-io", 4, 0);
    sched s = {.ready = NULL};
    pthread_mutex_init(&s.lock, NULL);
    pthread_cond_init(&s.cond, NULL);
    twaiter a = {.w = {.wake = twake, .pools = {p, p}}, .f = dk__fiber_new(0), .s = &s};
    twaiter b = {.w = {.wake = twake, .pools = {p, p}}, .f = dk__fiber_new(0), .s = &s};
    /* Both "requests" run on this one thread, as on one HTTP thread. */
    trun(&a, fiber_a, NULL);
    trun(&b, fiber_b, NULL);
    while (!a.done || !b.done) {
        pthread_mutex_lock(&s.lock);
        while (s.ready == NULL)
            pthread_cond_wait(&s.cond, &s.lock);
        twaiter *t = s.ready;
        s.ready = t->next;
        pthread_mutex_unlock(&s.lock);
        trun(t, NULL, NULL);
    }
    /* B did not see A's uncommitted row (it used its own connection), and
     * A's rollback removed it. */
    assert_int_equal(atomic_load(&b_count), 0);
    json_t *row = NULL;
    assert_int_equal(dk_db_query_one(tx_db, "SELECT count(*) AS n FROM t", NULL, &row), 0);
    assert_int_equal(json_integer_value(json_object_get(row, "n")), 0);
    json_decref(row);
    dk__fiber_free(a.f);
    dk__fiber_free(b.f);
    dk__pool_free(p);
    dk_db_close(tx_db);
    unlink(path);
    char wal[80];
    snprintf(wal, sizeof(wal), "%s-wal", path);
    unlink(wal);
    snprintf(wal, sizeof(wal), "%s-shm", path);
    unlink(wal);
}

/* ---- dk_fetch on the calling thread ---- */

static void *serve_once(void *arg)
{
    int fd = *(int *)arg;
    int c = accept(fd, NULL, NULL);
    if (c >= 0) {
        char buf[4096];
        ssize_t n = recv(c, buf, sizeof(buf), 0);
        (void)n;
        static const char resp[] = "HTTP/1.1 201 Created\r\nContent-Length: 5\r\nX-Thing: a b \r\n"
                                   "Connection: close\r\n\r\nhello";
        ssize_t w = send(c, resp, sizeof(resp) - 1, 0);
        (void)w;
        close(c);
    }
    return NULL;
}

static int listen_local(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sl), 0);
    assert_int_equal(listen(fd, 4), 0);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    *port = ntohs(sa.sin_port);
    return fd;
}

static void test_fetch_on_calling_thread(void **state)
{
    int port;
    int fd = listen_local(&port);
    pthread_t th;
    pthread_create(&th, NULL, serve_once, &fd);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", port);
    dk_fetch_response r;
    assert_int_equal(dk_fetch(NULL, url, NULL, &r), 0);
    pthread_join(th, NULL);
    assert_int_equal(r.status, 201);
    assert_int_equal(r.body_len, 5);
    assert_string_equal(r.body, "hello");
    char v[32];
    assert_non_null(dk_fetch_response_header(&r, "x-thing", v, sizeof(v)));
    assert_string_equal(v, "a b");
    assert_null(dk_fetch_response_header(&r, "x-missing", v, sizeof(v)));
    dk_fetch_response_free(&r);

    /* Too large: the limit is enforced. */
    pthread_create(&th, NULL, serve_once, &fd);
    dk_fetch_options o;
    dk_fetch_options_init(&o);
    o.max_response_bytes = 3;
    assert_int_equal(dk_fetch(NULL, url, &o, &r), DK_ELIMIT);
    pthread_join(th, NULL);
    dk_fetch_response_free(&r);
    close(fd);

    /* Nobody listens any more: refused. */
    assert_int_equal(dk_fetch(NULL, url, NULL, &r), DK_ECONNECT);
    assert_true(r.error[0] != '\0');
    dk_fetch_response_free(&r);
    /* Only http and https. */
    assert_int_equal(dk_fetch(NULL, "ftp://127.0.0.1/", NULL, &r), DK_EINVAL);
    dk_fetch_response_free(&r);
    assert_int_equal(dk_fetch(NULL, "file:///etc/passwd", NULL, &r), DK_EINVAL);
    dk_fetch_response_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fiber_yield_resume_reuse),
        cmocka_unit_test(test_fibers_interleave),
        cmocka_unit_test(test_blocking_outside_request_calls_directly),
        cmocka_unit_test(test_pool_offload_from_fiber),
        cmocka_unit_test(test_transactions_belong_to_the_request),
        cmocka_unit_test(test_fetch_on_calling_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
