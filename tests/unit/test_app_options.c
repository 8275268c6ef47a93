/* dk_app_options_parse(): --help/--version (help_returns), DONKEY_* variables
 * with the flag winning, errors naming the variable, --access-log,
 * --health-path/--ready-path, and what is left in argv. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <donkey/donkey.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Runs the parser on `args` (NULL-terminated, argv[0] included); the
 * remaining arguments are copied into `left` (NULL-terminated). */
static int parse(dk_app_options *o, dk_err *err, const char **args, char **left, int *nleft)
{
    static char *argv[32];
    int argc = 0;
    for (; args[argc] != NULL; argc++)
        argv[argc] = (char *)args[argc];
    argv[argc] = NULL;
    int rc = dk_app_options_parse(o, &argc, argv, err);
    if (left != NULL) {
        for (int i = 0; i < argc; i++)
            left[i] = argv[i];
        left[argc] = NULL;
        *nleft = argc;
    }
    return rc;
}

/* Captures what `fn` prints on stdout. Caller frees. */
static char *capture(int (*fn)(void *), void *arg, int *rc)
{
    fflush(stdout);
    char path[] = "/tmp/dk-test-app-options-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    int saved = dup(STDOUT_FILENO);
    dup2(fd, STDOUT_FILENO);
    *rc = fn(arg);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    off_t n = lseek(fd, 0, SEEK_END);
    char *text = calloc(1, (size_t)n + 1);
    assert_int_equal(pread(fd, text, (size_t)n, 0), n);
    close(fd);
    unlink(path);
    return text;
}

static int run_help(void *arg)
{
    dk_app_options o;
    dk_app_options_init(&o);
    o.help_returns = true;
    o.usage = "My options:\n  --colour C  the colour\n";
    dk_err err = {0};
    return parse(&o, &err, (const char *[]){"/usr/bin/shop", "--port", "1", (const char *)arg,
                                           NULL},
                 NULL, NULL);
}

static void test_help_and_version_return_when_asked(void **state)
{
    int rc;
    char *out = capture(run_help, "--help", &rc);
    assert_int_equal(rc, DK_APP_HELP_SHOWN);
    assert_non_null(strstr(out, "Usage: shop [OPTIONS]"));
    assert_non_null(strstr(out, "My options:\n  --colour C"));
    assert_non_null(strstr(out, "default 3000; env PORT"));
    assert_non_null(strstr(out, "--access-log on|off|FRACTION"));
    free(out);
    out = capture(run_help, "-h", &rc);
    assert_int_equal(rc, DK_APP_HELP_SHOWN);
    free(out);
    out = capture(run_help, "--version", &rc);
    assert_int_equal(rc, DK_APP_HELP_SHOWN);
    char want[64];
    snprintf(want, sizeof(want), "shop (donkey %s)\n", dk_version());
    assert_string_equal(out, want);
    free(out);
}

static void test_environment_then_flags(void **state)
{
    setenv("DONKEY_MAX_BODY", "2k", 1);
    setenv("DONKEY_THREADS", "3", 1);
    setenv("DONKEY_HTTP2", "1", 1);
    setenv("DONKEY_ACCESS_LOG", "0.5", 1);
    dk_app_options o;
    dk_app_options_init(&o);
    dk_err err = {0};
    char *left[32];
    int n = 0;
    assert_int_equal(parse(&o, &err,
                           (const char *[]){"app", "--mine", "--threads", "5", "x", "--", NULL},
                           left, &n),
                     0);
    assert_int_equal(o.max_body_bytes, 2048);
    assert_int_equal(o.threads, 5); /* the flag wins */
    assert_true(o.http2);
    assert_true(o.access_log > 0.49 && o.access_log < 0.51);
    assert_true(o.env_read);
    /* Unknown arguments stay, in order. */
    assert_int_equal(n, 4);
    assert_string_equal(left[1], "--mine");
    assert_string_equal(left[2], "x");
    assert_string_equal(left[3], "--");
    assert_null(left[4]);

    setenv("DONKEY_HTTP2", "maybe", 1);
    dk_app_options_init(&o);
    assert_int_equal(parse(&o, &err, (const char *[]){"app", NULL}, NULL, NULL), DK_EINVAL);
    assert_non_null(strstr(err.message, "DONKEY_HTTP2"));
    unsetenv("DONKEY_HTTP2");
    setenv("DONKEY_THREADS", "many", 1);
    dk_app_options_init(&o);
    assert_int_equal(parse(&o, &err, (const char *[]){"app", NULL}, NULL, NULL), DK_EINVAL);
    assert_non_null(strstr(err.message, "environment variable DONKEY_THREADS"));
    assert_non_null(strstr(err.message, "--threads"));
    unsetenv("DONKEY_THREADS");
    unsetenv("DONKEY_MAX_BODY");
    unsetenv("DONKEY_ACCESS_LOG");
}

static void test_access_log_and_probe_paths(void **state)
{
    dk_app_options o;
    dk_app_options_init(&o);
    assert_true(o.access_log < 0); /* default: decided by DONKEY_ENV */
    assert_string_equal(o.health_path, "/healthz");
    assert_string_equal(o.ready_path, "/readyz");
    dk_err err = {0};
    assert_int_equal(parse(&o, &err,
                           (const char *[]){"app", "--access-log", "off", "--health-path",
                                            "/live", "--ready-path", "off", NULL},
                           NULL, NULL),
                     0);
    assert_true(o.access_log == 0);
    assert_string_equal(o.health_path, "/live");
    assert_null(o.ready_path);
    const char *bad[][3] = {{"--access-log", "2", NULL},      {"--access-log", "sometimes", NULL},
                            {"--health-path", "live", NULL},  {"--ready-path", "/", NULL},
                            {"--ready-path", "/a?b", NULL},   {"--access-log", NULL, NULL}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        dk_app_options_init(&o);
        const char *args[] = {"app", bad[i][0], bad[i][1], NULL};
        assert_int_equal(parse(&o, &err, args, NULL, NULL), DK_EINVAL);
        assert_non_null(strstr(err.message, bad[i][0]));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_and_version_return_when_asked),
        cmocka_unit_test(test_environment_then_flags),
        cmocka_unit_test(test_access_log_and_probe_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
