/* Conformance routes for the core services: cache, events, rate limit, cron. */
#include "conf.h"

#include <donkey/cache.h>
#include <donkey/events.h>

#include <stdlib.h>
#include <string.h>

/* ---- cache ---- */

static int cache_set(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    dk_cache *cache = dk_ctx_core(ctx)->cache;
    json_t *ttl = json_object_get(in, "ttlMs");
    int64_t ttl_ms = ttl ? (int64_t)json_integer_value(ttl) : DK_TTL_NEVER;
    if (ttl && ttl_ms <= 0)
        return dk_fail(ctx, 400, "ttlMs must be positive");
    int rc = dk_cache_set(cache, json_string_value(json_object_get(in, "key")),
                          json_object_get(in, "value"), ttl_ms);
    if (rc < 0)
        return rc == DK_EINVAL || rc == DK_ELIMIT ? dk_fail(ctx, 400, "%s", dk_strerror(rc)) : rc;
    *out = json_pack("{s:b}", "ok", 1);
    return 0;
}

static int cache_get(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    json_t *v = NULL;
    int rc = dk_cache_get(dk_ctx_core(ctx)->cache, json_string_value(json_object_get(in, "key")),
                          &v);
    if (rc < 0 && rc != DK_ENOTFOUND)
        return rc == DK_EINVAL || rc == DK_ELIMIT ? dk_fail(ctx, 400, "%s", dk_strerror(rc)) : rc;
    *out = json_pack("{s:o}", "value", v ? v : json_null());
    return 0;
}

static int cache_keys(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    json_t *keys = dk_cache_keys(dk_ctx_core(ctx)->cache,
                                 json_string_value(json_object_get(in, "pattern")));
    if (keys == NULL)
        return DK_ENOMEM;
    *out = json_pack("{s:o}", "keys", keys);
    return 0;
}

/* ---- events ---- */

static int conf_event_handler(const char *event, const json_t *data, void *user)
{
    return 0;
}

static int events_emit(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    const char *event = json_string_value(json_object_get(in, "event"));
    json_t *data = json_object_get(in, "data");
    int n = dk_events_emit(dk_ctx_core(ctx)->events, event, data ? data : json_null());
    if (n < 0)
        return n == DK_EINVAL ? dk_fail(ctx, 400, "invalid event name") : n;
    *out = json_pack("{s:i}", "delivered", n);
    return 0;
}

static int events_history(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    json_t *lim = json_object_get(in, "limit");
    json_t *events = NULL;
    int rc = dk_events_history(dk_ctx_core(ctx)->events,
                               json_string_value(json_object_get(in, "pattern")),
                               lim ? (int64_t)json_integer_value(lim) : DK_EVENTS_LIMIT_DEFAULT,
                               &events);
    if (rc < 0)
        return rc == DK_EINVAL ? dk_fail(ctx, 400, "invalid pattern or limit") : rc;
    *out = json_pack("{s:o}", "events", events);
    return 0;
}

#define STR "{\"type\":\"string\"}"

int conf_services(dk_app *app, dk_router *r)
{
    int rc = 0;
    rc |= dk_route_typed(r, "cache.set",
                         "{\"type\":\"object\",\"properties\":{\"key\":{\"type\":\"string\",\"minLength\":1},"
                         "\"value\":{},\"ttlMs\":{\"type\":\"integer\"}},\"required\":[\"key\",\"value\"]}",
                         NULL, cache_set, NULL);
    rc |= dk_route_typed(r, "cache.get",
                         "{\"type\":\"object\",\"properties\":{\"key\":{\"type\":\"string\",\"minLength\":1}},"
                         "\"required\":[\"key\"]}",
                         NULL, cache_get, NULL);
    rc |= dk_route_typed(r, "cache.keys",
                         "{\"type\":\"object\",\"properties\":{\"pattern\":" STR "},"
                         "\"required\":[\"pattern\"]}",
                         "{\"type\":\"object\",\"properties\":{\"keys\":{\"type\":\"array\","
                         "\"items\":" STR "}},\"required\":[\"keys\"]}",
                         cache_keys, NULL);
    rc |= dk_route_typed(r, "events.emit",
                         "{\"type\":\"object\",\"properties\":{\"event\":{\"type\":\"string\",\"minLength\":1},"
                         "\"data\":{}},\"required\":[\"event\"]}",
                         NULL, events_emit, NULL);
    rc |= dk_route_typed(r, "events.history",
                         "{\"type\":\"object\",\"properties\":{\"pattern\":" STR ","
                         "\"limit\":{\"type\":\"integer\",\"minimum\":0}},\"required\":[\"pattern\"]}",
                         NULL, events_history, NULL);
    if (dk_events_on(dk_app_core(app)->events, "conf.*", conf_event_handler, NULL, NULL) <= 0)
        rc |= 1;
    return rc;
}
