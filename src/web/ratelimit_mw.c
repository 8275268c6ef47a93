/* The `rateLimit` middleware: reads its per-route config, checks the limiter,
 * and keeps the X-RateLimit-* headers on whatever response the chain produces. */
#include "donkey/ratelimit.h"
#include "http/metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

struct mw_config {
    uint64_t limit;
    uint64_t window_ms;
    bool by_user;
    dk_ratelimit_algorithm algorithm;
    const char *prefix; /* NULL: the route name */
};

static int parse_config(const json_t *config, dk_ratelimit *rl, struct mw_config *c, dk_err *err)
{
    if (!json_is_object(config))
        return dk_err_set(err, DK_EINVAL, "rateLimit: config must be an object");
    const json_t *v = json_object_get(config, "limit");
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return dk_err_set(err, DK_EINVAL, "rateLimit: \"limit\" must be an integer >= 0");
    c->limit = (uint64_t)json_integer_value(v);
    v = json_object_get(config, "window");
    if (json_is_string(v)) {
        int rc = dk_duration_parse(json_string_value(v), &c->window_ms, err);
        if (rc < 0)
            return rc;
    } else if (json_is_integer(v) && json_integer_value(v) > 0) {
        c->window_ms = (uint64_t)json_integer_value(v);
    } else {
        return dk_err_set(err, DK_EINVAL,
                          "rateLimit: \"window\" must be a duration (\"10s\") or milliseconds");
    }
    if (c->window_ms == 0 || c->window_ms > DK_RATELIMIT_MAX_WINDOW_MS ||
        c->limit > DK_RATELIMIT_MAX_LIMIT)
        return dk_err_set(err, DK_EINVAL, "rateLimit: limit or window out of range");
    v = json_object_get(config, "keyBy");
    const char *key_by = v ? json_string_value(v) : "ip";
    if (key_by == NULL || (strcmp(key_by, "ip") != 0 && strcmp(key_by, "user") != 0))
        return dk_err_set(err, DK_EINVAL, "rateLimit: \"keyBy\" must be \"ip\" or \"user\"");
    c->by_user = strcmp(key_by, "user") == 0;
    c->algorithm = dk_ratelimit_default_algorithm(rl);
    v = json_object_get(config, "algorithm");
    if (v && dk_ratelimit_algorithm_parse(json_string_value(v), &c->algorithm) < 0)
        return dk_err_set(err, DK_EINVAL,
                          "rateLimit: \"algorithm\" must be \"sliding\" or \"fixed\"");
    v = json_object_get(config, "keyPrefix");
    c->prefix = v ? json_string_value(v) : NULL;
    if (v && (c->prefix == NULL || *c->prefix == '\0'))
        return dk_err_set(err, DK_EINVAL, "rateLimit: \"keyPrefix\" must be a non-empty string");
    return 0;
}

/* "user:<id>" for an authenticated user (string, or object with a string or integer id). */
static const char *user_who(dk_ctx *ctx)
{
    const json_t *u = dk_ctx_user(ctx);
    if (json_is_object(u))
        u = json_object_get(u, "id");
    if (json_is_string(u))
        return dk_ctx_printf(ctx, "user:%s", json_string_value(u));
    if (json_is_integer(u))
        return dk_ctx_printf(ctx, "user:%" JSON_INTEGER_FORMAT, json_integer_value(u));
    return NULL;
}

static void set_headers(dk_response *res, const dk_ratelimit_result *r)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%" PRIu64, r->limit);
    dk_response_set_header(res, "X-RateLimit-Limit", buf);
    snprintf(buf, sizeof(buf), "%" PRIu64, r->remaining);
    dk_response_set_header(res, "X-RateLimit-Remaining", buf);
    /* Rounded up, so a client waiting until this second finds the window over. */
    snprintf(buf, sizeof(buf), "%" PRId64, (r->reset_ms + 999) / 1000);
    dk_response_set_header(res, "X-RateLimit-Reset", buf);
    if (!r->allowed) {
        snprintf(buf, sizeof(buf), "%" PRIu64, r->retry_after_s);
        dk_response_set_header(res, "Retry-After", buf);
    }
}

int dk_ratelimit_middleware(dk_ctx *ctx, dk_request *req, dk_response *res, const json_t *config,
                            dk_next *next, void *user)
{
    (void)req;
    dk_ratelimit *rl = user ? user : dk_ctx_core(ctx)->ratelimit;
    if (rl == NULL)
        return dk_fail_internal(ctx, "rateLimit: no rate limiter configured");
    struct mw_config c;
    dk_err err = {0};
    if (parse_config(config, rl, &c, &err) < 0)
        return dk_fail_internal(ctx, "%s", err.message);

    const char *who = c.by_user ? user_who(ctx) : NULL;
    if (who == NULL)
        who = dk_ctx_ip(ctx) ? dk_ctx_ip(ctx) : "unknown";
    const char *scope = c.prefix ? c.prefix : dk_ctx_route(ctx);
    const char *key = dk_ctx_printf(ctx, "ratelimit:%s:%s", scope ? scope : "", who);
    if (key == NULL)
        return DK_ENOMEM;

    dk_ratelimit_result r;
    int rc = dk_ratelimit_check_with(rl, key, c.limit, c.window_ms, c.algorithm, &r);
    if (rc < 0) {
        /* Availability wins over limiting when the counter store fails. */
        dk_logf(dk_ctx_log(ctx), DK_LOG_WARN, "rateLimit: check failed (%s); request let through",
                dk_strerror(rc));
        return dk_next_run(next);
    }
    set_headers(res, &r);
    dk__metrics_ratelimit(ctx, r.allowed);
    if (!r.allowed) {
        json_t *details = json_pack("{s:I, s:I}", "retryAfter", (json_int_t)r.retry_after_s,
                                    "limit", (json_int_t)r.limit);
        return dk_fail_details(ctx, 429, NULL, details);
    }
    rc = dk_next_run(next);
    /* The inner chain may have replaced the response; put the headers back. */
    set_headers(res, &r);
    return rc;
}
