/* Allocation failures injected into the schema, router and JSON writer paths
 * (dk__alloc_fail_after, src/base/alloc.c): every allocation in turn fails,
 * and each run must end with a clean error (or success), never a crash or a
 * leak (run under ASan in CI). In the schema and JSON writer tests jansson
 * allocates through the same wrapper, so its failures are injected too; not
 * while it parses text, because jansson's parser reports some allocation
 * failures as syntax errors (a limitation of jansson, not donkey). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "donkey/app.h"
#include "donkey/schema.h"
#include "base/internal.h"

/* Runs `op` with the Nth allocation failing, N = 0, 1, ... until a run sees
 * no injected failure; that last run must succeed. Returns how many runs
 * saw a failure. */
static long every_failure(int (*op)(void *), void *arg, const char *what)
{
    for (long n = 0;; n++) {
        dk__alloc_fail_after(n);
        int rc = op(arg);
        long failed = dk__alloc_failures();
        dk__alloc_fail_after(-1);
        if (failed == 0) {
            if (rc != 0)
                fail_msg("%s: failed (%d) without an injected failure", what, rc);
            return n;
        }
        if (rc != 0 && rc != DK_ENOMEM)
            fail_msg("%s: allocation %ld failed: expected 0 or DK_ENOMEM, got %d", what, n, rc);
        if (n > 100000)
            fail_msg("%s: no end to allocations", what);
    }
}

static const char SCHEMA[] =
    "{\"type\":\"object\",\"required\":[\"name\",\"tags\"],\"additionalProperties\":false,"
    "\"properties\":{\"name\":{\"type\":\"string\",\"minLength\":1,\"pattern\":\"^[a-z]+$\"},"
    "\"age\":{\"type\":\"integer\",\"minimum\":0,\"default\":7},"
    "\"email\":{\"type\":\"string\",\"format\":\"email\"},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"enum\":[\"a\",\"b\"]},\"maxItems\":3},"
    "\"kind\":{\"anyOf\":[{\"const\":\"x\"},{\"type\":\"number\"}]}}}";

/* jansson's allocator: the wrapper while `jansson_injected`, else malloc. */
static bool jansson_injected;

static void *json_alloc(size_t size)
{
    return jansson_injected ? dk__malloc(size) : malloc(size);
}

struct schema_case {
    json_t *schema, *input;
    bool valid;
};

static int schema_op(void *arg)
{
    struct schema_case *c = arg;
    dk_err err = {0};
    dk_schema *s = dk_schema_compile(c->schema, &err);
    if (s == NULL)
        return err.code;
    json_t *out = NULL;
    int rc = dk_schema_validate(s, c->input, &out, NULL);
    json_decref(out);
    dk_schema_free(s);
    /* A valid input must pass; an invalid one must be reported invalid. */
    if (rc == DK_ENOMEM)
        return rc;
    return c->valid ? rc : (rc == DK_EINVAL ? 0 : -1000);
}

static void test_schema(void **state)
{
    (void)state;
    struct schema_case c = {.schema = json_loads(SCHEMA, 0, NULL), .valid = true};
    c.input = json_loads("{\"name\":\"ann\",\"tags\":[\"a\"],\"kind\":2}", 0, NULL);
    assert_non_null(c.schema);
    assert_non_null(c.input);
    jansson_injected = true;
    assert_true(every_failure(schema_op, &c, "schema (valid input)") > 5);
    jansson_injected = false;
    json_decref(c.input);
    c.input = json_loads("{\"name\":\"Bob\",\"tags\":[\"c\"],\"email\":\"x\",\"zz\":1}", 0, NULL);
    c.valid = false;
    jansson_injected = true;
    every_failure(schema_op, &c, "schema (invalid input)");
    jansson_injected = false;
    json_decref(c.input);
    json_decref(c.schema);
}

static int noop(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    (void)ctx;
    (void)user;
    *out = json_incref((json_t *)in);
    return 0;
}

static int router_op(void *arg)
{
    (void)arg;
    dk_app_options o;
    dk_app_options_init(&o);
    o.log_level = DK_LOG_ERROR;
    dk_app *app = dk_app_new(&o);
    if (app == NULL)
        return DK_ENOMEM;
    int rc = 0;
    dk_router *r = dk_router_new("users");
    if (r == NULL) {
        rc = DK_ENOMEM;
        goto out;
    }
    char name[32];
    for (int i = 0; i < 20 && rc == 0; i++) {
        snprintf(name, sizeof(name), "op%d", i);
        rc = dk_route_typed(r, name, "{\"type\":\"object\"}", NULL, noop, NULL);
    }
    dk_router *child = rc == 0 ? dk_router_child(r, "admin") : NULL;
    if (rc == 0 && child == NULL)
        rc = DK_ENOMEM;
    if (rc == 0)
        rc = dk_router_use(child, "rateLimit", "{\"max\":5,\"window\":\"1m\"}");
    if (rc == 0)
        rc = dk_route_typed(child, "reset", NULL, NULL, noop, NULL);
    if (rc == 0) {
        rc = dk_app_use(app, r);
        r = NULL;
    }
    if (rc == 0) {
        dk_err err = {0};
        json_t *doc = dk_app_routes_json(app, &err);
        if (doc == NULL)
            rc = err.code < 0 ? err.code : DK_ENOMEM;
        else if (json_array_size(json_object_get(doc, "routes")) != 21)
            rc = -1000;
        json_decref(doc);
    }
out:
    dk_router_free(r);
    dk_app_free(app);
    return rc;
}

static void test_router(void **state)
{
    (void)state;
    assert_true(every_failure(router_op, NULL, "router") > 20);
}

struct jsonw_case {
    json_t *value;
    char *expected; /* json_dumps() output, computed before any injection */
};

static int jsonw_op(void *arg)
{
    struct jsonw_case *c = arg;
    dk__buf b = {0};
    int rc = dk__json_write(&b, c->value);
    if (rc == 0 && strcmp(c->expected, b.data) != 0) {
        fprintf(stderr, "JSON writer: [%s], expected [%s]\n", b.data, c->expected);
        rc = -1000;
    }
    dk__buf_free(&b);
    return rc;
}

static void test_jsonw(void **state)
{
    (void)state;
    struct jsonw_case c;
    c.value = json_loads("{\"a\":[1,2.5,\"x\\u00e9\\n\",null,true,{\"b\":{}}],"
                         "\"long\":\"" "0123456789012345678901234567890123456789"
                         "0123456789012345678901234567890123456789"
                         "0123456789012345678901234567890123456789"
                         "0123456789012345678901234567890123456789"
                         "0123456789012345678901234567890123456789"
                         "0123456789012345678901234567890123456789" "\"}",
                         0, NULL);
    assert_non_null(c.value);
    c.expected = json_dumps(c.value, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_non_null(c.expected);
    /* (jansson's own json_dumps is not checked under injection: it can drop a
     * key when an allocation fails instead of failing.) */
    assert_true(every_failure(jsonw_op, &c, "JSON writer") >= 1);
    free(c.expected);
    json_decref(c.value);
}

int main(void)
{
    json_set_alloc_funcs(json_alloc, free);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema),
        cmocka_unit_test(test_router),
        cmocka_unit_test(test_jsonw),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
