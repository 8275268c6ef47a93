/* Unit tests for the structured logger (src/base/log.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "donkey/log.h"

#define FIXED_MS INT64_C(1705322096789) /* 2024-01-15T12:34:56.789Z */

/* ---- capture transport ---- */

typedef struct capture {
    pthread_mutex_t lock;
    json_t *entries; /* array of {level, message, data?, context?} */
    int *freed;
} capture;

static void capture_log(const dk_log_entry *e, void *user)
{
    capture *c = user;
    json_t *o = json_pack("{s:s, s:s}", "level", dk_log_level_name(e->level), "message",
                          e->message);
    if (e->data)
        json_object_set_new(o, "data", json_deep_copy(e->data));
    if (e->context)
        json_object_set_new(o, "context", json_deep_copy(e->context));
    pthread_mutex_lock(&c->lock);
    json_array_append_new(c->entries, o);
    pthread_mutex_unlock(&c->lock);
}

static void capture_free(void *user)
{
    capture *c = user;
    if (c->freed)
        (*c->freed)++;
    json_decref(c->entries);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* Adds a capture transport; it is freed with the logger family. */
static capture *capture_add(dk_logger *lg, int *freed)
{
    capture *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    pthread_mutex_init(&c->lock, NULL);
    c->entries = json_array();
    c->freed = freed;
    assert_int_equal(dk_logger_add_transport(lg, capture_log, c, capture_free), 0);
    return c;
}

static char *dump(const json_t *v)
{
    return v ? json_dumps(v, JSON_COMPACT) : strdup("null");
}

static void assert_json(const json_t *v, const char *expected)
{
    char *s = dump(v);
    assert_string_equal(s, expected);
    free(s);
}

static void log_all_levels(dk_logger *lg)
{
    dk_log_debug(lg, "d", NULL);
    dk_log_info(lg, "i", NULL);
    dk_log_warn(lg, "w", NULL);
    dk_log_error(lg, "e", NULL);
}

static json_t *levels_of(capture *c)
{
    json_t *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(c->entries, i, e)
        json_array_append(out, json_object_get(e, "level"));
    return out;
}

/* ---- levels ---- */

static void test_level_parse(void **state)
{
    (void)state;
    dk_log_level lv;
    assert_int_equal(dk_log_level_parse("debug", &lv), 0);
    assert_int_equal(lv, DK_LOG_DEBUG);
    assert_int_equal(dk_log_level_parse("WARN", &lv), 0);
    assert_int_equal(lv, DK_LOG_WARN);
    assert_int_equal(dk_log_level_parse("verbose", &lv), DK_EINVAL);
    assert_int_equal(dk_log_level_parse(NULL, &lv), DK_EINVAL);
    assert_string_equal(dk_log_level_name(DK_LOG_ERROR), "error");
    assert_string_equal(dk_log_level_name((dk_log_level)42), "unknown");
}

static void test_filter_error_only(void **state)
{
    (void)state;
    dk_logger *lg = dk_logger_new_empty(DK_LOG_ERROR);
    capture *c = capture_add(lg, NULL);
    log_all_levels(lg);
    /* Filtered entries still release their data (checked by ASan/valgrind). */
    dk_log_debug(lg, "x", json_pack("{s:i}", "k", 1));
    dk_logf(lg, DK_LOG_INFO, "n=%d", 1);
    json_t *lv = levels_of(c);
    assert_json(lv, "[\"error\"]");
    json_decref(lv);
    assert_false(dk_logger_enabled(lg, DK_LOG_WARN));
    assert_true(dk_logger_enabled(lg, DK_LOG_ERROR));
    dk_logger_free(lg);
}

static void test_filter_debug_all(void **state)
{
    (void)state;
    dk_logger *lg = dk_logger_new_empty(DK_LOG_DEBUG);
    capture *c = capture_add(lg, NULL);
    log_all_levels(lg);
    json_t *lv = levels_of(c);
    assert_json(lv, "[\"debug\",\"info\",\"warn\",\"error\"]");
    json_decref(lv);

    dk_logger_set_level(lg, DK_LOG_WARN);
    assert_int_equal(dk_logger_level(lg), DK_LOG_WARN);
    dk_logf(lg, DK_LOG_WARN, "value %d %s", 42, "ok");
    assert_string_equal(json_string_value(json_object_get(json_array_get(c->entries, 4),
                                                          "message")),
                        "value 42 ok");
    dk_logger_free(lg);
}

/* ---- children ---- */

static void test_child_context(void **state)
{
    (void)state;
    int freed = 0;
    dk_logger *root = dk_logger_new_empty(DK_LOG_DEBUG);
    capture *c = capture_add(root, &freed);

    json_t *ca = json_pack("{s:i}", "a", 1);
    dk_logger *parent = dk_logger_child(root, ca);
    json_decref(ca);
    json_t *cb = json_pack("{s:i, s:i}", "a", 2, "b", 3);
    dk_logger *child = dk_logger_child(parent, cb);
    json_decref(cb);
    assert_int_equal(dk_logger_level(child), DK_LOG_DEBUG);

    dk_log_info(child, "from child", NULL);
    dk_log_info(parent, "from parent", NULL);
    dk_log_info(root, "from root", NULL);
    assert_json(json_object_get(json_array_get(c->entries, 0), "context"), "{\"a\":2,\"b\":3}");
    assert_json(json_object_get(json_array_get(c->entries, 1), "context"), "{\"a\":1}");
    /* Empty context is omitted. */
    assert_null(json_object_get(json_array_get(c->entries, 2), "context"));

    /* Shared transport list: freeing parent and root first keeps the child working. */
    dk_logger_free(root);
    dk_logger_free(parent);
    assert_int_equal(freed, 0);
    dk_log_warn(child, "still here", NULL);
    assert_int_equal(json_array_size(c->entries), 4);
    dk_logger_free(child);
    assert_int_equal(freed, 1);
}

static void test_empty_child_context(void **state)
{
    (void)state;
    dk_logger *root = dk_logger_new_empty(DK_LOG_INFO);
    capture *c = capture_add(root, NULL);
    json_t *empty = json_object();
    dk_logger *child = dk_logger_child(root, empty);
    json_decref(empty);
    dk_logger *child2 = dk_logger_child(root, NULL);
    dk_log_info(child, "x", NULL);
    dk_log_info(child2, "y", NULL);
    assert_null(json_object_get(json_array_get(c->entries, 0), "context"));
    assert_null(json_object_get(json_array_get(c->entries, 1), "context"));
    dk_logger_free(child);
    dk_logger_free(child2);
    dk_logger_free(root);
}

/* ---- formatting ---- */

static void assert_format(const dk_log_entry *e, dk_log_format f, bool color, const char *want)
{
    char *s = dk_log_format_entry(e, f, color);
    assert_non_null(s);
    assert_string_equal(s, want);
    free(s);
}

static void test_json_exact(void **state)
{
    (void)state;
    json_t *data = json_pack("{s:i}", "userId", 123);
    dk_log_entry e = {FIXED_MS, DK_LOG_INFO, "User logged in", data, NULL};
    assert_format(&e, DK_LOG_JSON, false,
                  "{\"timestamp\":\"2024-01-15T12:34:56.789Z\",\"level\":\"info\","
                  "\"message\":\"User logged in\",\"userId\":123}");

    /* Context after data; a context key equal to a data key wins, once, in place. */
    json_t *ctx = json_pack("{s:s, s:s}", "userId", "ctx", "component", "server");
    json_object_set_new(data, "ok", json_true());
    dk_log_entry e2 = {FIXED_MS, DK_LOG_WARN, "m", data, ctx};
    assert_format(&e2, DK_LOG_JSON, false,
                  "{\"timestamp\":\"2024-01-15T12:34:56.789Z\",\"level\":\"warn\","
                  "\"message\":\"m\",\"userId\":\"ctx\",\"ok\":true,\"component\":\"server\"}");
    json_decref(data);
    json_decref(ctx);
}

static void test_pretty_exact(void **state)
{
    (void)state;
    json_t *data = json_pack("{s:i}", "userId", 123);
    dk_log_entry e = {FIXED_MS, DK_LOG_INFO, "User logged in", data, NULL};
    assert_format(&e, DK_LOG_PRETTY, false, "[12:34:56.789] INFO  User logged in {\"userId\":123}");
    assert_format(&e, DK_LOG_PRETTY, true,
                  "\x1b[36m[12:34:56.789] INFO \x1b[0m User logged in "
                  "\x1b[90m{\"userId\":123}\x1b[0m");

    dk_log_entry e2 = {FIXED_MS, DK_LOG_ERROR, "boom", NULL, NULL};
    assert_format(&e2, DK_LOG_PRETTY, false, "[12:34:56.789] ERROR boom");
    assert_format(&e2, DK_LOG_PRETTY, true, "\x1b[31m[12:34:56.789] ERROR\x1b[0m boom");
    dk_log_entry e3 = {FIXED_MS, DK_LOG_DEBUG, "d", NULL, NULL};
    assert_format(&e3, DK_LOG_PRETTY, true, "\x1b[90m[12:34:56.789] DEBUG\x1b[0m d");
    dk_log_entry e4 = {FIXED_MS, DK_LOG_WARN, "w", NULL, NULL};
    assert_format(&e4, DK_LOG_PRETTY, true, "\x1b[33m[12:34:56.789] WARN \x1b[0m w");

    json_t *ctx = json_pack("{s:i, s:i}", "userId", 7, "req", 1);
    dk_log_entry e5 = {FIXED_MS, DK_LOG_INFO, "m", data, ctx};
    assert_format(&e5, DK_LOG_PRETTY, false, "[12:34:56.789] INFO  m {\"userId\":7,\"req\":1}");
    json_decref(data);
    json_decref(ctx);
}

static void test_reserved_keys(void **state)
{
    (void)state;
    json_t *data = json_pack("{s:s, s:s, s:i, s:i}", "message", "x", "level", "y", "timestamp", 1,
                             "k", 1);
    json_t *ctx = json_pack("{s:s, s:i}", "message", "c", "k", 2);
    dk_log_entry e = {FIXED_MS, DK_LOG_INFO, "m", data, ctx};
    assert_format(&e, DK_LOG_JSON, false,
                  "{\"timestamp\":\"2024-01-15T12:34:56.789Z\",\"level\":\"info\",\"message\":\"m\","
                  "\"data.message\":\"x\",\"data.level\":\"y\",\"data.timestamp\":1,\"k\":2,"
                  "\"context.message\":\"c\"}");
    json_decref(data);
    json_decref(ctx);
}

static void test_escaping(void **state)
{
    (void)state;
    dk_log_entry e = {FIXED_MS, DK_LOG_INFO, "a\nb\rc\x1b[31m", NULL, NULL};
    assert_format(&e, DK_LOG_PRETTY, false, "[12:34:56.789] INFO  a\\nb\\rc\\x1b[31m");
    assert_format(&e, DK_LOG_JSON, false,
                  "{\"timestamp\":\"2024-01-15T12:34:56.789Z\",\"level\":\"info\","
                  "\"message\":\"a\\nb\\rc\\u001B[31m\"}");

    /* Invalid UTF-8 becomes U+FFFD instead of failing in jansson. */
    dk_log_entry bad = {FIXED_MS, DK_LOG_INFO, "bad\xff\xc3(", NULL, NULL};
    assert_format(&bad, DK_LOG_JSON, false,
                  "{\"timestamp\":\"2024-01-15T12:34:56.789Z\",\"level\":\"info\","
                  "\"message\":\"bad\xef\xbf\xbd\xef\xbf\xbd(\"}");
    json_t *data = json_object();
    json_object_set_new(data, "s", json_stringn_nocheck("x\xfe", 2));
    dk_log_entry bad2 = {FIXED_MS, DK_LOG_INFO, "ok", data, NULL};
    assert_format(&bad2, DK_LOG_PRETTY, false, "[12:34:56.789] INFO  ok {\"s\":\"x\xef\xbf\xbd\"}");
    json_decref(data);
}

static void test_invalid_utf8_through_log(void **state)
{
    (void)state;
    dk_logger *lg = dk_logger_new_empty(DK_LOG_INFO);
    capture *c = capture_add(lg, NULL);
    dk_log_info(lg, "m\xc0", json_pack("{s:o}", "v", json_stringn_nocheck("\xed\xa0\x80", 3)));
    json_t *e = json_array_get(c->entries, 0);
    assert_string_equal(json_string_value(json_object_get(e, "message")), "m\xef\xbf\xbd");
    assert_string_equal(json_string_value(json_object_get(json_object_get(e, "data"), "v")),
                        "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    dk_logger_free(lg);
}

/* ---- redaction ---- */

static void test_redaction(void **state)
{
    (void)state;
    dk_logger *root = dk_logger_new_empty(DK_LOG_INFO);
    capture *c = capture_add(root, NULL);
    json_t *ctx = json_pack("{s:s, s:{s:s}}", "Authorization", "Bearer x", "svc", "token", "t");
    dk_logger *lg = dk_logger_child(root, ctx);
    json_decref(ctx);

    json_t *user = json_pack("{s:s, s:s, s:[{s:s}, i]}", "name", "ann", "PassWord", "hunter2",
                             "list", "TOKEN", "abc", 5);
    dk_log_info(lg, "login", json_pack("{s:O, s:i}", "user", user, "n", 1));
    json_t *e = json_array_get(c->entries, 0);
    assert_json(json_object_get(e, "data"),
                "{\"user\":{\"name\":\"ann\",\"PassWord\":\"[REDACTED]\","
                "\"list\":[{\"TOKEN\":\"[REDACTED]\"},5]},\"n\":1}");
    assert_json(json_object_get(e, "context"),
                "{\"Authorization\":\"[REDACTED]\",\"svc\":{\"token\":\"[REDACTED]\"}}");
    /* The caller's shared object is not modified. */
    assert_string_equal(json_string_value(json_object_get(user, "PassWord")), "hunter2");

    const char *keys[] = {"secret", NULL};
    assert_int_equal(dk_logger_set_redact(root, keys), 0);
    dk_log_info(lg, "again", json_pack("{s:s, s:{s:s}}", "password", "p", "deep", "SECRET", "s"));
    e = json_array_get(c->entries, 1);
    assert_json(json_object_get(e, "data"),
                "{\"password\":\"p\",\"deep\":{\"SECRET\":\"[REDACTED]\"}}");
    json_decref(user);
    dk_logger_free(lg);
    dk_logger_free(root);
}

/* Issue 14, item 16: the default list covers the usual credential keys, and
 * keys can be added without losing the defaults. */
static void test_redaction_default_keys_and_add(void **state)
{
    (void)state;
    dk_logger *lg = dk_logger_new_empty(DK_LOG_INFO);
    capture *c = capture_add(lg, NULL);
    dk_log_info(lg, "creds",
                json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "secret", "1",
                          "api_key", "2", "ApiKey", "3", "access_token", "4", "refresh_token",
                          "5", "Cookie", "6", "Set-Cookie", "7", "client_secret", "8",
                          "X-Api-Key", "9", "Proxy-Authorization", "10", "user", "ann"));
    json_t *d = json_object_get(json_array_get(c->entries, 0), "data");
    const char *key;
    json_t *v;
    json_object_foreach(d, key, v) {
        if (strcmp(key, "user") == 0)
            assert_string_equal(json_string_value(v), "ann");
        else if (strcmp(json_string_value(v), "[REDACTED]") != 0)
            fail_msg("key %s not redacted", key);
    }
    const char *extra[] = {"ssn", "pin", NULL};
    assert_int_equal(dk_logger_add_redact(lg, extra), 0);
    dk_log_info(lg, "more", json_pack("{s:s, s:s, s:s}", "SSN", "x", "pin", "y", "password", "z"));
    assert_json(json_object_get(json_array_get(c->entries, 1), "data"),
                "{\"SSN\":\"[REDACTED]\",\"pin\":\"[REDACTED]\",\"password\":\"[REDACTED]\"}");
    assert_int_equal(dk_logger_add_redact(NULL, extra), DK_EINVAL);
    dk_logger_free(lg);
}

/* ---- console ---- */

static char *read_all(FILE *f)
{
    fflush(f);
    long n = ftell(f);
    assert_true(n >= 0);
    char *buf = calloc(1, (size_t)n + 1);
    rewind(f);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    return buf;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void test_console_tmpfile(void **state)
{
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    dk_logger *lg = dk_logger_new(DK_LOG_INFO, DK_LOG_JSON, f);
    dk_log_info(lg, "one", json_pack("{s:i}", "n", 1));
    dk_log_debug(lg, "hidden", NULL);
    dk_log_error(lg, "two", NULL);
    dk_logger_flush(lg);
    char *out = read_all(f);
    assert_int_equal(count_lines(out), 2);
    json_error_t err;
    json_t *first = json_loadb(out, strcspn(out, "\n"), 0, &err);
    assert_non_null(first);
    assert_string_equal(json_string_value(json_object_get(first, "message")), "one");
    assert_int_equal(json_integer_value(json_object_get(first, "n")), 1);
    json_decref(first);
    assert_non_null(strstr(out, "\"message\":\"two\"}\n"));
    free(out);
    assert_int_equal(dk_logger_dropped(lg), 0);
    dk_logger_free(lg);
    fclose(f);

    /* Pretty to a file that is not a terminal: no colour codes. */
    f = tmpfile();
    lg = dk_logger_new(DK_LOG_INFO, DK_LOG_PRETTY, f);
    dk_log_warn(lg, "careful", json_pack("{s:b}", "x", 1));
    dk_logger_free(lg); /* the last logger flushes */
    out = read_all(f);
    assert_null(strchr(out, '\x1b'));
    assert_non_null(strstr(out, "] WARN  careful {\"x\":true}\n"));
    free(out);
    fclose(f);
}

typedef struct worker_arg {
    dk_logger *lg;
    int id;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *a = p;
    for (int i = 0; i < 1000; i++)
        dk_log_info(a->lg, "line", json_pack("{s:i, s:i, s:s}", "t", a->id, "i", i, "pad",
                                            "0123456789abcdefghijklmnopqrstuvwxyz"));
    return NULL;
}

static void test_concurrent_whole_lines(void **state)
{
    (void)state;
    FILE *f = tmpfile();
    dk_logger *lg = dk_logger_new(DK_LOG_INFO, DK_LOG_JSON, f);
    capture *c = capture_add(lg, NULL);
    pthread_t th[4];
    worker_arg args[4];
    for (int t = 0; t < 4; t++) {
        args[t] = (worker_arg){lg, t};
        assert_int_equal(pthread_create(&th[t], NULL, worker, &args[t]), 0);
    }
    for (int t = 0; t < 4; t++)
        pthread_join(th[t], NULL);
    dk_logger_flush(lg);
    assert_int_equal(dk_logger_dropped(lg), 0);
    assert_int_equal(json_array_size(c->entries), 4000);

    char *out = read_all(f);
    int next[4] = {0, 0, 0, 0};
    size_t lines = 0;
    for (char *line = out, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
        json_error_t err;
        json_t *o = json_loadb(line, (size_t)(nl - line), 0, &err);
        assert_non_null(o);
        int t = (int)json_integer_value(json_object_get(o, "t"));
        assert_true(t >= 0 && t < 4);
        /* Per-thread order is preserved. */
        assert_int_equal(json_integer_value(json_object_get(o, "i")), next[t]);
        next[t]++;
        json_decref(o);
        lines++;
    }
    assert_int_equal(lines, 4000);
    free(out);
    dk_logger_free(lg);
    fclose(f);
}

typedef struct drain_arg {
    int fd;
    size_t lines;
} drain_arg;

static void *drain(void *p)
{
    drain_arg *a = p;
    char buf[65536];
    ssize_t n;
    while ((n = read(a->fd, buf, sizeof(buf))) > 0)
        for (ssize_t i = 0; i < n; i++)
            a->lines += buf[i] == '\n';
    return NULL;
}

static void test_stalled_writer_drops(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    FILE *w = fdopen(fds[1], "w");
    assert_non_null(w);
    dk_logger *lg = dk_logger_new(DK_LOG_INFO, DK_LOG_JSON, w);

    /* Nobody reads the pipe: the writer stalls once the pipe buffer is full,
     * the queue fills, and further entries are dropped without blocking. */
    const int total = 30000;
    uint64_t start = dk_now_ms();
    for (int i = 0; i < total; i++)
        dk_log_info(lg, "stalled writer test line with some padding to fill the pipe quickly",
                    NULL);
    uint64_t elapsed = dk_now_ms() - start;
    assert_true(elapsed < 10000);
    uint64_t dropped = dk_logger_dropped(lg);
    assert_true(dropped > 0);

    drain_arg da = {fds[0], 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, drain, &da), 0);
    dk_logger_flush(lg);
    dk_logger_free(lg);
    fclose(w);
    pthread_join(th, NULL);
    close(fds[0]);
    assert_int_equal(da.lines + dropped, (size_t)total);
}

/* ---- transports ---- */

static void reentrant_log(const dk_log_entry *e, void *user)
{
    dk_logger *lg = user;
    /* Logging into the same family from a transport is dropped, not a deadlock. */
    dk_log_error(lg, "nested", NULL);
    (void)e;
}

static void test_reentrant_transport(void **state)
{
    (void)state;
    dk_logger *lg = dk_logger_new_empty(DK_LOG_INFO);
    capture *c = capture_add(lg, NULL);
    assert_int_equal(dk_logger_add_transport(lg, reentrant_log, lg, NULL), 0);
    dk_log_info(lg, "outer", NULL);
    assert_int_equal(json_array_size(c->entries), 1);
    assert_int_equal(dk_logger_add_transport(lg, NULL, NULL, NULL), DK_EINVAL);
    dk_logger_free(lg);
}

static void test_file_transport(void **state)
{
    (void)state;
    char path[] = "/tmp/dk_test_log_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    char rotated[64];
    snprintf(rotated, sizeof(rotated), "%s.1", path);

    dk_logger *lg = dk_logger_new_empty(DK_LOG_INFO);
    assert_int_equal(dk_logger_add_file(lg, path, DK_LOG_JSON), 0);
    assert_int_equal(dk_logger_add_file(lg, "/nonexistent-dir/x.log", DK_LOG_JSON), DK_EIO);
    dk_log_info(lg, "first", NULL);
    assert_int_equal(rename(path, rotated), 0);
    dk_logger_reopen(lg);
    dk_log_info(lg, "second", json_pack("{s:s}", "token", "t"));
    dk_logger_free(lg);

    FILE *f = fopen(rotated, "r");
    char *out = read_all((fseek(f, 0, SEEK_END), f));
    assert_non_null(strstr(out, "\"message\":\"first\"}\n"));
    assert_int_equal(count_lines(out), 1);
    free(out);
    fclose(f);
    f = fopen(path, "r");
    out = read_all((fseek(f, 0, SEEK_END), f));
    assert_non_null(strstr(out, "\"message\":\"second\",\"token\":\"[REDACTED]\"}\n"));
    assert_int_equal(count_lines(out), 1);
    free(out);
    fclose(f);
    unlink(path);
    unlink(rotated);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_level_parse),
        cmocka_unit_test(test_filter_error_only),
        cmocka_unit_test(test_filter_debug_all),
        cmocka_unit_test(test_child_context),
        cmocka_unit_test(test_empty_child_context),
        cmocka_unit_test(test_json_exact),
        cmocka_unit_test(test_pretty_exact),
        cmocka_unit_test(test_reserved_keys),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_invalid_utf8_through_log),
        cmocka_unit_test(test_redaction),
        cmocka_unit_test(test_redaction_default_keys_and_add),
        cmocka_unit_test(test_console_tmpfile),
        cmocka_unit_test(test_concurrent_whole_lines),
        cmocka_unit_test(test_stalled_writer_drops),
        cmocka_unit_test(test_reentrant_transport),
        cmocka_unit_test(test_file_transport),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
