/* The response JSON writer produces exactly json_dumps(JSON_COMPACT) bytes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"

static void same_as_jansson(const json_t *v)
{
    char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_non_null(want);
    dk__buf b = {0};
    assert_int_equal(dk__json_write(&b, v), 0);
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    free(want);
    dk__buf_free(&b);
}

static void test_documents(void **state)
{
    static const char *docs[] = {
        "{\"a\":1,\"b\":[true,false,null,-5,1.5,1e300,0.1,-0.0,100.0],\"c\":\"x\\\"\\\\\\n\\t\\u0001\\u001f\\u007f é/\"}",
        "[]", "{}", "\"\"", "0", "-9223372036854775807", "[1.0e-7,2.5e20,-3e-300,123456789.125]",
        "{\"nested\":{\"deep\":[[[{\"k\":\"\\ud83d\\ude00\"}]]]}}", "null", "true"};
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        json_t *v = json_loads(docs[i], JSON_DECODE_ANY, NULL);
        assert_non_null(v);
        same_as_jansson(v);
        json_decref(v);
    }
}

/* 10^(k-20): spans tiny to huge magnitudes. */
static double pow10_ish(int k)
{
    double p = 1e-20;
    for (int i = 0; i < k; i++)
        p *= 10;
    return p;
}

static void test_random_reals_and_ints(void **state)
{
    srand(42);
    for (int i = 0; i < 5000; i++) {
        double d = ((double)rand() - RAND_MAX / 2) * pow10_ish(i % 40);
        json_t *r = json_real(d);
        same_as_jansson(r);
        json_decref(r);
        json_t *n = json_integer(((json_int_t)rand() << 31) ^ rand());
        same_as_jansson(n);
        json_decref(n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_documents),
        cmocka_unit_test(test_random_reals_and_ints),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
