/* Conformance routes for the core services: cache, events, rate limit, cron. */
#include "conf.h"

#include <donkey/cache.h>
#include <donkey/cron.h>
#include <donkey/events.h>
#include <donkey/ratelimit.h>

#include <stdatomic.h>

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

/* ---- rate limit ---- */

static int limited(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    *out = json_pack("{s:b}", "ok", 1);
    return 0;
}

/* ---- cron ---- */

static atomic_long tick_runs;

static int conf_tick(const char *name, void *user)
{
    atomic_fetch_add(&tick_runs, 1);
    return 0;
}

static int cron_count(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    *out = json_pack("{s:I}", "runs", (json_int_t)atomic_load(&tick_runs));
    return 0;
}

static int cron_list(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    json_t *list = dk_cron_list(dk_ctx_core(ctx)->cron);
    if (list == NULL)
        return DK_ENOMEM;
    /* Only the fields the contract names. */
    json_t *tasks = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(list, i, t)
    {
        json_array_append_new(tasks, json_pack("{s:O, s:O, s:O, s:O, s:O, s:O}", "id",
                                               json_object_get(t, "id"), "name",
                                               json_object_get(t, "name"), "expression",
                                               json_object_get(t, "expression"), "enabled",
                                               json_object_get(t, "enabled"), "lastRun",
                                               json_object_get(t, "lastRun"), "nextRun",
                                               json_object_get(t, "nextRun")));
    }
    json_decref(list);
    *out = json_pack("{s:o}", "tasks", tasks);
    return 0;
}

static int cron_next(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    const char *expr = json_string_value(json_object_get(in, "expression"));
    const char *from = json_string_value(json_object_get(in, "from"));
    const char *tz = json_string_value(json_object_get(in, "timezone"));
    int count = (int)json_integer_value(json_object_get(in, "count"));
    int64_t t;
    if (dk_iso8601_parse(from, &t) < 0)
        return dk_fail(ctx, 400, "'from' is not an ISO-8601 time: %s", from);
    if (tz != NULL && !dk_cron_tz_valid(tz))
        return dk_fail(ctx, 400, "unknown time zone '%s'", tz);
    dk_err err = {0};
    dk_cron_expr *e = NULL;
    if (dk_cron_expr_parse(expr, 0, &e, &err) < 0)
        return dk_fail(ctx, 400, "invalid cron expression: %s", err.message);
    json_t *next = json_array();
    for (int i = 0; i < count; i++) {
        int64_t n;
        if (dk_cron_expr_next(e, tz ? tz : "UTC", t, &n, &err) < 0) {
            dk_cron_expr_free(e);
            json_decref(next);
            return dk_fail(ctx, 400, "cron expression never fires: %s", err.message);
        }
        char buf[32];
        json_array_append_new(next, json_string(dk_iso8601(n, buf, sizeof(buf))));
        t = n;
    }
    dk_cron_expr_free(e);
    *out = json_pack("{s:o}", "next", next);
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

    rc |= dk_route_typed(r, "cron.count", NULL, NULL, cron_count, NULL);
    rc |= dk_route_typed(r, "cron.list", NULL, NULL, cron_list, NULL);
    rc |= dk_route_typed(
        r, "cron.next",
        "{\"type\":\"object\",\"properties\":{\"expression\":" STR ",\"from\":" STR ","
        "\"count\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":50},\"timezone\":" STR "},"
        "\"required\":[\"expression\",\"from\",\"count\"]}",
        NULL, cron_next, NULL);
    char id[DK_CRON_ID_SIZE];
    dk_err err = {0};
    if (dk_cron_schedule(dk_app_core(app)->cron, "conf-tick", "* * * * * *", conf_tick, NULL,
                         NULL, NULL, id, &err) < 0)
        rc |= 1;

    /* conf.limited sits on its own router: middleware is sticky. */
    dk_router *lim = dk_router_new("conf");
    if (lim == NULL)
        return 1;
    rc |= dk_router_use(lim, "rateLimit", "{\"limit\":3,\"window\":\"10s\",\"keyBy\":\"ip\",\"algorithm\":\"fixed\"}");
    rc |= dk_route_typed(lim, "limited", NULL, NULL, limited, NULL);
    rc |= dk_app_use(app, lim);
    return rc;
}
