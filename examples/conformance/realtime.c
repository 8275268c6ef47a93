/* Conformance routes for the real-time area: SSE (conf.sse, conf.broadcast)
 * and, appended below, jobs. */
#include "conf.h"

#include <donkey/sse.h>

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* SSE                                                                 */

/* The app's SSE service (created by the core; DK_SSE_* environment
 * variables and the --max-sse-* flags set its limits). */
static dk_sse *conf_sse(dk_app *app)
{
    return dk_app_core(app)->sse;
}

#define SSE_MAX_CHANNEL_PARAMS 64

/* GET or POST /conf.sse?channel=a&channel=b: an event stream on those
 * channels, resuming after the Last-Event-ID header when one is sent. */
static int sse_stream(dk_ctx *ctx, dk_request *req, dk_response *res, void *user)
{
    const char *channels[SSE_MAX_CHANNEL_PARAMS];
    size_t n = dk_request_query_params(req, "channel", channels, SSE_MAX_CHANNEL_PARAMS);
    return dk_sse_accept(conf_sse(dk_ctx_app(ctx)), ctx, req, res, channels, n, NULL);
}

/* {channel, event, data, id?} -> {"clients": n}. */
static int sse_broadcast(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    const char *channel = json_string_value(json_object_get(in, "channel"));
    const json_t *event = json_object_get(in, "event");
    const json_t *id = json_object_get(in, "id");
    /* An embedded NUL would cut the field short; refuse it like CR and LF. */
    if (strlen(json_string_value(event)) != json_string_length(event) ||
        (id != NULL && strlen(json_string_value(id)) != json_string_length(id)))
        return dk_fail(ctx, DK_HTTP_BAD_REQUEST, "Event name and id must not contain NUL");
    int n = dk_sse_broadcast(conf_sse(dk_ctx_app(ctx)), channel, json_string_value(event),
                             json_object_get(in, "data"), json_string_value(id));
    if (n == DK_EINVAL)
        return dk_fail(ctx, DK_HTTP_BAD_REQUEST,
                       "Event name and id must not contain CR or LF");
    if (n < 0)
        return n;
    *out = json_pack("{s:i}", "clients", n);
    return *out != NULL ? 0 : DK_ENOMEM;
}

static int conf_sse_routes(dk_app *app, dk_router *r)
{
    int rc = 0;
    rc |= dk_route_raw(r, "sse", DK_METHOD_GET | DK_METHOD_POST, sse_stream, NULL);
    rc |= dk_route_document(r, "sse",
                            &(dk_route_doc){.summary = "Event stream of the channels asked for",
                                            .sse = true});
    rc |= dk_route_typed(
        r, "broadcast",
        "{\"type\":\"object\",\"properties\":{"
        "\"channel\":{\"type\":\"string\",\"minLength\":1},"
        "\"event\":{\"type\":\"string\"},"
        "\"data\":{},"
        "\"id\":{\"type\":\"string\"}},"
        "\"required\":[\"channel\",\"event\",\"data\"],\"additionalProperties\":false}",
        "{\"type\":\"object\",\"properties\":{\"clients\":{\"type\":\"integer\",\"minimum\":0}},"
        "\"required\":[\"clients\"]}",
        sse_broadcast, NULL);
    return rc;
}

/* ------------------------------------------------------------------ */

int conf_realtime(dk_app *app, dk_router *r)
{
    int rc = 0;
    rc |= conf_sse_routes(app, r);
    rc |= conf_jobs(app, r);
    return rc;
}
