/* Router naming, children, mounting, sticky middleware, start-up errors, the
 * error table and registry, and dispatch status codes, in-process. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <donkey/donkey.h>
#include <donkey/harness.h>
#include <donkey/plugin.h>

#include <stdlib.h>
#include <string.h>

static int echo_name(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    *out = json_pack("{s:s, s:s}", "route", dk_ctx_route(ctx), "tag", (const char *)user);
    return 0;
}

static dk_harness *new_harness(void)
{
    dk_err err = {0};
    dk_harness *h = dk_harness_new(NULL, 0, &err);
    assert_non_null(h);
    return h;
}

static json_t *call_json(dk_harness *h, const char *route, const char *body, int *status)
{
    char *out = NULL;
    *status = dk_harness_call(h, route, body, &out);
    json_t *j = out ? json_loads(out, JSON_DECODE_ANY, NULL) : NULL;
    free(out);
    return j;
}

static void test_names_children_mount(void **state)
{
    dk_harness *h = new_harness();
    dk_router *api = dk_router_new("api");
    assert_int_equal(dk_route_typed(api, "counter.increment", NULL, NULL, echo_name, "a"), 0);
    dk_router *child = dk_router_child(api, "admin");
    assert_non_null(child);
    assert_int_equal(dk_route_typed(child, "stats", NULL, NULL, echo_name, "b"), 0);
    dk_router *lib = dk_router_new("");
    assert_int_equal(dk_route_typed(lib, "ping", NULL, NULL, echo_name, "c"), 0);
    assert_int_equal(dk_router_mount(api, lib), 0);
    /* Routes added to `lib` after mounting are not seen. */
    assert_int_equal(dk_route_typed(lib, "late", NULL, NULL, echo_name, "d"), 0);
    dk_router_free(lib);
    dk_err err = {0};
    assert_int_equal(dk_harness_use(h, api, &err), 0);

    int st;
    json_t *j = call_json(h, "api.counter.increment", "{}", &st);
    assert_int_equal(st, 200);
    assert_string_equal(json_string_value(json_object_get(j, "route")), "api.counter.increment");
    json_decref(j);
    j = call_json(h, "api.admin.stats", "{}", &st);
    assert_int_equal(st, 200);
    assert_string_equal(json_string_value(json_object_get(j, "tag")), "b");
    json_decref(j);
    j = call_json(h, "api.ping", "{}", &st);
    assert_int_equal(st, 200);
    json_decref(j);
    j = call_json(h, "api.late", "{}", &st);
    assert_int_equal(st, 404);
    assert_string_equal(json_string_value(json_object_get(j, "error")), "NOT_FOUND");
    json_decref(j);
    dk_harness_free(h);
}

/* Middleware that records its name into ctx value "trail". */
static int trail_mw(dk_ctx *ctx, dk_request *req, dk_response *res, const json_t *config,
                    dk_next *next, void *user)
{
    json_t *t = dk_ctx_get(ctx, "trail");
    if (t == NULL) {
        dk_ctx_set(ctx, "trail", json_array());
        t = dk_ctx_get(ctx, "trail");
    }
    json_array_append_new(t, json_string(json_string_value(json_object_get(config, "n"))));
    return dk_next_run(next);
}

static int trail_out(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    json_t *t = dk_ctx_get(ctx, "trail");
    *out = json_pack("{s:O}", "trail", t ? t : json_null());
    return 0;
}

static const dk_plugin_middleware trail_mws[] = {{"trail", trail_mw}, {NULL, NULL}};

