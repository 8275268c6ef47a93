/* A full request through the in-process dispatch (routing, method policy,
 * middleware, JSON parsing and limits, input/output validation, error
 * rendering) with the conformance foundation routes plus a few routes with
 * richer schemas. Input: method NUL route NUL headers ("Name: value" lines
 * separated by LF) NUL body. Checks: a status in 100..599, a JSON error body
 * for every 4xx/5xx, an X-Request-Id on every answer. */
#include <donkey/donkey.h>
#include <donkey/harness.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../examples/conformance/conf.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static dk_harness *H;

static int echo_any(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    *out = json_deep_copy(in);
    return *out ? 0 : DK_ENOMEM;
}

static int raw_headers(dk_ctx *ctx, dk_request *req, dk_response *res, void *user)
{
    /* Reflect request headers into response headers: the setters must refuse
     * CR/LF/NUL, never pass them through. */
    size_t n = dk_request_header_count(req);
    for (size_t i = 0; i < n; i++) {
        const char *name, *value;
        if (dk_request_header_at(req, i, &name, &value) == 0) {
            char hn[300];
            snprintf(hn, sizeof(hn), "X-R-%s", name);
            dk_response_add_header(res, hn, value);
        }
    }
    const char *q = dk_request_query_param(req, "h");
    if (q != NULL)
        dk_response_set_header(res, "X-Q", q);
    const char *c = dk_request_cookie(req, "sid");
    dk_response_set_status(res, 200);
    return dk_response_set_body(res, c ? c : "", c ? strlen(c) : 0);
}

#define RICH_SCHEMA                                                                            \
    "{\"type\":\"object\",\"properties\":{"                                                    \
    "\"email\":{\"type\":\"string\",\"format\":\"email\"},"                                   \
    "\"when\":{\"type\":\"string\",\"format\":\"date-time\"},"                                \
    "\"id\":{\"type\":\"string\",\"format\":\"uuid\"},"                                       \
    "\"code\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{2}-[0-9]+$\"},"                        \
    "\"kind\":{\"enum\":[\"a\",\"b\",1,null]},"                                               \
    "\"n\":{\"type\":\"number\",\"minimum\":-5,\"exclusiveMaximum\":1e6,\"multipleOf\":0.5},"  \
    "\"list\":{\"type\":\"array\",\"items\":{\"type\":\"integer\"},"       \
    "\"minItems\":0,\"maxItems\":20},"                                                         \
    "\"nested\":{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"boolean\","             \
    "\"default\":false}},\"additionalProperties\":{\"type\":\"string\"}},"                     \
    "\"alt\":{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"integer\"}]},"                      \
    "\"one\":{\"oneOf\":[{\"type\":\"string\",\"maxLength\":3},{\"type\":\"string\","          \
    "\"minLength\":2}]}},\"required\":[\"kind\"]}"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    setenv("DONKEY_LOG_LEVEL", "error", 1);
    dk_harness_options o;
    dk_harness_options_init(&o);
    o.log_level = DK_LOG_ERROR;
    const dk_plugin *plugins[] = {dk_plugin_cors()};
    o.plugins = plugins;
    o.nplugins = 1;
    dk_err err = {0};
    H = dk_harness_new_opts(&o, &err);
    if (H == NULL) {
        fprintf(stderr, "harness: %s\n", err.message);
        abort();
    }
    dk_router *r = dk_router_new("conf");
    if (conf_foundation_routes(r) != 0)
        abort();
    dk_route_typed(r, "rich", RICH_SCHEMA, NULL, echo_any, NULL);
    dk_route_typed(r, "rich2", RICH_SCHEMA, RICH_SCHEMA, echo_any, NULL);
    dk_route_raw(r, "headers", DK_METHOD_GET | DK_METHOD_POST | DK_METHOD_PUT, raw_headers, NULL);
    dk_router *c = dk_router_child(r, "cors");
    dk_router_use(c, "cors", "{\"origins\":[\"https://a.example\"],\"credentials\":true}");
    dk_route_typed(c, "echo", "{\"type\":\"object\"}", NULL, echo_any, NULL);
    if (dk_harness_use(H, r, &err) != 0) {
        fprintf(stderr, "routes: %s\n", err.message);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    char *f[4], *block;
    fz_split(data, size, f, 4, &block);
    if (block == NULL)
        return 0;
    const char *hdrs[33];
    size_t nh = 0;
    char *p = f[2];
    while (*p && nh < 32) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        hdrs[nh++] = p;
        if (!nl)
            break;
        p = nl + 1;
    }
    hdrs[nh] = NULL;
    dk_harness_response res;
    int rc = dk_harness_request(H, f[0][0] ? f[0] : NULL, f[1], hdrs, f[3], &res);
    if (rc == 0) {
        if (res.status < 100 || res.status > 599)
            abort();
        if (dk_harness_response_header(&res, "X-Request-Id") == NULL)
            abort();
        if (res.status >= 400 && res.status != 405 && res.status != 204 && res.json == NULL)
            abort();
        if (res.status >= 400 && res.json != NULL &&
            !json_is_string(json_object_get(res.json, "error")))
            abort();
        for (size_t i = 0; i < 2 * res.nheaders; i++)
            if (strpbrk(res.headers[i], "\r\n") != NULL)
                abort();
        dk_harness_response_free(&res);
    }
    free(block);
    return 0;
}
