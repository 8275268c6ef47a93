/* Handlers that wait (issue 13): conf.wait (dk_blocking), conf.dbwait (a
 * PostgreSQL query that sleeps), conf.fetch (outbound HTTP). Each waits
 * without holding its HTTP thread. */
#include "conf.h"

#include <string.h>
#include <time.h>

static int sleep_ms(void *arg)
{
    int ms = *(int *)arg;
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
    return 0;
}

static int wait_route(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    int ms = (int)json_integer_value(json_object_get(in, "ms"));
    dk_blocking(ctx, sleep_ms, &ms);
    *out = json_pack("{s:i}", "waited", ms);
    return *out ? 0 : DK_ENOMEM;
}

static int dbwait(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    int ms = (int)json_integer_value(json_object_get(in, "ms"));
    dk_db *db = dk_ctx_core(ctx)->db;
    if (strcmp(dk_db_engine(db), "postgres") != 0)
        return dk_fail(ctx, 400, "needs PostgreSQL");
    json_t *params = json_pack("[f]", ms / 1000.0);
    json_t *rows = NULL;
    int rc = dk_db_query(db, "SELECT pg_sleep(?::float8) AS slept", params, &rows);
    json_decref(params);
    json_decref(rows);
    if (rc < 0)
        return dk_fail_internal(ctx, "pg_sleep: %s", dk_db_errmsg(db));
    *out = json_pack("{s:i}", "waited", ms);
    return *out ? 0 : DK_ENOMEM;
}

/* Only this machine: the conformance app must not become an open proxy. */
static bool local_url(const char *url)
{
    static const char *const ok[] = {"http://127.0.0.1", "http://localhost"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        size_t n = strlen(ok[i]);
        if (strncmp(url, ok[i], n) == 0 &&
            (url[n] == '\0' || url[n] == ':' || url[n] == '/' || url[n] == '?'))
            return true;
    }
    return false;
}

static int fetch_route(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    const char *url = json_string_value(json_object_get(in, "url"));
    if (!local_url(url))
        return dk_fail(ctx, 400, "only http://127.0.0.1 and http://localhost URLs are allowed");
    dk_fetch_options o;
    dk_fetch_options_init(&o);
    o.timeout_ms = 5000;
    dk_fetch_response r;
    int rc = dk_fetch(ctx, url, &o, &r);
    if (rc == 0)
        *out = json_pack("{s:i, s:I}", "status", r.status, "bytes", (json_int_t)r.body_len);
    else if (rc == DK_ETIMEOUT)
        rc = dk_fail(ctx, 504, "upstream timed out");
    else if (rc == DK_EINVAL)
        rc = dk_fail(ctx, 400, "bad URL: %s", r.error);
    else
        rc = dk_fail(ctx, 502, "upstream failed: %s", r.error);
    dk_fetch_response_free(&r);
    if (rc == 0 && *out == NULL)
        return DK_ENOMEM;
    return rc;
}

#define MS_IN "{\"type\":\"object\",\"properties\":{\"ms\":{\"type\":\"integer\",\"minimum\":0," \
              "\"maximum\":10000}},\"required\":[\"ms\"],\"additionalProperties\":false}"
#define WAITED_OUT "{\"type\":\"object\",\"properties\":{\"waited\":{\"type\":\"integer\"}}," \
                   "\"required\":[\"waited\"]}"

int conf_waiting(dk_app *app, dk_router *r)
{
    (void)app;
    int rc = 0;
    rc |= dk_route_typed(r, "wait", MS_IN, WAITED_OUT, wait_route, NULL);
    rc |= dk_route_typed(r, "dbwait", MS_IN, WAITED_OUT, dbwait, NULL);
    rc |= dk_route_typed(r, "fetch",
                         "{\"type\":\"object\",\"properties\":{\"url\":{\"type\":\"string\","
                         "\"format\":\"uri\"}},\"required\":[\"url\"]}",
                         "{\"type\":\"object\",\"properties\":{\"status\":{\"type\":\"integer\"},"
                         "\"bytes\":{\"type\":\"integer\"}},\"required\":[\"status\",\"bytes\"]}",
                         fetch_route, NULL);
    return rc;
}