static void test_sticky_middleware_order(void **state)
{
    dk_plugin p;
    memset(&p, 0, sizeof(p));
    p.name = "trail";
    p.middleware = trail_mws;
    const dk_plugin *plugins[] = {&p};
    dk_err err = {0};
    dk_harness *h = dk_harness_new(plugins, 1, &err);
    assert_non_null(h);
    dk_router *r = dk_router_new("m");
    assert_int_equal(dk_route_typed(r, "none", NULL, NULL, trail_out, NULL), 0);
    dk_router_use(r, "trail", "{\"n\":\"first\"}");
    assert_int_equal(dk_route_typed(r, "one", NULL, NULL, trail_out, NULL), 0);
    dk_router *c = dk_router_child(r, "c");
    dk_router_use(r, "trail", "{\"n\":\"second\"}");
    assert_int_equal(dk_route_typed(r, "two", NULL, NULL, trail_out, NULL), 0);
    dk_router_use(c, "trail", "{\"n\":\"child\"}");
    assert_int_equal(dk_route_typed(c, "x", NULL, NULL, trail_out, NULL), 0);
    assert_int_equal(dk_harness_use(h, r, &err), 0);

    int st;
    json_t *j = call_json(h, "m.none", "{}", &st);
    assert_true(json_is_null(json_object_get(j, "trail")));
    json_decref(j);
    j = call_json(h, "m.one", "{}", &st);
    assert_int_equal(json_array_size(json_object_get(j, "trail")), 1);
    json_decref(j);
    j = call_json(h, "m.two", "{}", &st);
    json_t *t = json_object_get(j, "trail");
    assert_int_equal(json_array_size(t), 2);
    assert_string_equal(json_string_value(json_array_get(t, 0)), "first");
    assert_string_equal(json_string_value(json_array_get(t, 1)), "second");
    json_decref(j);
    /* The child copied the parent's list at creation (first only), then its own. */
    j = call_json(h, "m.c.x", "{}", &st);
    t = json_object_get(j, "trail");
    assert_int_equal(json_array_size(t), 2);
    assert_string_equal(json_string_value(json_array_get(t, 1)), "child");
    json_decref(j);
    dk_harness_free(h);
}

