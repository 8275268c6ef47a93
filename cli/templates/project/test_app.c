/* {{name}}: in-process tests with the donkey harness (no socket). Run with
 * `ctest --test-dir build`. */
#include "app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                    \
        }                                                                  \
    } while (0)

static dk_harness *start(void)
{
    dk_harness_options o;
    dk_harness_options_init(&o);
    o.plugins = app_plugins;
    o.nplugins = app_nplugins;
    o.configs = app_plugin_configs;
    dk_err err = {0};
    dk_harness *h = dk_harness_new_opts(&o, &err);
    if (h == NULL) {
        fprintf(stderr, "harness: %s\n", err.message);
        exit(1);
    }
    if (dk_harness_use(h, health_router(), &err) != 0 ||
        dk_harness_use(h, {{plugin}}_router(), &err) != 0) {
        fprintf(stderr, "harness: %s\n", err.message);
        exit(1);
    }
    return h;
}

static void test_ping(dk_harness *h)
{
    char *out = NULL;
    int status = dk_harness_call(h, "health.ping", "{}", &out);
    CHECK(status == 200);
    json_t *v = out ? json_loads(out, 0, NULL) : NULL;
    CHECK(json_is_true(json_object_get(v, "ok")));
    json_decref(v);
    free(out);
}

static void test_hello(dk_harness *h)
{
    char *out = NULL;
    int status = dk_harness_call(h, "{{plugin}}.hello", "{\"name\":\"ann\"}", &out);
    CHECK(status == 200);
    CHECK(out != NULL && strstr(out, "ann") != NULL);
    free(out);

    /* The migration ran: the plugin's table exists in the harness database. */
    json_t *rows = NULL;
    CHECK(dk_db_query(dk_harness_db(h), "SELECT COUNT(*) AS n FROM {{plugin}}_items", NULL,
                      &rows) == 0);
    CHECK(json_integer_value(json_object_get(json_array_get(rows, 0), "n")) == 1);
    json_decref(rows);

    /* Input is validated before the handler runs. */
    status = dk_harness_call(h, "{{plugin}}.hello", "{}", NULL);
    CHECK(status == 400);
}

int main(void)
{
    dk_harness *h = start();
    test_ping(h);
    test_hello(h);
    dk_harness_free(h);
    if (failures != 0) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("all tests passed\n");
    return 0;
}
