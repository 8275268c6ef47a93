/* Unit tests for the JSON Schema validator (include/donkey/schema.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "donkey/error.h"
#include "donkey/schema.h"
#include <time.h>

/* ---- helpers ---- */

static json_t *parse(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
    if (j == NULL)
        fail_msg("bad JSON in test: %s (%s)", text, je.text);
    return j;
}

static dk_schema *compile(const char *text)
{
    dk_err err = {0};
    dk_schema *s = dk_schema_compile_str(text, &err);
    if (s == NULL)
        fail_msg("schema %s did not compile: %s", text, err.message);
    return s;
}

/* Asserts the schema refuses to compile and that the message contains `needle`. */
static void assert_refused(const char *text, const char *needle)
{
    dk_err err = {0};
    dk_schema *s = dk_schema_compile_str(text, &err);
    if (s != NULL) {
        dk_schema_free(s);
        fail_msg("schema %s compiled but should not", text);
    }
    assert_int_equal(err.code, DK_EINVAL);
    if (strstr(err.message, needle) == NULL)
        fail_msg("error '%s' does not mention '%s'", err.message, needle);
}

static void assert_json_eq(const json_t *actual, const char *expected)
{
    json_t *e = parse(expected);
    if (!json_equal((json_t *)actual, e)) {
        char *a = json_dumps(actual, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
        char *x = json_dumps(e, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
        print_error("expected %s\n  actual %s\n", x, a ? a : "NULL");
        free(a);
        free(x);
        json_decref(e);
        fail();
    }
    json_decref(e);
}

/* Validates `input` and requires success; returns the normalised copy. */
static json_t *accept(const char *schema, const char *input)
{
    dk_schema *s = compile(schema);
    json_t *in = parse(input), *out = NULL, *issues = NULL;
    int rc = dk_schema_validate(s, in, &out, &issues);
    if (rc != 0) {
        char *t = json_dumps(issues, JSON_COMPACT);
        print_error("schema %s\ninput %s\nissues %s\n", schema, input, t);
        free(t);
        fail();
    }
    assert_null(issues);
    assert_non_null(out);
    json_decref(in);
    dk_schema_free(s);
    return out;
}

static void assert_accepts(const char *schema, const char *input)
{
    json_decref(accept(schema, input));
}

static void accept_as(const char *schema, const char *input, const char *expected)
{
    json_t *out = accept(schema, input);
    assert_json_eq(out, expected);
    json_decref(out);
}

/* Validates `input` and requires failure; returns the issues array. */
static json_t *reject(const char *schema, const char *input)
{
    dk_schema *s = compile(schema);
    json_t *in = parse(input), *out = (json_t *)1, *issues = NULL;
    int rc = dk_schema_validate(s, in, &out, &issues);
    if (rc != DK_EINVAL)
        fail_msg("schema %s accepted %s (rc %d)", schema, input, rc);
    assert_null(out);
    assert_true(json_is_array(issues));
    assert_true(json_array_size(issues) > 0);
    json_decref(in);
    dk_schema_free(s);
    return issues;
}

/* Checks issue `i`: its code, its path (JSON text) and that it has a message. */
static void assert_issue(const json_t *issues, size_t i, const char *code, const char *path)
{
    const json_t *it = json_array_get(issues, i);
    if (it == NULL) {
        char *t = json_dumps(issues, JSON_COMPACT);
        print_error("no issue #%zu in %s\n", i, t);
        free(t);
        fail();
    }
    const char *got = json_string_value(json_object_get(it, "code"));
    if (got == NULL || strcmp(got, code) != 0) {
        char *t = json_dumps(issues, JSON_COMPACT);
        print_error("issue #%zu: expected code %s in %s\n", i, code, t);
        free(t);
        fail();
    }
    assert_json_eq(json_object_get(it, "path"), path);
    assert_true(json_is_string(json_object_get(it, "message")));
}

/* Exactly one issue with this code and path. */
static json_t *reject_one(const char *schema, const char *input, const char *code,
                          const char *path)
{
    json_t *issues = reject(schema, input);
    assert_issue(issues, 0, code, path);
    if (json_array_size(issues) != 1) {
        char *t = json_dumps(issues, JSON_COMPACT);
        print_error("expected exactly one issue, got %s\n", t);
        free(t);
        fail();
    }
    return issues;
}

static void reject_simple(const char *schema, const char *input, const char *code,
                          const char *path)
{
    json_decref(reject_one(schema, input, code, path));
}

static const json_t *field(const json_t *issues, size_t i, const char *name)
{
    return json_object_get(json_array_get(issues, i), name);
}

/* ---- type ---- */

static void test_types(void **state)
{
    (void)state;
    accept_as("{\"type\":\"string\"}", "\"a\"", "\"a\"");
    accept_as("{\"type\":\"number\"}", "1.5", "1.5");
    accept_as("{\"type\":\"number\"}", "3", "3");
    accept_as("{\"type\":\"boolean\"}", "false", "false");
    accept_as("{\"type\":\"null\"}", "null", "null");
    accept_as("{\"type\":\"array\"}", "[1,\"a\"]", "[1,\"a\"]");
    accept_as("{\"type\":\"object\"}", "{\"a\":1}", "{\"a\":1}");

    json_t *issues = reject_one("{\"type\":\"number\"}", "\"5\"", "invalid_type", "[]");
    assert_string_equal(json_string_value(field(issues, 0, "expected")), "number");
    assert_string_equal(json_string_value(field(issues, 0, "received")), "string");
    json_decref(issues);
    reject_simple("{\"type\":\"boolean\"}", "\"true\"", "invalid_type", "[]");
    reject_simple("{\"type\":\"boolean\"}", "1", "invalid_type", "[]");
    reject_simple("{\"type\":\"string\"}", "5", "invalid_type", "[]");
    reject_simple("{\"type\":\"string\"}", "null", "invalid_type", "[]");
    reject_simple("{\"type\":\"object\"}", "[]", "invalid_type", "[]");
    reject_simple("{\"type\":\"array\"}", "{}", "invalid_type", "[]");
    reject_simple("{\"type\":\"null\"}", "0", "invalid_type", "[]");
}

static void test_integer(void **state)
{
    (void)state;
    const char *s = "{\"type\":\"integer\"}";
    accept_as(s, "5", "5");
    accept_as(s, "-5", "-5");
    /* 5.0 validates as an integer and comes out as one (issue 14, item 15). */
    json_t *five = accept(s, "5.0");
    assert_true(json_is_integer(five));
    assert_int_equal(json_integer_value(five), 5);
    json_decref(five);
    accept_as("{\"properties\":{\"n\":{\"type\":\"integer\"},\"x\":{\"type\":\"number\"},"
              "\"l\":{\"items\":{\"type\":\"integer\"}}}}",
              "{\"n\":2.0,\"x\":2.0,\"l\":[1,-3.0]}", "{\"n\":2,\"x\":2.0,\"l\":[1,-3]}");
    accept_as("{\"type\":[\"integer\",\"null\"]}", "7.0", "7");
    accept_as("{\"properties\":{\"n\":{\"type\":\"integer\",\"default\":4.0}}}", "{}",
              "{\"n\":4}");
    accept_as(s, "9007199254740991", "9007199254740991");
    accept_as(s, "-9007199254740991", "-9007199254740991");

    json_t *issues = reject_one(s, "5.5", "invalid_type", "[]");
    assert_string_equal(json_string_value(field(issues, 0, "expected")), "integer");
    assert_string_equal(json_string_value(field(issues, 0, "received")), "number");
    json_decref(issues);
    reject_simple(s, "\"5\"", "invalid_type", "[]");

    issues = reject_one(s, "9007199254740992", "too_big", "[]");
    assert_int_equal(json_integer_value(field(issues, 0, "maximum")), INT64_C(9007199254740991));
    json_decref(issues);
    issues = reject_one(s, "-9007199254740992", "too_small", "[]");
    assert_int_equal(json_integer_value(field(issues, 0, "minimum")), -INT64_C(9007199254740991));
    json_decref(issues);
    reject_simple(s, "1e300", "too_big", "[]");
}

static void test_type_union_with_null(void **state)
{
    (void)state;
    const char *s = "{\"type\":[\"string\",\"null\"],\"minLength\":2}";
    accept_as(s, "null", "null");
    accept_as(s, "\"ab\"", "\"ab\"");
    reject_simple(s, "\"a\"", "too_small", "[]");
    json_t *issues = reject_one(s, "1", "invalid_type", "[]");
    assert_string_equal(json_string_value(field(issues, 0, "expected")), "string | null");
    json_decref(issues);

    /* Not nullable: null is refused, also for an optional property. */
    reject_simple("{\"properties\":{\"a\":{\"type\":\"string\"}}}", "{\"a\":null}", "invalid_type",
                  "[\"a\"]");
    accept_as("{\"properties\":{\"a\":{\"type\":\"string\"}}}", "{}", "{}");
    accept_as("{\"properties\":{\"a\":{\"type\":[\"integer\",\"null\"]}}}", "{\"a\":null}",
              "{\"a\":null}");
}

/* ---- objects ---- */

static void test_required_missing_at_own_path(void **state)
{
    (void)state;
    const char *s = "{\"type\":\"object\",\"properties\":{\"user\":{\"type\":\"object\","
                    "\"properties\":{\"name\":{\"type\":\"string\"}},\"required\":[\"name\"]}},"
                    "\"required\":[\"user\"]}";
    json_t *issues = reject_one(s, "{\"user\":{}}", "invalid_type", "[\"user\",\"name\"]");
    assert_string_equal(json_string_value(field(issues, 0, "expected")), "string");
    assert_string_equal(json_string_value(field(issues, 0, "received")), "undefined");
    assert_string_equal(json_string_value(field(issues, 0, "message")), "Required");
    json_decref(issues);

    issues = reject_one(s, "{}", "invalid_type", "[\"user\"]");
    assert_string_equal(json_string_value(field(issues, 0, "expected")), "object");
    json_decref(issues);

    /* Required but not declared in properties: any value, kept when present. */
    const char *r = "{\"properties\":{\"a\":{}},\"required\":[\"b\"]}";
    issues = reject_one(r, "{\"a\":1}", "invalid_type", "[\"b\"]");
    assert_null(field(issues, 0, "expected"));
    json_decref(issues);
    accept_as(r, "{\"b\":[1],\"c\":2}", "{\"b\":[1]}");
}

static void test_nested_paths_and_indexes(void **state)
{
    (void)state;
    const char *s = "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"object\","
                    "\"properties\":{\"b\":{\"type\":\"array\",\"items\":{\"type\":\"object\","
                    "\"properties\":{\"c\":{\"type\":\"string\"}}}}}}}}";
    reject_simple(s, "{\"a\":{\"b\":[{\"c\":\"ok\"},{\"c\":\"ok\"},{\"c\":7}]}}", "invalid_type",
                  "[\"a\",\"b\",2,\"c\"]");
    reject_simple("{\"type\":\"array\",\"items\":{\"type\":\"array\",\"items\":{\"type\":\"integer\"}}}",
                  "[[1],[2,\"x\"]]", "invalid_type", "[1,1]");
}

static void test_all_issues_in_order(void **state)
{
    (void)state;
    const char *s = "{\"type\":\"object\",\"properties\":{"
                    "\"a\":{\"type\":\"string\"},"
                    "\"b\":{\"type\":\"integer\",\"minimum\":10},"
                    "\"c\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
                    "\"d\":{\"type\":\"string\"}},"
                    "\"required\":[\"a\",\"b\",\"d\"],\"additionalProperties\":false}";
    json_t *issues = reject(s, "{\"a\":1,\"b\":3,\"c\":[\"x\",2,3],\"z\":0}");
    assert_int_equal(json_array_size(issues), 6);
    assert_issue(issues, 0, "invalid_type", "[\"a\"]");
    assert_issue(issues, 1, "too_small", "[\"b\"]");
    assert_issue(issues, 2, "invalid_type", "[\"c\",1]");
    assert_issue(issues, 3, "invalid_type", "[\"c\",2]");
    assert_issue(issues, 4, "invalid_type", "[\"d\"]");
    assert_issue(issues, 5, "unrecognized_keys", "[]");
    assert_json_eq(field(issues, 5, "keys"), "[\"z\"]");
    json_decref(issues);

    /* Several keywords on one string value. */
    issues = reject("{\"type\":\"string\",\"minLength\":5,\"pattern\":\"^[0-9]+$\","
                    "\"format\":\"email\"}",
                    "\"ab\"");
    assert_int_equal(json_array_size(issues), 3);
    assert_issue(issues, 0, "too_small", "[]");
    assert_issue(issues, 1, "invalid_format", "[]");
    assert_string_equal(json_string_value(field(issues, 1, "format")), "regex");
    assert_issue(issues, 2, "invalid_format", "[]");
    assert_string_equal(json_string_value(field(issues, 2, "format")), "email");
    json_decref(issues);
}

static void test_additional_properties(void **state)
{
    (void)state;
    const char *props = "\"properties\":{\"a\":{\"type\":\"integer\"}}";
    char s[256];

    /* Absent: undeclared keys are stripped, also at nested levels. */
    snprintf(s, sizeof(s), "{%s}", props);
    accept_as(s, "{\"a\":1,\"password\":\"x\",\"b\":{}}", "{\"a\":1}");
    accept_as("{\"properties\":{\"u\":{\"properties\":{\"id\":{}}}}}",
              "{\"u\":{\"id\":1,\"hash\":\"x\"},\"v\":2}", "{\"u\":{\"id\":1}}");
    accept_as("{\"type\":\"array\",\"items\":{\"properties\":{\"id\":{}}}}",
              "[{\"id\":1,\"x\":2},{\"id\":2}]", "[{\"id\":1},{\"id\":2}]");

    /* false: one issue at the object's path listing every unknown key. */
    snprintf(s, sizeof(s), "{\"properties\":{\"o\":{%s,\"additionalProperties\":false}}}", props);
    json_t *issues = reject_one(s, "{\"o\":{\"a\":1,\"x\":1,\"y\":2}}", "unrecognized_keys",
                                "[\"o\"]");
    assert_json_eq(field(issues, 0, "keys"), "[\"x\",\"y\"]");
    json_decref(issues);
    accept_as(s, "{\"o\":{\"a\":1}}", "{\"o\":{\"a\":1}}");

    /* true: kept. */
    snprintf(s, sizeof(s), "{%s,\"additionalProperties\":true}", props);
    accept_as(s, "{\"a\":1,\"x\":[1]}", "{\"a\":1,\"x\":[1]}");

    /* A schema: extra keys validated at their own path and kept. */
    snprintf(s, sizeof(s), "{%s,\"additionalProperties\":{\"type\":\"string\"}}", props);
    accept_as(s, "{\"a\":1,\"x\":\"s\"}", "{\"a\":1,\"x\":\"s\"}");
    reject_simple(s, "{\"a\":1,\"x\":2}", "invalid_type", "[\"x\"]");
    /* A record-like schema: nested stripping inside the values. */
    accept_as("{\"type\":\"object\",\"additionalProperties\":{\"properties\":{\"k\":{}}}}",
              "{\"m\":{\"k\":1,\"j\":2}}", "{\"m\":{\"k\":1}}");

    /* No properties declared: a free-form object keeps everything. */
    accept_as("{\"type\":\"object\"}", "{\"x\":1}", "{\"x\":1}");
}

static void test_min_max_properties(void **state)
{
    (void)state;
    const char *s = "{\"type\":\"object\",\"minProperties\":1,\"maxProperties\":2}";
    accept_as(s, "{\"a\":1}", "{\"a\":1}");
    reject_simple(s, "{}", "too_small", "[]");
    reject_simple(s, "{\"a\":1,\"b\":2,\"c\":3}", "too_big", "[]");
}

/* ---- arrays ---- */

static void test_items(void **state)
{
    (void)state;
    const char *s = "{\"type\":\"array\",\"items\":{\"type\":\"integer\"},\"minItems\":1,"
                    "\"maxItems\":3}";
    accept_as(s, "[1,2,3]", "[1,2,3]");
    json_t *issues = reject_one(s, "[]", "too_small", "[]");
    assert_int_equal(json_integer_value(field(issues, 0, "minimum")), 1);
    json_decref(issues);
    issues = reject_one(s, "[1,2,3,4]", "too_big", "[]");
    assert_int_equal(json_integer_value(field(issues, 0, "maximum")), 3);
    json_decref(issues);
    reject_simple(s, "[1,\"2\"]", "invalid_type", "[1]");
}

/* ---- strings ---- */

static void test_lengths_in_code_points(void **state)
{
    (void)state;
    const char *s = "{\"type\":\"string\",\"minLength\":3,\"maxLength\":5}";
    assert_accepts(s, "\"h\\u00e9llo\""); /* 5 code points, 6 bytes */
    accept_as(s, "\"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\"", "\"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\"");
    assert_accepts(s, "\"\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\""); /* 3 emoji, 12 bytes */
    json_t *issues = reject_one(s, "\"\xe6\x97\xa5\xe6\x9c\xac\"", "too_small", "[]");
    assert_int_equal(json_integer_value(field(issues, 0, "minimum")), 3);
    json_decref(issues);
    issues = reject_one(s, "\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"", "too_big", "[]");
    assert_int_equal(json_integer_value(field(issues, 0, "maximum")), 5);
    json_decref(issues);
}

static void test_pattern(void **state)
{
    (void)state;
    assert_accepts("{\"type\":\"string\",\"pattern\":\"^[a-z]+$\"}", "\"abc\"");
    json_t *issues = reject_one("{\"type\":\"string\",\"pattern\":\"^[a-z]+$\"}", "\"abC\"",
                                "invalid_format", "[]");
    assert_string_equal(json_string_value(field(issues, 0, "format")), "regex");
    assert_string_equal(json_string_value(field(issues, 0, "pattern")), "^[a-z]+$");
    json_decref(issues);
    /* Unanchored search, as JSON Schema defines it. */
    assert_accepts("{\"pattern\":\"b\"}", "\"abc\"");
    reject_simple("{\"pattern\":\"b\"}", "\"xyz\"", "invalid_format", "[]");
    /* UTF mode: "." is one code point. */
    assert_accepts("{\"pattern\":\"^.$\"}", "\"\xc3\xa9\"");
    /* Non-strings ignore string keywords. */
    assert_accepts("{\"pattern\":\"^x$\",\"minLength\":9}", "5");
}

/* Issue 16: patterns follow ECMAScript (JSON Schema Test Suite, optional
 * ecmascript-regex): Unicode property names, Unicode \s, ASCII \d and \w. */
static void test_pattern_ecmascript(void **state)
{
    (void)state;
    /* "école": \p{Letter} is \p{L}; long and key=value forms. */
    assert_accepts("{\"pattern\":\"\\\\p{Letter}cole\"}", "\"l'\xc3\xa9" "cole\"");
    assert_accepts("{\"pattern\":\"^\\\\p{Lowercase_Letter}+$\"}", "\"\xc3\xa9t\xc3\xa9\"");
    reject_simple("{\"pattern\":\"^\\\\p{Uppercase_Letter}$\"}", "\"\xc3\xa9\"", "invalid_format",
                  "[]");
    assert_accepts("{\"pattern\":\"^\\\\p{General_Category=Decimal_Number}$\"}", "\"7\"");
    assert_accepts("{\"pattern\":\"^\\\\p{gc=Lu}$\"}", "\"\xc3\x89\"");
    assert_accepts("{\"pattern\":\"^\\\\p{Script=Greek}+$\"}", "\"\xce\xb1\xce\xb2\"");
    assert_accepts("{\"pattern\":\"^\\\\p{sc=Grek}$\"}", "\"\xce\xb1\"");
    assert_accepts("{\"pattern\":\"^\\\\P{Letter}$\"}", "\"1\"");
    assert_accepts("{\"pattern\":\"^[\\\\p{Letter}\\\\d]+$\"}", "\"\xc3\xa9" "1\"");
    /* \s is Unicode white space (NBSP, U+FEFF, EM SPACE, U+2029), not other controls. */
    static const char *const spaces[] = {"\" \"", "\"\\t\"", "\"\\u000b\"", "\"\\f\"",
                                         "\"\\u00a0\"", "\"\\ufeff\"", "\"\\u2003\"",
                                         "\"\\u2029\"", "\"\\n\""};
    for (size_t i = 0; i < sizeof(spaces) / sizeof(spaces[0]); i++) {
        assert_accepts("{\"pattern\":\"^\\\\s$\"}", spaces[i]);
        assert_accepts("{\"pattern\":\"^[\\\\sx]$\"}", spaces[i]);
        reject_simple("{\"pattern\":\"^\\\\S$\"}", spaces[i], "invalid_format", "[]");
    }
    reject_simple("{\"pattern\":\"^\\\\s$\"}", "\"\\u0001\"", "invalid_format", "[]");
    reject_simple("{\"pattern\":\"^\\\\s$\"}", "\"\\u2013\"", "invalid_format", "[]");
    assert_accepts("{\"pattern\":\"^\\\\S$\"}", "\"\\u2013\"");
    /* \w and \d stay ASCII, as in ECMAScript. */
    assert_accepts("{\"pattern\":\"\\\\wcole\"}", "\"l'ecole\"");
    reject_simple("{\"pattern\":\"\\\\wcole\"}", "\"l'\xc3\xa9" "cole\"", "invalid_format", "[]");
    reject_simple("{\"pattern\":\"^\\\\d$\"}", "\"\\u07c0\"", "invalid_format", "[]");
    /* \uXXXX escapes, a surrogate pair, \u{...}; an escaped backslash is not \s. */
    assert_accepts("{\"pattern\":\"^\\\\u00e9$\"}", "\"\xc3\xa9\"");
    assert_accepts("{\"pattern\":\"^\\\\ud83d\\\\ude00$\"}", "\"\\ud83d\\ude00\"");
    assert_accepts("{\"pattern\":\"^\\\\u{1F600}$\"}", "\"\\ud83d\\ude00\"");
    assert_accepts("{\"pattern\":\"^\\\\\\\\s$\"}", "\"\\\\s\"");
    /* A bad pattern is still refused with a message. */
    assert_refused("{\"pattern\":\"\\\\p{NoSuchProperty}\"}", "pattern");
}

static void test_formats(void **state)
{
    (void)state;
    static const struct {
        const char *format, *good, *bad;
    } cases[] = {
        {"email", "\"a.b+c@example.co.uk\"", "\"not-an-email\""},
        {"email", "\"x@y.io\"", "\"a..b@example.com\""},
        {"email", "\"x@y.io\"", "\"x@localhost\""},
        {"uuid", "\"123e4567-e89b-12d3-a456-426614174000\"",
         "\"123e4567e89b12d3a456426614174000\""},
        {"uuid", "\"123E4567-E89B-12D3-A456-426614174000\"",
         "\"123e4567-e89b-12d3-a456-42661417400g\""},
        {"date-time", "\"2024-01-15T12:34:56Z\"", "\"2024-01-15 12:34:56\""},
        {"date-time", "\"2024-02-29T00:00:00.123+05:30\"", "\"2023-02-29T00:00:00Z\""},
        {"date-time", "\"2024-01-15t12:34:56z\"", "\"2024-01-15T25:00:00Z\""},
        {"date-time", "\"2024-01-15T12:34:56-08:00\"", "\"2024-01-15T12:34:56\""},
        {"date", "\"2024-12-31\"", "\"2024-13-01\""},
        {"uri", "\"https://example.com/a?b=c#d\"", "\"/relative/path\""},
        {"uri", "\"urn:isbn:0451450523\"", "\"http://exa mple.com\""},
        {"uri", "\"mailto:a@b.c\"", "\"http://x/%zz\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char s[96];
        snprintf(s, sizeof(s), "{\"type\":\"string\",\"format\":\"%s\"}", cases[i].format);
        assert_accepts(s, cases[i].good);
        json_t *issues = reject_one(s, cases[i].bad, "invalid_format", "[]");
        assert_string_equal(json_string_value(field(issues, 0, "format")), cases[i].format);
        json_decref(issues);
    }
}

/* Issue 16 (cases from the JSON Schema Test Suite, draft 2020-12). */
static void check_format(const char *format, const char *const *good, const char *const *bad)
{
    char s[96];
    snprintf(s, sizeof(s), "{\"type\":\"string\",\"format\":\"%s\"}", format);
    for (; *good; good++)
        assert_accepts(s, *good);
    for (; *bad; bad++)
        reject_simple(s, *bad, "invalid_format", "[]");
}

static void test_formats_suite(void **state)
{
    (void)state;
    check_format("email",
                 (const char *const[]){"\"\\\"joe bloggs\\\"@example.com\"",
                                       "\"\\\"joe..bloggs\\\"@example.com\"",
                                       "\"\\\"joe@bloggs\\\"@example.com\"",
                                       "\"joe.bloggs@[127.0.0.1]\"",
                                       "\"joe.bloggs@[IPv6:::1]\"",
                                       "\"joe.bloggs@[IPv6:2001:db8::7]\"",
                                       "\"te~st@example.com\"", "\"te.s.t@example.com\"", NULL},
                 (const char *const[]){"\"joe.bloggs@[127.0.0.300]\"",
                                       "\"joe.bloggs@[IPv6:::12345]\"",
                                       "\"joe.bloggs@[::1]\"", "\"\\\"joe bloggs@example.com\"",
                                       "\"\\\"\\\"@example.com\"", "\"joe.bloggs@invalid=domain.com\"",
                                       "\"te..st@example.com\"", "\".test@example.com\"",
                                       "\"joe@[127.0.0.1\"", NULL});
    check_format("date-time",
                 (const char *const[]){"\"1998-12-31T23:59:60Z\"", "\"1998-12-31T15:59:60.123-08:00\"",
                                       "\"1999-01-01T00:29:60+00:30\"", "\"1998-12-31T23:59:59Z\"",
                                       NULL},
                 (const char *const[]){"\"1998-12-31T23:59:61Z\"", "\"1998-12-31T23:58:60Z\"",
                                       "\"1998-12-31T22:59:60Z\"", "\"1998-12-31T23:59:60+01:00\"",
                                       "\"1998-12-31T15:59:60-07:00\"", NULL});
    check_format("uri",
                 (const char *const[]){"\"http://foo.bar/?baz=qux#quux\"",
                                       "\"http://foo.com/blah_(wikipedia)_blah#cite-1\"",
                                       "\"http://-.~_!$&'()*+,;=:%40:80%2f::::::@example.com\"",
                                       "\"http://223.255.255.254\"",
                                       "\"ldap://[2001:db8::7]/c=GB?objectClass?one\"",
                                       "\"http://[::ffff:1.2.3.4]/\"", "\"http://[v1.fe:x]/\"",
                                       "\"http://example.com:8080/path\"", "\"http://example.com:/\"",
                                       "\"mailto:John.Doe@example.com\"",
                                       "\"tel:+1-816-555-1212\"",
                                       "\"urn:oasis:names:specification:docbook:dtd:xml:4.1.2\"",
                                       "\"file:///etc/hosts\"", NULL},
                 (const char *const[]){"\"https://[@example.org/test.txt\"",
                                       "\"http://example.com:abc/path\"",
                                       "\"http://[::ffff:01.2.3.4]\"", "\"http:/[::1]\"",
                                       "\"http://example.com/[x]\"", "\"http://[::1\"",
                                       "\"//foo.bar/?baz=qux#quux\"", "\"bar,baz:foo\"",
                                       "\"https://example.org/foobar<>.txt\"",
                                       "\"http://a/b#c#d\"", NULL});
}

/* ---- enum / const ---- */

static void test_enum_const(void **state)
{
    (void)state;
    const char *s = "{\"enum\":[\"red\",\"green\",1]}";
    accept_as(s, "\"red\"", "\"red\"");
    accept_as(s, "1.0", "1.0"); /* JSON Schema: 1 and 1.0 are the same number */
    json_t *issues = reject_one(s, "\"blue\"", "invalid_value", "[]");
    assert_json_eq(field(issues, 0, "values"), "[\"red\",\"green\",1]");
    json_decref(issues);
    reject_simple(s, "\"1\"", "invalid_value", "[]");

    accept_as("{\"const\":\"ok\"}", "\"ok\"", "\"ok\"");
    issues = reject_one("{\"const\":\"ok\"}", "\"OK\"", "invalid_value", "[]");
    assert_json_eq(field(issues, 0, "values"), "[\"ok\"]");
    json_decref(issues);
    assert_accepts("{\"const\":{\"a\":[1,2]}}", "{\"a\":[1,2]}");
    reject_simple("{\"const\":{\"a\":[1,2]}}", "{\"a\":[2,1]}", "invalid_value", "[]");
    reject_simple("{\"const\":null}", "0", "invalid_value", "[]");
}

/* ---- numbers ---- */

static void test_numeric_bounds(void **state)
{
    (void)state;
    const char *s = "{\"type\":\"number\",\"minimum\":0,\"maximum\":10}";
    assert_accepts(s, "0");
    assert_accepts(s, "10");
    assert_accepts(s, "5.5");
    json_t *issues = reject_one(s, "-1", "too_small", "[]");
    assert_int_equal(json_integer_value(field(issues, 0, "minimum")), 0);
    json_decref(issues);
    issues = reject_one(s, "10.5", "too_big", "[]");
    assert_int_equal(json_integer_value(field(issues, 0, "maximum")), 10);
    json_decref(issues);

    const char *x = "{\"type\":\"number\",\"exclusiveMinimum\":0,\"exclusiveMaximum\":1.5}";
    assert_accepts(x, "0.5");
    issues = reject_one(x, "0", "too_small", "[]");
    assert_int_equal(json_integer_value(field(issues, 0, "minimum")), 0);
    assert_true(json_is_false(field(issues, 0, "inclusive")));
    json_decref(issues);
    issues = reject_one(x, "1.5", "too_big", "[]");
    assert_true(json_real_value(field(issues, 0, "maximum")) == 1.5);
    json_decref(issues);
}

static void test_multiple_of(void **state)
{
    (void)state;
    assert_accepts("{\"multipleOf\":5}", "10");
    assert_accepts("{\"multipleOf\":5}", "-15");
    assert_accepts("{\"multipleOf\":5}", "10.0");
    json_t *issues = reject_one("{\"multipleOf\":5}", "7", "not_multiple_of", "[]");
    assert_int_equal(json_integer_value(field(issues, 0, "divisor")), 5);
    json_decref(issues);
    assert_accepts("{\"multipleOf\":0.1}", "0.3");
    assert_accepts("{\"multipleOf\":0.01}", "19.99");
    reject_simple("{\"multipleOf\":0.1}", "0.35", "not_multiple_of", "[]");
    reject_simple("{\"multipleOf\":1}", "10000000000.5", "not_multiple_of", "[]");
}

/* ---- defaults ---- */

static void test_defaults(void **state)
{
    (void)state;
    const char *s = "{\"type\":\"object\",\"properties\":{"
                    "\"n\":{\"type\":\"integer\",\"default\":0},"
                    "\"opts\":{\"type\":\"object\",\"default\":{},\"properties\":{"
                    "\"depth\":{\"type\":\"integer\",\"default\":3},"
                    "\"mode\":{\"enum\":[\"a\",\"b\"],\"default\":\"a\"}}},"
                    "\"r\":{\"type\":\"string\",\"default\":\"x\"}},\"required\":[\"r\"]}";
    /* Absent at every level: the parent's default gets its own nested defaults. */
    accept_as(s, "{}", "{\"n\":0,\"opts\":{\"depth\":3,\"mode\":\"a\"},\"r\":\"x\"}");
    /* Present parent, absent children. */
    accept_as(s, "{\"opts\":{\"mode\":\"b\"}}",
              "{\"n\":0,\"opts\":{\"depth\":3,\"mode\":\"b\"},\"r\":\"x\"}");
    /* Present values are not replaced; null is a value, not an absence. */
    accept_as(s, "{\"n\":7,\"r\":\"y\"}", "{\"n\":7,\"opts\":{\"depth\":3,\"mode\":\"a\"},\"r\":\"y\"}");
    reject_simple(s, "{\"n\":null}", "invalid_type", "[\"n\"]");

    /* Defaults inside array elements. */
    accept_as("{\"type\":\"array\",\"items\":{\"properties\":{\"q\":{\"default\":1}}}}",
              "[{},{\"q\":2}]", "[{\"q\":1},{\"q\":2}]");

    /* The input is never modified, and outputs do not share the default. */
    dk_schema *sc = compile(s);
    json_t *in = parse("{}"), *o1 = NULL, *o2 = NULL;
    assert_int_equal(dk_schema_validate(sc, in, &o1, NULL), 0);
    assert_int_equal(dk_schema_validate(sc, in, &o2, NULL), 0);
    assert_int_equal(json_object_size(in), 0);
    json_integer_set(json_object_get(o1, "n"), 99);
    assert_int_equal(json_integer_value(json_object_get(o2, "n")), 0);
    json_decref(o1);
    json_decref(o2);
    json_decref(in);
    dk_schema_free(sc);
}

/* Validates and returns the output's compact JSON text, keys in the object's
 * own order (not sorted); *same tells whether the output is the input itself. */
static char *validated_text(const char *schema, const char *input, bool *same)
{
    dk_schema *s = compile(schema);
    json_t *in = parse(input), *out = NULL;
    assert_int_equal(dk_schema_validate(s, in, &out, NULL), 0);
    *same = out == in;
    char *t = json_dumps(out, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(out);
    json_decref(in);
    dk_schema_free(s);
    return t;
}

static void assert_text(const char *schema, const char *input, const char *expected,
                        bool expect_same)
{
    bool same = false;
    char *t = validated_text(schema, input, &same);
    if (strcmp(t, expected) != 0 || same != expect_same) {
        print_error("schema %s\ninput %s\nexpected %s (%s)\n  actual %s (%s)\n", schema, input,
                    expected, expect_same ? "same" : "copy", t, same ? "same" : "copy");
        free(t);
        fail();
    }
    free(t);
}

/* A value the schema leaves unchanged comes back as itself (no copy); any
 * change (default, stripped key, other key order) gives the copy, in schema
 * order as before. */
static void test_unchanged_values_not_copied(void **state)
{
    (void)state;
    const char *strip = "{\"properties\":{\"a\":{},\"b\":{\"default\":2}}}";
    assert_text(strip, "{\"a\":1,\"b\":3}", "{\"a\":1,\"b\":3}", true);
    assert_text(strip, "{\"b\":3,\"a\":1}", "{\"a\":1,\"b\":3}", false);
    assert_text(strip, "{\"a\":1}", "{\"a\":1,\"b\":2}", false);
    assert_text(strip, "{\"a\":1,\"b\":3,\"c\":4}", "{\"a\":1,\"b\":3}", false);
    assert_text(strip, "{\"c\":4,\"a\":1,\"b\":3}", "{\"a\":1,\"b\":3}", false);
    assert_text(strip, "{\"a\":1,\"c\":4,\"b\":3}", "{\"a\":1,\"b\":3}", false);
    assert_text(strip, "{}", "{\"b\":2}", false);

    const char *deny = "{\"properties\":{\"a\":{},\"b\":{\"default\":2}},"
                       "\"additionalProperties\":false}";
    assert_text(deny, "{\"a\":1,\"b\":3}", "{\"a\":1,\"b\":3}", true);
    assert_text(deny, "{\"b\":3}", "{\"b\":3}", true);
    assert_text(deny, "{\"b\":3,\"a\":1}", "{\"a\":1,\"b\":3}", false);

    /* Kept undeclared keys follow the declared ones, in input order. */
    const char *allow = "{\"properties\":{\"a\":{},\"b\":{\"default\":2}},"
                        "\"additionalProperties\":true}";
    assert_text(allow, "{\"a\":1,\"b\":3,\"y\":5,\"x\":4}", "{\"a\":1,\"b\":3,\"y\":5,\"x\":4}",
                true);
    assert_text(allow, "{\"y\":5,\"a\":1,\"b\":3}", "{\"a\":1,\"b\":3,\"y\":5}", false);
    assert_text(allow, "{\"a\":1,\"y\":5}", "{\"a\":1,\"b\":2,\"y\":5}", false);

    /* Nested: only the containers above a change are copied. */
    const char *nested = "{\"properties\":{\"l\":{\"type\":\"array\",\"items\":"
                         "{\"properties\":{\"k\":{\"default\":0}}}},\"z\":{}}}";
    assert_text(nested, "{\"l\":[{\"k\":1},{\"k\":2}],\"z\":1}",
                "{\"l\":[{\"k\":1},{\"k\":2}],\"z\":1}", true);
    assert_text(nested, "{\"l\":[{\"k\":1},{}],\"z\":1}", "{\"l\":[{\"k\":1},{\"k\":0}],\"z\":1}",
                false);
    assert_text(nested, "{\"l\":[{},{\"k\":1,\"j\":1}]}", "{\"l\":[{\"k\":0},{\"k\":1}]}", false);
    assert_text(nested, "{\"l\":[{\"k\":1},{\"k\":2,\"j\":3},{\"k\":3}]}",
                "{\"l\":[{\"k\":1},{\"k\":2},{\"k\":3}]}", false);

    /* The conformance echo input and output. */
    const char *echo_in =
        "{\"type\":\"object\",\"properties\":{"
        "\"name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":100},"
        "\"n\":{\"type\":\"integer\",\"minimum\":0,\"default\":0},"
        "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"maxItems\":5,"
        "\"default\":[]}},\"required\":[\"name\"],\"additionalProperties\":false}";
    assert_text(echo_in, "{\"name\":\"b\",\"n\":7,\"tags\":[\"a\"]}",
                "{\"name\":\"b\",\"n\":7,\"tags\":[\"a\"]}", true);
    assert_text(echo_in, "{\"tags\":[],\"name\":\"b\"}", "{\"name\":\"b\",\"n\":0,\"tags\":[]}",
                false);
}

/* ---- unions ---- */

static void test_any_of(void **state)
{
    (void)state;
    const char *s = "{\"anyOf\":[{\"type\":\"object\",\"properties\":{\"a\":{}}},"
                    "{\"type\":\"object\",\"properties\":{\"a\":{},\"b\":{}}},"
                    "{\"type\":\"string\"}]}";
    /* First matching branch's normalised value is used. */
    accept_as(s, "{\"a\":1,\"b\":2}", "{\"a\":1}");
    accept_as(s, "\"s\"", "\"s\"");
    json_t *issues = reject_one(s, "5", "invalid_union", "[]");
    const json_t *errs = field(issues, 0, "unionErrors");
    assert_int_equal(json_array_size(errs), 3);
    assert_issue(json_array_get(errs, 2), 0, "invalid_type", "[]");
    json_decref(issues);

    /* A failing union reports one issue at its own path. */
    reject_simple("{\"properties\":{\"v\":{\"anyOf\":[{\"type\":\"integer\"},"
                  "{\"type\":\"string\",\"minLength\":2}]}}}",
                  "{\"v\":\"x\"}", "invalid_union", "[\"v\"]");
    /* Union with null. */
    accept_as("{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"null\"}]}", "null", "null");
}

static void test_one_of(void **state)
{
    (void)state;
    const char *s = "{\"oneOf\":[{\"type\":\"integer\"},{\"type\":\"number\",\"minimum\":10}]}";
    assert_accepts(s, "3");
    assert_accepts(s, "10.5");
    json_t *issues = reject_one(s, "11", "invalid_union", "[]");
    assert_null(field(issues, 0, "unionErrors"));
    json_decref(issues);
    issues = reject_one(s, "\"x\"", "invalid_union", "[]");
    assert_int_equal(json_array_size(field(issues, 0, "unionErrors")), 2);
    json_decref(issues);
}

/* ---- misc ---- */

static void test_boolean_and_empty_schemas(void **state)
{
    (void)state;
    accept_as("true", "{\"a\":[1]}", "{\"a\":[1]}");
    accept_as("{}", "[1,{\"b\":2}]", "[1,{\"b\":2}]");
    reject_simple("false", "1", "invalid_type", "[]");
    reject_simple("{\"properties\":{\"x\":false}}", "{\"x\":1}", "invalid_type", "[\"x\"]");
    accept_as("{\"properties\":{\"x\":false}}", "{}", "{}");
}

static void test_ignored_keywords(void **state)
{
    (void)state;
    accept_as("{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"title\":\"T\","
              "\"description\":\"d\",\"examples\":[1],\"$id\":\"x\",\"type\":\"integer\"}",
              "4", "4");
}

static void test_absent_root_value(void **state)
{
    (void)state;
    dk_schema *s = compile("{\"type\":\"string\"}");
    json_t *out = NULL, *issues = NULL;
    assert_int_equal(dk_schema_validate(s, NULL, &out, &issues), DK_EINVAL);
    assert_null(out);
    assert_issue(issues, 0, "invalid_type", "[]");
    assert_string_equal(json_string_value(field(issues, 0, "received")), "undefined");
    json_decref(issues);
    /* Issues may be ignored by passing NULL. */
    json_t *in = json_integer(1);
    assert_int_equal(dk_schema_validate(s, in, &out, NULL), DK_EINVAL);
    assert_null(out);
    json_decref(in);
    assert_int_equal(dk_schema_validate(NULL, NULL, &out, &issues), DK_EINVAL);
    dk_schema_free(s);
    dk_schema_free(NULL);
}

static void test_schema_json_kept(void **state)
{
    (void)state;
    json_t *j = parse("{\"type\":\"string\",\"title\":\"x\"}");
    dk_err err = {0};
    dk_schema *s = dk_schema_compile(j, &err);
    assert_non_null(s);
    json_decref(j); /* the schema keeps its own copy */
    assert_json_eq(dk_schema_json(s), "{\"type\":\"string\",\"title\":\"x\"}");
    dk_schema_free(s);
}

static void test_invalid_schemas(void **state)
{
    (void)state;
    assert_refused("{\"type\":\"strnig\"}", "strnig");
    assert_refused("{\"type\":[]}", "type");
    assert_refused("{\"type\":5}", "type");
    assert_refused("{\"properties\":{\"name\":{\"minLength\":-1}}}", "/properties/name/minLength");
    assert_refused("{\"minLength\":\"3\"}", "minLength");
    assert_refused("{\"minLength\":1.5}", "minLength");
    assert_refused("{\"minLength\":5,\"maxLength\":2}", "maxLength");
    assert_refused("{\"minItems\":5,\"maxItems\":2}", "maxItems");
    assert_refused("{\"minimum\":5,\"maximum\":2}", "maximum");
    assert_refused("{\"minProperties\":5,\"maxProperties\":2}", "maxProperties");
    assert_refused("{\"multipleOf\":0}", "multipleOf");
    assert_refused("{\"minimum\":\"0\"}", "minimum");
    assert_refused("{\"exclusiveMinimum\":true}", "exclusiveMinimum");
    assert_refused("{\"items\":{\"pattern\":\"([a-z\"}}", "/items/pattern");
    assert_refused("{\"format\":\"emial\"}", "format");
    assert_refused("{\"enum\":[]}", "enum");
    assert_refused("{\"required\":\"a\"}", "required");
    assert_refused("{\"properties\":[]}", "properties");
    assert_refused("{\"additionalProperties\":1}", "additionalProperties");
    assert_refused("{\"items\":[{}]}", "items");
    assert_refused("{\"anyOf\":[]}", "anyOf");
    assert_refused("{\"oneOf\":[{\"type\":\"bogus\"}]}", "/oneOf/0/type");
    assert_refused("{\"$ref\":\"#/x\"}", "$ref");
    assert_refused("{\"allOf\":[{}]}", "allOf");
    assert_refused("5", "schema");
    assert_refused("{\"type\":\"object\",", "JSON");
    /* A default that fails its own schema, at a nested level. */
    assert_refused("{\"properties\":{\"n\":{\"type\":\"integer\",\"minimum\":0,\"default\":-1}}}",
                   "/properties/n/default");
    assert_refused("{\"type\":\"string\",\"default\":0}", "default");
    /* JSON pointer escaping of the key. */
    assert_refused("{\"properties\":{\"a/b\":{\"type\":\"x\"}}}", "/properties/a~1b/type");

    dk_err err = {0};
    assert_null(dk_schema_compile(NULL, &err));
    assert_int_equal(err.code, DK_EINVAL);
    assert_null(dk_schema_compile_str(NULL, NULL));
}

/* Issue 16: strict keywords, as Ajv. A typo is a compile error naming it and
 * its place; extensions are allowed by name. */
static void test_unknown_keywords(void **state)
{
    (void)state;
    assert_refused("{\"type\":\"string\",\"minLenght\":3}", "minLenght at /minLenght");
    assert_refused("{\"type\":\"string\",\"minLenght\":3}", "unknown keyword");
    assert_refused("{\"properties\":{\"name\":{\"type\":\"string\",\"maxLenght\":3}}}",
                   "/properties/name/maxLenght");
    assert_refused("{\"items\":{\"tpye\":\"string\"}}", "/items/tpye");
    assert_refused("{\"anyOf\":[{\"type\":\"string\"},{\"requried\":[\"a\"]}]}",
                   "/anyOf/1/requried");
    /* Standard annotations, content keywords and x- extensions are fine. */
    accept_as("{\"type\":\"integer\",\"readOnly\":true,\"writeOnly\":false,\"$comment\":\"c\","
              "\"deprecated\":false,\"$defs\":{\"a\":{}},\"contentMediaType\":\"text/plain\","
              "\"x-internal\":true}",
              "4", "4");

    json_t *j = parse("{\"type\":\"number\",\"units\":\"kg\"}");
    dk_err err = {0};
    assert_null(dk_schema_compile(j, &err));
    assert_non_null(strstr(err.message, "units"));
    dk_schema_options o;
    dk_schema_options_init(&o);
    assert_null(o.keywords);
    assert_false(o.allow_unknown_keywords);
    o.keywords = (const char *const[]){"precision", "units", NULL};
    dk_schema *s = dk_schema_compile_ex(j, &o, &err);
    assert_non_null(s);
    dk_schema_free(s);
    o.keywords = NULL;
    o.allow_unknown_keywords = true;
    s = dk_schema_compile_ex(j, &o, &err);
    assert_non_null(s);
    dk_schema_free(s);
    /* Process-wide, for route schemas compiled by the router. */
    assert_int_equal(dk_schema_allow_keyword(""), DK_EINVAL);
    assert_int_equal(dk_schema_allow_keyword(NULL), DK_EINVAL);
    assert_int_equal(dk_schema_allow_keyword("units"), 0);
    assert_int_equal(dk_schema_allow_keyword("units"), 0); /* twice is fine */
    s = dk_schema_compile(j, &err);
    assert_non_null(s);
    dk_schema_free(s);
    json_decref(j);
}

/* The exact input schema of the conformance suite. */
static const char *const conformance =
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"minLength\":1,"
    "\"maxLength\":100},\"n\":{\"type\":\"integer\",\"minimum\":0,\"default\":0},\"tags\":{"
    "\"type\":\"array\",\"items\":{\"type\":\"string\"},\"maxItems\":5,\"default\":[]}},"
    "\"required\":[\"name\"],\"additionalProperties\":false}";

static void test_conformance_schema(void **state)
{
    (void)state;
    accept_as(conformance, "{\"name\":\"x\"}", "{\"name\":\"x\",\"n\":0,\"tags\":[]}");
    accept_as(conformance, "{\"tags\":[\"a\"],\"n\":3,\"name\":\"x\"}",
              "{\"name\":\"x\",\"n\":3,\"tags\":[\"a\"]}");

    json_t *issues = reject_one(conformance, "{}", "invalid_type", "[\"name\"]");
    assert_string_equal(json_string_value(field(issues, 0, "expected")), "string");
    json_decref(issues);
    reject_simple(conformance, "{\"name\":\"\"}", "too_small", "[\"name\"]");
    char big[160];
    snprintf(big, sizeof(big), "{\"name\":\"%0101d\"}", 0);
    reject_simple(conformance, big, "too_big", "[\"name\"]");
    reject_simple(conformance, "{\"name\":5}", "invalid_type", "[\"name\"]");
    issues = reject_one(conformance, "{\"name\":\"x\",\"n\":-1}", "too_small", "[\"n\"]");
    assert_int_equal(json_integer_value(field(issues, 0, "minimum")), 0);
    json_decref(issues);
    reject_simple(conformance, "{\"name\":\"x\",\"n\":1.5}", "invalid_type", "[\"n\"]");
    reject_simple(conformance, "{\"name\":\"x\",\"n\":\"1\"}", "invalid_type", "[\"n\"]");
    issues = reject_one(conformance, "{\"name\":\"x\",\"tags\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\"]}",
                        "too_big", "[\"tags\"]");
    assert_int_equal(json_integer_value(field(issues, 0, "maximum")), 5);
    json_decref(issues);
    reject_simple(conformance, "{\"name\":\"x\",\"tags\":[\"a\",1]}", "invalid_type",
                  "[\"tags\",1]");
    issues = reject_one(conformance, "{\"name\":\"x\",\"extra\":true}", "unrecognized_keys", "[]");
    assert_json_eq(field(issues, 0, "keys"), "[\"extra\"]");
    json_decref(issues);
    reject_simple(conformance, "[]", "invalid_type", "[]");

    issues = reject(conformance, "{\"n\":-5,\"tags\":[2],\"zz\":1}");
    assert_int_equal(json_array_size(issues), 4);
    assert_issue(issues, 0, "invalid_type", "[\"name\"]");
    assert_issue(issues, 1, "too_small", "[\"n\"]");
    assert_issue(issues, 2, "invalid_type", "[\"tags\",0]");
    assert_issue(issues, 3, "unrecognized_keys", "[]");
    json_decref(issues);
}

static void test_json_depth(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        int depth;
    } cases[] = {
        {"1", 0}, {"\"s\"", 0}, {"null", 0}, {"[]", 1}, {"{}", 1},
        {"[1,[2,[3]]]", 3}, {"{\"a\":{\"b\":[]},\"c\":1}", 3},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *j = parse(cases[i].json);
        assert_int_equal(dk_json_depth(j), cases[i].depth);
        json_decref(j);
    }
    assert_int_equal(dk_json_depth(NULL), 0);
}

/* ---- concurrency ---- */

struct worker {
    const dk_schema *s;
    int failures;
};

static void *validate_loop(void *arg)
{
    struct worker *w = arg;
    json_t *good = parse("{\"name\":\"caf\xc3\xa9\",\"email\":\"a@b.io\",\"code\":\"AB-12\"}");
    json_t *bad = parse("{\"name\":\"\",\"email\":\"nope\",\"code\":\"ab\",\"x\":1}");
    json_t *want = parse("{\"name\":\"caf\xc3\xa9\",\"email\":\"a@b.io\",\"code\":\"AB-12\","
                         "\"n\":0,\"tags\":[]}");
    for (int i = 0; i < 5000; i++) {
        json_t *out = NULL, *issues = NULL;
        if (dk_schema_validate(w->s, good, &out, &issues) != 0 || !json_equal(out, want))
            w->failures++;
        json_decref(out);
        if (dk_schema_validate(w->s, bad, &out, &issues) != DK_EINVAL ||
            json_array_size(issues) != 4)
            w->failures++;
        json_decref(issues);
    }
    json_decref(good);
    json_decref(bad);
    json_decref(want);
    return NULL;
}

/* ---- issue cap, bounded error bodies, NUL (issue 14, items 1 and 12) ---- */

static json_t *many_ints(size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_integer(1));
    return a;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void test_issue_cap(void **state)
{
    (void)state;
    dk_schema *s = compile("{\"type\":\"array\",\"items\":{\"type\":\"string\"}}");
    json_t *in = many_ints(500000), *out = NULL, *issues = NULL;
    bool truncated = false;

    /* Default cap, and the walk stops there: 500,000 bad elements cost
     * about as much as 100 (measured: well under a millisecond). */
    double t0 = now_ms();
    assert_int_equal(dk_schema_validate_ex(s, in, NULL, &out, &issues, &truncated), DK_EINVAL);
    double took = now_ms() - t0;
    assert_int_equal(json_array_size(issues), DK_SCHEMA_MAX_ISSUES);
    assert_true(truncated);
    assert_issue(issues, 99, "invalid_type", "[99]");
    json_decref(issues);
    if (took > 200)
        fail_msg("validation of 500,000 bad elements took %.1f ms", took);

    /* The schema's own cap, then an explicit one in the options. */
    dk_schema_set_max_issues(s, 5);
    assert_int_equal(dk_schema_max_issues(s), 5);
    assert_int_equal(dk_schema_validate(s, in, &out, &issues), DK_EINVAL);
    assert_int_equal(json_array_size(issues), 5);
    json_decref(issues);
    dk_validate_options o;
    dk_validate_options_init(&o);
    o.max_issues = 3;
    assert_int_equal(dk_schema_validate_ex(s, in, &o, &out, &issues, &truncated), DK_EINVAL);
    assert_int_equal(json_array_size(issues), 3);
    assert_true(truncated);
    json_decref(issues);
    dk_schema_free(s);

    /* Fewer issues than the cap: not truncated. */
    json_t *small = many_ints(3);
    s = compile("{\"type\":\"array\",\"items\":{\"type\":\"string\"}}");
    assert_int_equal(dk_schema_validate_ex(s, small, NULL, &out, &issues, &truncated), DK_EINVAL);
    assert_int_equal(json_array_size(issues), 3);
    assert_false(truncated);
    json_decref(issues);
    dk_schema_free(s);
    json_decref(small);

    /* A union branch that hits the cap fails; the next branch still passes. */
    s = compile("{\"anyOf\":[{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
                "{\"type\":\"array\",\"items\":{\"type\":\"integer\"}}]}");
    assert_int_equal(dk_schema_validate_ex(s, in, NULL, &out, &issues, &truncated), 0);
    assert_non_null(out);
    json_decref(out);
    dk_schema_free(s);
    json_decref(in);
}

static void test_long_keys_in_issues(void **state)
{
    (void)state;
    char *key = malloc(10001);
    memset(key, 'k', 10000);
    key[10000] = '\0';
    json_t *in = json_object(), *out = NULL, *issues = NULL;
    json_object_set_new(in, key, json_integer(1));

    dk_schema *s = compile("{\"additionalProperties\":{\"type\":\"string\"}}");
    assert_int_equal(dk_schema_validate(s, in, &out, &issues), DK_EINVAL);
    const char *step = json_string_value(json_array_get(field(issues, 0, "path"), 0));
    assert_true(strlen(step) <= 128 && strncmp(step, key, strlen(step)) == 0);
    json_decref(issues);
    dk_schema_free(s);

    /* Unknown keys: at most 20 listed, each cut. */
    for (int i = 0; i < 50; i++) {
        char k[16];
        snprintf(k, sizeof(k), "x%d", i);
        json_object_set_new(in, k, json_integer(i));
    }
    s = compile("{\"additionalProperties\":false}");
    assert_int_equal(dk_schema_validate(s, in, &out, &issues), DK_EINVAL);
    const json_t *keys = field(issues, 0, "keys");
    assert_int_equal(json_array_size(keys), 20);
    for (size_t i = 0; i < json_array_size(keys); i++)
        assert_true(json_string_length(json_array_get(keys, i)) <= 128);
    assert_true(json_is_true(field(issues, 0, "truncated")));
    json_decref(issues);
    dk_schema_free(s);
    json_decref(in);
    free(key);
}

static void test_validation_error_bounded(void **state)
{
    (void)state;
    json_t *issues = json_array();
    char msg[300];
    memset(msg, 'm', sizeof(msg) - 1);
    msg[sizeof(msg) - 1] = '\0';
    for (int i = 0; i < 2000; i++)
        json_array_append_new(issues, json_pack("{s:[i], s:s, s:s}", "path", i, "message", msg,
                                                "code", "invalid_type"));
    dk_error *e = dk_error_validation(issues);
    json_t *body = dk_error_body(e);
    size_t len = json_dumpb(body, NULL, 0, JSON_COMPACT);
    assert_true(len < 64 * 1024);
    size_t kept = json_array_size(json_object_get(dk_error_details(e), "issues"));
    assert_true(kept > 100 && kept < 2000);
    assert_true(json_is_true(json_object_get(dk_error_details(e), "truncated")));
    json_decref(body);
    dk_error_free(e);

    /* A handler's long message is cut too. */
    char *big = malloc(100001);
    memset(big, 'a', 100000);
    big[100000] = '\0';
    e = dk_error_new(400, "BAD_REQUEST", big, NULL);
    assert_int_equal(strlen(dk_error_message(e)), DK_ERROR_MESSAGE_MAX);
    dk_error_free(e);
    free(big);

    /* Few issues: kept whole, no "truncated". */
    e = dk_error_validation(json_pack("[{s:[], s:s, s:s}]", "path", "message", "m", "code", "c"));
    assert_null(json_object_get(dk_error_details(e), "truncated"));
    dk_error_free(e);
}

static void test_forbid_nul(void **state)
{
    (void)state;
    dk_schema *s = compile("{\"properties\":{\"p\":{\"type\":\"string\"}}}");
    json_t *in = json_object(), *out = NULL, *issues = NULL;
    json_object_set_new(in, "p", json_stringn("ab\0cd", 5));
    /* Allowed unless asked (plain dk_schema_validate). */
    assert_int_equal(dk_schema_validate(s, in, &out, &issues), 0);
    json_decref(out);
    dk_validate_options o;
    dk_validate_options_init(&o);
    o.forbid_nul = true;
    assert_int_equal(dk_schema_validate_ex(s, in, &o, &out, &issues, NULL), DK_EINVAL);
    assert_issue(issues, 0, "invalid_string", "[\"p\"]");
    json_decref(issues);
    json_object_set_new(in, "p", json_string("abcd"));
    assert_int_equal(dk_schema_validate_ex(s, in, &o, &out, &issues, NULL), 0);
    json_decref(out);
    json_decref(in);
    dk_schema_free(s);
}

static void test_concurrent_validation(void **state)
{
    (void)state;
    dk_schema *s = compile("{\"type\":\"object\",\"properties\":{"
                           "\"name\":{\"type\":\"string\",\"minLength\":1},"
                           "\"email\":{\"type\":\"string\",\"format\":\"email\"},"
                           "\"code\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{2}-[0-9]+$\"},"
                           "\"n\":{\"type\":\"integer\",\"default\":0},"
                           "\"tags\":{\"type\":\"array\",\"default\":[]}},"
                           "\"additionalProperties\":false}");
    struct worker w[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){.s = s};
        assert_int_equal(pthread_create(&t[i], NULL, validate_loop, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    dk_schema_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_integer),
        cmocka_unit_test(test_type_union_with_null),
        cmocka_unit_test(test_required_missing_at_own_path),
        cmocka_unit_test(test_nested_paths_and_indexes),
        cmocka_unit_test(test_all_issues_in_order),
        cmocka_unit_test(test_additional_properties),
        cmocka_unit_test(test_min_max_properties),
        cmocka_unit_test(test_items),
        cmocka_unit_test(test_lengths_in_code_points),
        cmocka_unit_test(test_pattern),
        cmocka_unit_test(test_pattern_ecmascript),
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_unknown_keywords),
        cmocka_unit_test(test_formats_suite),
        cmocka_unit_test(test_enum_const),
        cmocka_unit_test(test_numeric_bounds),
        cmocka_unit_test(test_multiple_of),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_unchanged_values_not_copied),
        cmocka_unit_test(test_any_of),
        cmocka_unit_test(test_one_of),
        cmocka_unit_test(test_boolean_and_empty_schemas),
        cmocka_unit_test(test_ignored_keywords),
        cmocka_unit_test(test_absent_root_value),
        cmocka_unit_test(test_schema_json_kept),
        cmocka_unit_test(test_invalid_schemas),
        cmocka_unit_test(test_conformance_schema),
        cmocka_unit_test(test_json_depth),
        cmocka_unit_test(test_concurrent_validation),
        cmocka_unit_test(test_issue_cap),
        cmocka_unit_test(test_long_keys_in_issues),
        cmocka_unit_test(test_validation_error_bounded),
        cmocka_unit_test(test_forbid_nul),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