static void test_startup_errors(void **state)
{
    dk_err err = {0};
    dk_harness *h = new_harness();
    dk_router *r = dk_router_new("d");
    dk_route_typed(r, "a", NULL, NULL, echo_name, NULL);
    assert_int_equal(dk_route_typed(r, "a", NULL, NULL, echo_name, NULL), DK_EEXIST);
    assert_true(dk_harness_use(h, r, &err) < 0);
    assert_non_null(strstr(err.message, "d.a"));
    dk_harness_free(h);

    /* Duplicates across routers. */
    h = new_harness();
    dk_router *r1 = dk_router_new("x"), *r2 = dk_router_new("x");
    dk_route_typed(r1, "same", NULL, NULL, echo_name, NULL);
    dk_route_typed(r2, "same", NULL, NULL, echo_name, NULL);
    assert_int_equal(dk_harness_use(h, r1, &err), 0);
    assert_true(dk_harness_use(h, r2, &err) < 0);
    assert_non_null(strstr(err.message, "x.same"));
    dk_harness_free(h);

    /* Issue 16: route names are dot-separated [A-Za-z0-9_]+ segments, checked
     * at registration (typed, raw, custom, a bad prefix, a mount); start-up
     * names the route. */
    static const char *const good[] = {"get", "get_2", "A.b_c.D9", "2fa"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        r = dk_router_new("ok");
        assert_int_equal(dk_route_typed(r, good[i], NULL, NULL, echo_name, NULL), 0);
        dk_router_free(r);
    }
    static const struct {
        const char *prefix, *name, *full;
    } bad[] = {
        {"n", "get-user", "n.get-user"}, {"n", "a..b", "n.a..b"},   {"n", "", "n."},
        {"n", "x/y", "n.x/y"},           {"n", "trail.", "n.trail."}, {"my api", "get", "my api.get"},
        {"", ".x", ".x"},                {"n", "\xc3\xa9t\xc3\xa9", "n.\xc3\xa9t\xc3\xa9"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        h = new_harness();
        r = dk_router_new(bad[i].prefix);
        assert_int_equal(dk_route_typed(r, bad[i].name, NULL, NULL, echo_name, NULL), DK_EINVAL);
        assert_true(dk_harness_use(h, r, &err) < 0);
        char want[64];
        snprintf(want, sizeof(want), "route '%s': invalid name", bad[i].full);
        if (strstr(err.message, want) == NULL)
            fail_msg("expected \"%s\" in \"%s\"", want, err.message);
        dk_harness_free(h);
    }
    h = new_harness();
    r = dk_router_new("n");
    assert_int_equal(dk_route_raw(r, "file.tar-gz", DK_METHOD_GET, NULL, NULL), DK_EINVAL);
    assert_true(dk_harness_use(h, r, &err) < 0);
    assert_non_null(strstr(err.message, "n.file.tar-gz"));
    dk_harness_free(h);
    h = new_harness();
    r = dk_router_new("n");
    assert_int_equal(
        dk_route_custom(r, "k", "a b", 0, NULL, NULL, NULL, (dk_handler_fn)echo_name, NULL),
        DK_EINVAL);
    assert_true(dk_harness_use(h, r, &err) < 0);
    assert_non_null(strstr(err.message, "n.a b"));
    dk_harness_free(h);
    h = new_harness();
    r = dk_router_new("v-2");
    dk_router *src = dk_router_new("");
    assert_int_equal(dk_route_typed(src, "ping", NULL, NULL, echo_name, NULL), 0);
    assert_int_equal(dk_router_mount(r, src), DK_EINVAL);
    dk_router_free(src);
    assert_true(dk_harness_use(h, r, &err) < 0);
    assert_non_null(strstr(err.message, "route 'v-2.ping': invalid name"));
    dk_harness_free(h);
    /* A typo in a route's schema is a start-up error naming route and keyword. */
    h = new_harness();
    r = dk_router_new("s");
    assert_int_equal(dk_route_typed(r, "typo", "{\"type\":\"string\",\"minLenght\":1}", NULL,
                                    echo_name, NULL),
                     DK_EINVAL);
    assert_true(dk_harness_use(h, r, &err) < 0);
    assert_non_null(strstr(err.message, "s.typo"));
    assert_non_null(strstr(err.message, "minLenght"));
    dk_harness_free(h);

    /* Invalid schema, unknown middleware, unknown kind, reserved config key. */
    h = new_harness();
    r = dk_router_new("s");
    assert_int_equal(dk_route_typed(r, "bad", "{\"type\":\"strin\"}", NULL, echo_name, NULL),
                     DK_EINVAL);
    assert_true(dk_harness_use(h, r, &err) < 0);
    assert_non_null(strstr(err.message, "s.bad"));
    dk_harness_free(h);

    h = new_harness();
    r = dk_router_new("s");
    dk_router_use(r, "atuh", NULL);
    dk_route_typed(r, "guarded", NULL, NULL, echo_name, NULL);
    assert_true(dk_harness_use(h, r, &err) < 0);
    assert_non_null(strstr(err.message, "atuh"));
    dk_harness_free(h);

    h = new_harness();
    r = dk_router_new("s");
    dk_route_custom(r, "nokind", "k", 0, NULL, NULL, NULL, (dk_handler_fn)echo_name, NULL);
    assert_true(dk_harness_use(h, r, &err) < 0);
    assert_non_null(strstr(err.message, "nokind"));
    dk_harness_free(h);

    r = dk_router_new("s");
    assert_int_equal(dk_route_custom(r, "x", "k", 0, NULL, NULL, "{\"name\":1}",
                                     (dk_handler_fn)echo_name, NULL),
                     DK_EINVAL);
    dk_router_free(r);
}

static void test_error_table_and_registry(void **state)
{
    dk_error *e = dk_error_std(404, NULL, json_pack("{s:i}", "userId", 123));
    assert_int_equal(dk_error_status(e), 404);
    assert_string_equal(dk_error_code(e), "NOT_FOUND");
    assert_string_equal(dk_error_message(e), "Not Found");
    json_t *b = dk_error_body(e);
    char *s = json_dumps(b, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_string_equal(s, "{\"error\":\"NOT_FOUND\",\"message\":\"Not Found\",\"details\":{\"userId\":123}}");
    free(s);
    json_decref(b);
    dk_error_free(e);

    /* Empty details omitted; empty message kept for standard errors. */
    e = dk_error_std(409, "", json_object());
    b = dk_error_body(e);
    assert_null(json_object_get(b, "details"));
    assert_string_equal(json_string_value(json_object_get(b, "message")), "");
    json_decref(b);
    dk_error_free(e);

    /* Unknown status maps to 500. */
    e = dk_error_std(499, NULL, NULL);
    assert_int_equal(dk_error_status(e), 500);
    dk_error_free(e);
    e = dk_error_new(200, "WEIRD", "x", NULL);
    assert_int_equal(dk_error_status(e), 500);
    dk_error_free(e);

    dk_errors *errs = dk_errors_new();
    assert_int_equal(dk_errors_register(errs, "PaymentRequired", 402, "PAYMENT_REQUIRED",
                                        "Payment is required"), 0);
    assert_int_equal(dk_errors_register(errs, "PaymentRequired", 402, "PAYMENT_REQUIRED",
                                        "Payment is required"), 0);
    assert_int_equal(dk_errors_register(errs, "PaymentRequired", 403, "X", NULL), DK_EEXIST);
    assert_int_equal(dk_errors_register(errs, "NotFound", 404, "X", NULL), DK_EINVAL);
    assert_int_equal(dk_errors_register(errs, "register", 404, "X", NULL), DK_EINVAL);
    assert_int_equal(dk_errors_register(errs, "Low", 200, "X", NULL), DK_EINVAL);
    e = dk_errors_make(errs, "PaymentRequired", NULL, NULL);
    assert_int_equal(dk_error_status(e), 402);
    assert_string_equal(dk_error_message(e), "Payment is required");
    dk_error_free(e);
    e = dk_errors_make(errs, "PaymentRequired", "Card declined", NULL);
    assert_string_equal(dk_error_message(e), "Card declined");
    dk_error_free(e);
    dk_errors_register(errs, "Locked", 423, "RESOURCE_LOCKED", NULL);
    e = dk_errors_make(errs, "Locked", "", NULL);
    assert_string_equal(dk_error_message(e), "RESOURCE_LOCKED");
    dk_error_free(e);
    e = dk_errors_make(errs, "Unauthorized", "Please log in", NULL);
    assert_int_equal(dk_error_status(e), 401);
    assert_string_equal(dk_error_message(e), "Please log in");
    dk_error_free(e);
    assert_null(dk_errors_make(errs, "Nope", NULL, json_object()));
    assert_true(dk_errors_has(errs, "Gone"));
    dk_errors_free(errs);
}

static int fail_with(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    return dk_fail(ctx, 422, "bad %s", "thing");
}

static int raw_get(dk_ctx *ctx, dk_request *req, dk_response *res, void *user)
{
    assert_int_equal(dk_response_set_header(res, "X-Bad", "a\r\nInjected: 1"), DK_EINVAL);
    assert_int_equal(dk_response_set_header(res, "Bad Name", "v"), DK_EINVAL);
    dk_response_set_header(res, "X-Q", dk_request_query_param(req, "q") ? "yes" : "no");
    return dk_response_set_body(res, "ok", 2);
}

static void test_dispatch_codes(void **state)
{
    dk_harness *h = new_harness();
    dk_router *r = dk_router_new("t");
    dk_route_typed(r, "fail", NULL, NULL, fail_with, NULL);
    dk_route_raw(r, "raw", DK_METHOD_GET, raw_get, NULL);
    dk_err err = {0};
    assert_int_equal(dk_harness_use(h, r, &err), 0);
    int st;
    json_t *j = call_json(h, "t.fail", "{}", &st);
    assert_int_equal(st, 422);
    assert_string_equal(json_string_value(json_object_get(j, "message")), "bad thing");
    json_decref(j);
    j = call_json(h, "t.fail", "{oops", &st);
    assert_int_equal(st, 400);
    assert_string_equal(json_string_value(json_object_get(j, "message")), "Invalid JSON");
    json_decref(j);

    dk_harness_response res;
    assert_int_equal(dk_harness_request(h, "GET", "t.raw?q=1", NULL, NULL, &res), 0);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body, "ok");
    assert_null(dk_harness_response_header(&res, "X-Bad"));
    dk_harness_response_free(&res);
    assert_int_equal(dk_harness_request(h, "POST", "t.raw", NULL, "x", &res), 0);
    assert_int_equal(res.status, 405);
    assert_string_equal(dk_harness_response_header(&res, "Allow"), "GET");
    dk_harness_response_free(&res);
    dk_harness_free(h);
}

/* dk_ctx_printf (hand-assembled "%s" formats and printf ones) and response
 * headers (owned, literal, replaced, more than 64) keep their exact bytes and order. */
static int headers_and_printf(dk_ctx *ctx, dk_request *req, dk_response *res, void *user)
{
    assert_string_equal(dk_ctx_printf(ctx, "hello %s", "ann"), "hello ann");
    assert_string_equal(dk_ctx_printf(ctx, "%s%%%s|", "a", ""), "a%|");
    const char *none = getenv("DK_TEST_UNSET_VARIABLE"); /* NULL, unknown to the compiler */
    assert_null(none);
    assert_string_equal(dk_ctx_printf(ctx, "%s", none), "(null)");
    assert_string_equal(dk_ctx_printf(ctx, "plain"), "plain");
    assert_string_equal(dk_ctx_printf(ctx, "%d-%s-%05.1f", 42, "x", 2.25), "42-x-002.2");
    char big[6000];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char *p = dk_ctx_printf(ctx, "<%s>", big);
    assert_int_equal(strlen(p), sizeof(big) + 1);
    assert_int_equal(p[0], '<');
    assert_int_equal(p[sizeof(big)], '>');
    p = dk_ctx_printf(ctx, "%d%s", 7, big);
    assert_int_equal(strlen(p), sizeof(big));
    assert_int_equal(p[0], '7');
    /* Many small printf results share the arena's blocks. */
    for (int i = 0; i < 500; i++) {
        char want[32];
        snprintf(want, sizeof(want), "n=%d", i);
        assert_string_equal(dk_ctx_printf(ctx, "n=%d", i), want);
    }

    dk_response_add_header(res, "content-type", "text/plain");
    for (int i = 0; i < 70; i++) {
        char name[16], value[16];
        snprintf(name, sizeof(name), "X-H%d", i);
        snprintf(value, sizeof(value), "v%d", i);
        assert_int_equal(dk_response_add_header(res, name, value), 0);
    }
    assert_int_equal(dk_response_set_header(res, "x-h3", "again"), 0);
    assert_int_equal(dk_response_add_header(res, "X-H5", "twice"), 0);
    /* Replaces the content-type added first, at the end. */
    assert_int_equal(dk_response_set_json(res, json_pack("{s:s}", "p", dk_ctx_printf(ctx, "%s!", "ok"))), 0);
    assert_int_equal(dk_response_set_header(res, "X-H5", "once"), 0);
    return 0;
}

static void test_headers_and_printf(void **state)
{
    dk_harness *h = new_harness();
    dk_router *r = dk_router_new("t");
    dk_route_raw(r, "hp", DK_METHOD_GET, headers_and_printf, NULL);
    dk_err err = {0};
    assert_int_equal(dk_harness_use(h, r, &err), 0);
    dk_harness_response res;
    assert_int_equal(dk_harness_request(h, "GET", "t.hp", NULL, NULL, &res), 0);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body, "{\"p\":\"ok!\"}");
    /* X-H0..X-H69 without 3 and 5, then x-h3, Content-Type, X-H5, X-Request-Id. */
    assert_int_equal(res.nheaders, 68 + 4);
    size_t k = 0;
    for (int i = 0; i < 70; i++) {
        if (i == 3 || i == 5)
            continue;
        char name[16], value[16];
        snprintf(name, sizeof(name), "X-H%d", i);
        snprintf(value, sizeof(value), "v%d", i);
        assert_string_equal(res.headers[2 * k], name);
        assert_string_equal(res.headers[2 * k + 1], value);
        k++;
    }
    assert_string_equal(res.headers[2 * k], "x-h3");
    assert_string_equal(res.headers[2 * k + 1], "again");
    k++;
    assert_string_equal(res.headers[2 * k], "Content-Type");
    assert_string_equal(res.headers[2 * k + 1], "application/json");
    k++;
    assert_string_equal(res.headers[2 * k], "X-H5");
    assert_string_equal(res.headers[2 * k + 1], "once");
    k++;
    assert_string_equal(res.headers[2 * k], "X-Request-Id");
    assert_int_equal(strlen(res.headers[2 * k + 1]), 36);
    dk_harness_response_free(&res);
    dk_harness_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_children_mount),
        cmocka_unit_test(test_sticky_middleware_order),
        cmocka_unit_test(test_startup_errors),
        cmocka_unit_test(test_error_table_and_registry),
        cmocka_unit_test(test_dispatch_codes),
        cmocka_unit_test(test_headers_and_printf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
