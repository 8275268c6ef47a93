/* Unit tests for the base layer's shared pieces (src/base/internal.h): the
 * one hash, the one event-pattern matcher (local bus and Redis back end select
 * the same events), the growable buffer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "donkey/app.h"
#include "donkey/events.h"
#include "base/internal.h"

static void test_hash(void **state)
{
    (void)state;
    /* FNV-1a 64 reference values. */
    assert_int_equal(dk__hash("", 0), UINT64_C(0xcbf29ce484222325));
    assert_int_equal(dk__hash("a", 1), UINT64_C(0xaf63dc4c8601ec8c));
    assert_int_equal(dk__hash_str("foobar"), UINT64_C(0x85944171f73967e8));
    assert_int_equal(dk__hash_str("foobar"), dk__hash("foobar", 6));
}

static void test_event_match_table(void **state)
{
    (void)state;
    static const struct {
        const char *pattern, *name;
        bool match;
    } cases[] = {
        {"*", "user.created", true},      {"*", "", true},
        {"user.*", "user.created", true}, {"user.*", "user.", true},
        {"user.*", "user", false},        {"user.*", "order.created", false},
        {"*.created", "user.created", true}, {"*.created", "a.b.created", true},
        {"user.created", "user.created", true}, {"user.created", "user.createdx", false},
        {"u*r.*d", "user.deleted", true}, {"a*b*c", "aXbYc", true},
        {"a*b*c", "aXbY", false},         {"**", "x", true},
        /* `?` is literal for events (unlike dk_glob_match). */
        {"user.?reated", "user.created", false}, {"user.?reated", "user.?reated", true},
        {"", "", true},                   {"", "x", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (dk__event_match(cases[i].pattern, cases[i].name) != cases[i].match)
            fail_msg("pattern '%s' name '%s': expected %d", cases[i].pattern, cases[i].name,
                     cases[i].match);
    }
    assert_true(dk__event_match(NULL, "anything"));
    /* dk_glob_match keeps its `?`. */
    assert_true(dk_glob_match("user.?reated", "user.created"));
}

/* ---- local and Redis back ends agree on the same patterns ---- */

static const char *EVENTS[] = {"user.created", "user.deleted", "order.created", "user",
                               "a.b.c",        "user.?reated", "order.user.created"};
static const char *PATTERNS[] = {"*",          "user.*",    "*.created", "user.created",
                                 "u*r.*d",     "*user*",    "user.?reated", "a*c",
                                 "order.*.created", "nothing", "**"};

static pid_t redis_pid;
static int redis_port;

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static bool redis_up(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)redis_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* A throwaway redis-server on a free port; false when none is installed. */
static bool start_redis(void)
{
    redis_port = free_port();
    if (redis_port <= 0)
        return false;
    char port[16];
    snprintf(port, sizeof(port), "%d", redis_port);
    redis_pid = fork();
    if (redis_pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save",
               "", "--appendonly", "no", (char *)NULL);
        _exit(127);
    }
    if (redis_pid < 0)
        return false;
    for (int i = 0; i < 200; i++) {
        if (redis_up())
            return true;
        int st;
        if (waitpid(redis_pid, &st, WNOHANG) == redis_pid) {
            redis_pid = 0;
            return false;
        }
        struct timespec ts = {0, 25 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return false;
}

static void stop_redis(void)
{
    if (redis_pid > 0) {
        kill(redis_pid, SIGTERM);
        waitpid(redis_pid, NULL, 0);
        redis_pid = 0;
    }
}

/* The names of a history array, joined by spaces. */
static void names_of(const json_t *list, char *out, size_t len)
{
    out[0] = '\0';
    size_t i;
    json_t *rec;
    json_array_foreach(list, i, rec) {
        strncat(out, json_string_value(json_object_get(rec, "event")), len - strlen(out) - 2);
        strcat(out, " ");
    }
}

struct seen {
    char names[512];
};

static int on_event(const char *event, const json_t *data, void *user)
{
    (void)data;
    struct seen *s = user;
    strncat(s->names, event, sizeof(s->names) - strlen(s->names) - 2);
    strcat(s->names, " ");
    return 0;
}

static void test_local_and_redis_agree(void **state)
{
    (void)state;
    if (!start_redis())
        skip();
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", redis_port);

    dk_app_options o;
    dk_app_options_init(&o);
    o.log_level = DK_LOG_ERROR;
    dk_app *local = dk_app_new(&o);
    o.redis_url = url;
    dk_app *shared = dk_app_new(&o);
    assert_non_null(local);
    assert_non_null(shared);
    dk_events *lev = dk_app_core(local)->events;
    dk_events *rev = dk_app_core(shared)->events;

    enum { NP = sizeof(PATTERNS) / sizeof(PATTERNS[0]) };
    struct seen subs[NP];
    memset(subs, 0, sizeof(subs));
    for (size_t p = 0; p < NP; p++)
        assert_true(dk_events_on(lev, PATTERNS[p], on_event, &subs[p], NULL) > 0);

    for (size_t e = 0; e < sizeof(EVENTS) / sizeof(EVENTS[0]); e++) {
        assert_true(dk_events_emit(lev, EVENTS[e], NULL) >= 0);
        assert_true(dk_events_emit(rev, EVENTS[e], NULL) >= 0);
    }
    for (size_t p = 0; p < NP; p++) {
        json_t *lh = NULL, *rh = NULL;
        assert_int_equal(dk_events_history(lev, PATTERNS[p], 100, &lh), 0);
        assert_int_equal(dk_events_history(rev, PATTERNS[p], 100, &rh), 0);
        char a[512], b[512];
        names_of(lh, a, sizeof(a));
        names_of(rh, b, sizeof(b));
        if (strcmp(a, b) != 0 || strcmp(a, subs[p].names) != 0)
            fail_msg("pattern '%s': local history [%s], Redis history [%s], subscriber [%s]",
                     PATTERNS[p], a, b, subs[p].names);
        json_decref(lh);
        json_decref(rh);
    }
    /* The patterns do select different sets (the comparison is not vacuous). */
    assert_string_equal(subs[1].names, "user.created user.deleted user.?reated ");
    assert_string_equal(subs[6].names, "user.?reated ");
    assert_string_equal(subs[9].names, "");
    dk_app_free(shared);
    dk_app_free(local);
    stop_redis();
}

static void test_buf(void **state)
{
    (void)state;
    dk__buf b = {0};
    assert_int_equal(dk__buf_appends(&b, "abc"), 0);
    assert_int_equal(dk__buf_appendf(&b, "-%d-", 42), 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(dk__buf_append(&b, "x", 1), 0);
    assert_int_equal(b.len, 1007);
    assert_memory_equal(b.data, "abc-42-x", 8);
    assert_int_equal(b.data[b.len], '\0');
    dk__buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_event_match_table),
        cmocka_unit_test(test_local_and_redis_agree),
        cmocka_unit_test(test_buf),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    stop_redis();
    return rc;
}
