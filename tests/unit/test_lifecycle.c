/* The application's life cycle (src/app/lifecycle.c): a start that fails at
 * any service leaves nothing running (no thread it started, no job worker, no
 * cron timer), as app.h promises; invalid config_json is reported at start. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "donkey/app.h"
#include "donkey/cron.h"
#include "donkey/jobs.h"
#include "internal.h"

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* The names of this process's donkey threads (every one names itself
 * "dk-..."), sorted and joined by spaces. Other threads (a sanitizer's,
 * libuv's pool) are not counted. */
static void thread_names(char *out, size_t len)
{
    char names[128][32];
    size_t n = 0;
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 128) {
        if (e->d_name[0] == '.')
            continue;
        char path[300];
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue; /* exited meanwhile */
        if (fgets(names[n], sizeof(names[n]), f) != NULL) {
            names[n][strcspn(names[n], "\n")] = '\0';
            if (strncmp(names[n], "dk-", 3) == 0)
                n++;
        }
        fclose(f);
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), (int (*)(const void *, const void *))strcmp);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        strncat(out, names[i], len - strlen(out) - 2);
        strcat(out, " ");
    }
}

/* The thread list once the threads dk_app_new() starts (service loop,
 * log writer) have named themselves and nothing changes for 100 ms. */
static void settled_threads(char *out, size_t len)
{
    char prev[4096] = "";
    int same = 0;
    for (int i = 0; i < 150; i++) {
        thread_names(out, len);
        bool named = strstr(out, "dk-service ") != NULL && strstr(out, "dk-log ") != NULL;
        same = named && strcmp(out, prev) == 0 ? same + 1 : 0;
        if (same >= 5)
            return;
        snprintf(prev, sizeof(prev), "%s", out);
        sleep_ms(20);
    }
    fail_msg("threads never settled: [%s]", out);
}

/* Waits up to 3 s for the thread list to equal `want`. */
static void expect_threads(const char *want, const char *when)
{
    char now[4096];
    for (int i = 0; i < 150; i++) {
        thread_names(now, sizeof(now));
        if (strcmp(now, want) == 0)
            return;
        sleep_ms(20);
    }
    fail_msg("%s: threads [%s], expected [%s]", when, now, want);
}

static atomic_int job_runs, cron_runs;

static int job_fn(dk_job_ctx *jc, const json_t *data, json_t **result, void *user)
{
    atomic_fetch_add(&job_runs, 1);
    return 0;
}

static int cron_fn(const char *name, void *user)
{
    atomic_fetch_add(&cron_runs, 1);
    return 0;
}

static dk_app *new_app(int port)
{
    dk_app_options o;
    dk_app_options_init(&o);
    o.port = port;
    o.log_level = DK_LOG_ERROR;
    o.install_signals = false;
    o.db_pool = 2;
    o.workers = 2;
    dk_app *app = dk_app_new(&o);
    assert_non_null(app);
    const dk_core *c = dk_app_core(app);
    assert_int_equal(dk_jobs_register(c->jobs, "count", job_fn, NULL, NULL), 0);
    assert_int_equal(dk_cron_schedule(c->cron, "tick", "* * * * * *", cron_fn, NULL, NULL, NULL,
                                      NULL, NULL),
                     0);
    return app;
}

/* A start failing at each service in turn: dk_app_start returns the error and
 * every thread, worker and timer the start began is gone again. */
static void test_failed_start_leaves_nothing_running(void **state)
{
    (void)state;
    size_t jobs_at = dk__lifecycle_index("jobs"), cron_at = dk__lifecycle_index("cron");
    for (size_t i = 0; dk__lifecycle_name(i) != NULL; i++) {
        const char *name = dk__lifecycle_name(i);
        dk_app *app = new_app(0);
        char before[4096];
        settled_threads(before, sizeof(before));

        dk__lifecycle_fail_at(name);
        dk_err err = {0};
        int rc = dk_app_start(app, &err);
        dk__lifecycle_fail_at(NULL);
        if (rc >= 0 || strstr(err.message, name) == NULL)
            fail_msg("failing '%s': dk_app_start returned %d (%s)", name, rc, err.message);
        expect_threads(before, name);

        if (i > jobs_at) {
            /* The workers were started and stopped again: a job now waits. */
            int64_t id = 0;
            assert_int_equal(dk_jobs_enqueue(dk_app_core(app)->jobs, "count", NULL, NULL, &id),
                             0);
            sleep_ms(300);
            assert_int_equal(atomic_load(&job_runs), 0);
        }
        if (i == cron_at + 1) {
            /* The scheduler was started and stopped again: nothing fires. */
            atomic_store(&cron_runs, 0);
            sleep_ms(1300);
            assert_int_equal(atomic_load(&cron_runs), 0);
        }
        dk_app_free(app);
    }
    /* Without the injected failure the same application starts and stops. */
    dk_app *app = new_app(0);
    dk_err err = {0};
    assert_int_equal(dk_app_start(app, &err), 0);
    dk_app_stop(app);
    assert_int_equal(dk_app_wait(app), 0);
    dk_app_free(app);
}

/* A real failure, late in the start: the port is taken. */
static void test_busy_port(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 1), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);

    dk_app *app = new_app(ntohs(a.sin_port));
    char before[4096];
    settled_threads(before, sizeof(before));
    dk_err err = {0};
    assert_true(dk_app_start(app, &err) < 0);
    expect_threads(before, "busy port");
    assert_int_equal(dk_jobs_enqueue(dk_app_core(app)->jobs, "count", NULL, NULL, NULL), 0);
    sleep_ms(300);
    assert_int_equal(atomic_load(&job_runs), 0);
    dk_app_free(app);
    close(fd);
}

static void test_invalid_config_json(void **state)
{
    (void)state;
    static const char *const bad[] = {"{\"a\":", "[1, 2]", "\"text\""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        dk_app_options o;
        dk_app_options_init(&o);
        o.port = 0;
        o.log_level = DK_LOG_ERROR;
        o.install_signals = false;
        o.config_json = bad[i];
        dk_app *app = dk_app_new(&o);
        assert_non_null(app);
        dk_err err = {0};
        assert_int_equal(dk_app_start(app, &err), DK_EINVAL);
        if (strstr(err.message, "config_json") == NULL)
            fail_msg("config_json '%s': message '%s'", bad[i], err.message);
        dk_app_free(app);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failed_start_leaves_nothing_running),
        cmocka_unit_test(test_busy_port),
        cmocka_unit_test(test_invalid_config_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
