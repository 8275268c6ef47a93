/* Foundation routes: echo, errors, crash, bad output, raw, client ip. */
#include "conf.h"

#include <stdio.h>
#include <string.h>

static int echo(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    const char *name = json_string_value(json_object_get(in, "name"));
    char *msg = dk_ctx_printf(ctx, "hello %s", name);
    if (msg == NULL)
        return DK_ENOMEM;
    *out = json_pack("{s:s, s:O, s:O}", "message", msg, "n", json_object_get(in, "n"), "tags",
                     json_object_get(in, "tags"));
    return *out ? 0 : DK_ENOMEM;
}

static int fail(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    int status = (int)json_integer_value(json_object_get(in, "status"));
    const char *message = json_string_value(json_object_get(in, "message"));
    json_t *details = json_pack("{s:i}", "status", status);
    if (status == 418)
        return dk_fail_error(ctx, dk_error_new(418, "IM_A_TEAPOT",
                                               message ? message : "I'm a teapot", details));
    return dk_fail_details(ctx, status, message, details);
}

static int crash(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    return dk_fail_internal(ctx, "database exploded: secret-internal-detail");
}

static int bad_output(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    *out = json_pack("{s:i}", "message", 5);
    return 0;
}

static int raw(dk_ctx *ctx, dk_request *req, dk_response *res, void *user)
{
    size_t len;
    dk_request_body(req, &len);
    char *text = dk_ctx_printf(ctx, "%s %s %zu", dk_request_method(req), dk_request_query(req), len);
    dk_response_set_status(res, 200);
    dk_response_set_header(res, "Content-Type", "text/plain");
    dk_response_set_header(res, "X-Conf", "raw");
    return dk_response_set_body(res, text, strlen(text));
}

static int ip(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    *out = json_pack("{s:s, s:s, s:s}", "ip", dk_ctx_ip(ctx), "requestId", dk_ctx_request_id(ctx),
                     "traceId", dk_ctx_trace_id(ctx));
    return 0;
}

#define OBJ_EMPTY "{\"type\":\"object\"}"

int conf_foundation_routes(dk_router *r)
{
    int rc = 0;
    rc |= dk_route_typed(
        r, "echo",
        "{\"type\":\"object\",\"properties\":{"
        "\"name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":100},"
        "\"n\":{\"type\":\"integer\",\"minimum\":0,\"default\":0},"
        "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"maxItems\":5,\"default\":[]}},"
        "\"required\":[\"name\"],\"additionalProperties\":false}",
        "{\"type\":\"object\",\"properties\":{\"message\":{\"type\":\"string\"},"
        "\"n\":{\"type\":\"integer\"},\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}},"
        "\"required\":[\"message\",\"n\",\"tags\"]}",
        echo, NULL);
    rc |= dk_route_document(r, "echo",
                            &(dk_route_doc){.summary = "Echo a greeting",
                                            .description = "Answers `hello <name>` with `n` "
                                                           "and `tags` as given."});
    rc |= dk_route_typed(r, "fail",
                         "{\"type\":\"object\",\"properties\":{\"status\":{\"type\":\"integer\"},"
                         "\"message\":{\"type\":\"string\"}},\"required\":[\"status\"]}",
                         NULL, fail, NULL);
    rc |= dk_route_typed(r, "crash", NULL, NULL, crash, NULL);
    rc |= dk_route_typed(r, "badOutput", NULL,
                         "{\"type\":\"object\",\"properties\":{\"message\":{\"type\":\"string\"}},"
                         "\"required\":[\"message\"]}",
                         bad_output, NULL);
    rc |= dk_route_raw(r, "raw", DK_METHOD_GET | DK_METHOD_POST, raw, NULL);
    rc |= dk_route_typed(r, "ip", NULL,
                         "{\"type\":\"object\",\"properties\":{\"ip\":{\"type\":\"string\"},"
                         "\"requestId\":{\"type\":\"string\"},\"traceId\":{\"type\":\"string\"}},"
                         "\"required\":[\"ip\",\"requestId\",\"traceId\"]}",
                         ip, NULL);
    return rc;
}
