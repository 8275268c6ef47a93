/* Ready-made plugins: cors, securityHeaders, originCheck and requestLog. */
#include "internal.h"
#include "donkey/plugin.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- cors ---- */

/* Whether `origin` is allowed by the route's config: no config or
 * "origins": "*" allows every origin; otherwise it must be listed. The docs'
 * singular "origin" key is accepted too. */
static bool cors_allowed(const json_t *config, const char *origin, bool *any)
{
    const json_t *o = json_object_get(config, "origins");
    if (o == NULL)
        o = json_object_get(config, "origin");
    *any = false;
    if (o == NULL || (json_is_string(o) && strcmp(json_string_value(o), "*") == 0)) {
        *any = true;
        return true;
    }
    if (json_is_string(o))
        return strcmp(json_string_value(o), origin) == 0;
    size_t i;
    const json_t *e;
    json_array_foreach(o, i, e)
    {
        if (json_is_string(e) && strcmp(json_string_value(e), "*") == 0) {
            *any = true;
            return true;
        }
        if (json_is_string(e) && strcmp(json_string_value(e), origin) == 0)
            return true;
    }
    return false;
}

static const char *cfg_text(dk_ctx *ctx, const json_t *config, const char *key, const char *def)
{
    const json_t *v = json_object_get(config, key);
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_array(v)) {
        dk__buf b = {0};
        size_t i;
        const json_t *e;
        json_array_foreach(v, i, e)
        {
            if (json_is_string(e))
                dk__buf_appendf(&b, "%s%s", b.len ? ", " : "", json_string_value(e));
        }
        char *s = b.data ? dk_ctx_strdup(ctx, b.data) : NULL;
        dk__buf_free(&b);
        return s ? s : def;
    }
    return def;
}

static int add_vary_origin(dk_response *res)
{
    const char *vary = dk_response_header(res, "Vary");
    if (vary == NULL)
        return dk_response_add_header(res, "Vary", "Origin");
    if (strcasestr(vary, "origin") != NULL)
        return 0;
    char buf[512];
    snprintf(buf, sizeof(buf), "%s, Origin", vary);
    return dk_response_set_header(res, "Vary", buf);
}

static int set_allow_origin(dk_response *res, const json_t *config, const char *origin, bool any)
{
    bool credentials = json_is_true(json_object_get(config, "credentials"));
    /* Browsers refuse "*" together with credentials: echo the origin then. */
    dk_response_set_header(res, "Access-Control-Allow-Origin", any && !credentials ? "*" : origin);
    if (credentials)
        dk_response_set_header(res, "Access-Control-Allow-Credentials", "true");
    return 0;
}

static int cors_mw(dk_ctx *ctx, dk_request *req, dk_response *res, const json_t *config,
                   dk_next *next, void *user)
{
    const char *origin = dk_request_header(req, "origin");
    if (origin == NULL) {
        dk_next_run(next);
        return add_vary_origin(res);
    }
    bool any = false;
    bool allowed = cors_allowed(config, origin, &any);
    if (strcmp(dk_request_method(req), "OPTIONS") == 0 &&
        dk_request_header(req, "access-control-request-method") != NULL) {
        if (!allowed) {
            int rc = dk_fail(ctx, DK_HTTP_FORBIDDEN, "Origin '%.200s' is not allowed", origin);
            dk__render_failure(ctx, res, rc);
            return add_vary_origin(res);
        }
        const dk_route *r = ctx->route;
        char methods[96];
        snprintf(methods, sizeof(methods), "%s, OPTIONS", r ? r->allow : "POST");
        res->status = 204;
        dk__response_reset_body(res);
        set_allow_origin(res, config, origin, any);
        dk_response_set_header(res, "Access-Control-Allow-Methods",
                               cfg_text(ctx, config, "methods", methods));
        dk_response_set_header(res, "Access-Control-Allow-Headers",
                               cfg_text(ctx, config, "headers", "Content-Type, Authorization"));
        json_t *age = json_object_get(config, "maxAge");
        char agebuf[32];
        snprintf(agebuf, sizeof(agebuf), "%lld",
                 json_is_integer(age) ? (long long)json_integer_value(age) : 600LL);
        dk_response_set_header(res, "Access-Control-Max-Age", agebuf);
        return add_vary_origin(res);
    }
    dk_next_run(next);
    if (allowed) {
        set_allow_origin(res, config, origin, any);
        const char *expose = cfg_text(ctx, config, "exposeHeaders", NULL);
        if (expose != NULL)
            dk_response_set_header(res, "Access-Control-Expose-Headers", expose);
    }
    return add_vary_origin(res);
}

const char *dk__cors_config_error(dk_middleware_fn fn, const json_t *config)
{
    if (fn != cors_mw || !json_is_true(json_object_get(config, "credentials")))
        return NULL;
    static const char why[] = "\"credentials\": true needs an explicit list of origins "
                              "(\"*\" or \"null\" would let any site make credentialed requests)";
    const json_t *o = json_object_get(config, "origins");
    if (o == NULL)
        o = json_object_get(config, "origin");
    if (json_is_string(o))
        return strcmp(json_string_value(o), "*") == 0 || strcmp(json_string_value(o), "null") == 0
                   ? why
                   : NULL;
    if (!json_is_array(o) || json_array_size(o) == 0)
        return why;
    size_t i;
    const json_t *e;
    json_array_foreach(o, i, e)
    {
        const char *s = json_string_value(e);
        if (s != NULL && (strcmp(s, "*") == 0 || strcmp(s, "null") == 0))
            return why;
    }
    return NULL;
}

static const dk_plugin cors_plugin = {
    .name = "cors",
    .version = "1.0.0",
    .middleware = (const dk_plugin_middleware[]){{"cors", cors_mw}, {0}},
};

const dk_plugin *dk_plugin_cors(void) { return &cors_plugin; }

/* ---- securityHeaders ---- */

/* Defaults for a page served by the application itself: scripts, styles,
 * fetches and streams from the same origin only, no framing, no plugins. */
static const struct {
    const char *key;    /* config key */
    const char *header; /* response header */
    const char *value;  /* default */
} security_headers[] = {
    {"contentSecurityPolicy", "Content-Security-Policy",
     "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; "
     "form-action 'self'; frame-ancestors 'none'"},
    {"frameOptions", "X-Frame-Options", "DENY"},
    {"contentTypeOptions", "X-Content-Type-Options", "nosniff"},
    {"referrerPolicy", "Referrer-Policy", "no-referrer"},
    {"crossOriginOpenerPolicy", "Cross-Origin-Opener-Policy", "same-origin"},
};

/* Sets each header after the handler ran (so error answers get them too),
 * unless the handler set it or the config turns it off with false. */
static int security_headers_mw(dk_ctx *ctx, dk_request *req, dk_response *res, const json_t *config,
                               dk_next *next, void *user)
{
    dk_next_run(next);
    for (size_t i = 0; i < sizeof(security_headers) / sizeof(security_headers[0]); i++) {
        const json_t *v = json_object_get(config, security_headers[i].key);
        if (json_is_false(v) || dk_response_header(res, security_headers[i].header) != NULL)
            continue;
        int rc = dk_response_set_header(res, security_headers[i].header,
                                        json_is_string(v) ? json_string_value(v)
                                                          : security_headers[i].value);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static const dk_plugin security_headers_plugin = {
    .name = "securityHeaders",
    .version = "1.0.0",
    .middleware = (const dk_plugin_middleware[]){{"securityHeaders", security_headers_mw}, {0}},
};

const dk_plugin *dk_plugin_security_headers(void) { return &security_headers_plugin; }

/* ---- originCheck ---- */

/* "host[:port]" of an origin or a Host header without the scheme's default
 * port, lower-cased into `out`; false when it does not fit. */
static bool authority(const char *text, size_t len, bool https, char *out, size_t cap)
{
    const char *dflt = https ? ":443" : ":80";
    size_t dl = strlen(dflt);
    if (len > dl && strncmp(text + len - dl, dflt, dl) == 0)
        len -= dl;
    if (len == 0 || len >= cap)
        return false;
    for (size_t i = 0; i < len; i++)
        out[i] = (char)tolower((unsigned char)text[i]);
    out[len] = '\0';
    return true;
}

/* Same origin: the Origin's host[:port] is the request's Host. The scheme is
 * not compared (behind a TLS-terminating proxy the server sees http). */
static bool same_origin(dk_request *req, const char *origin)
{
    const char *host = dk_request_header(req, "host");
    bool https = strncmp(origin, "https://", 8) == 0;
    if (host == NULL || (!https && strncmp(origin, "http://", 7) != 0))
        return false;
    const char *oa = origin + (https ? 8 : 7);
    if (strchr(oa, '/') != NULL)
        return false;
    char a[256], b[256];
    return authority(oa, strlen(oa), https, a, sizeof(a)) &&
           authority(host, strlen(host), https, b, sizeof(b)) && strcmp(a, b) == 0;
}

static bool origin_listed(const json_t *config, const char *origin)
{
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(config, "origins"), i, e)
    {
        if (json_is_string(e) && strcasecmp(json_string_value(e), origin) == 0)
            return true;
    }
    return false;
}

/* Refuses state-changing requests a browser sent from another origin: the
 * Origin header when present, else Sec-Fetch-Site. Requests without either
 * (curl, servers) pass: they carry no victim's cookies. */
static int origin_check_mw(dk_ctx *ctx, dk_request *req, dk_response *res, const json_t *config,
                           dk_next *next, void *user)
{
    const char *m = dk_request_method(req);
    bool changes = strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0 ||
                   strcmp(m, "DELETE") == 0;
    if (changes) {
        const char *origin = dk_request_header(req, "origin");
        if (origin != NULL) {
            if (!same_origin(req, origin) && !origin_listed(config, origin))
                return dk_fail(ctx, DK_HTTP_FORBIDDEN, "Cross-origin request refused");
        } else {
            const char *site = dk_request_header(req, "sec-fetch-site");
            if (site != NULL &&
                (strcasecmp(site, "cross-site") == 0 || strcasecmp(site, "same-site") == 0))
                return dk_fail(ctx, DK_HTTP_FORBIDDEN, "Cross-origin request refused");
        }
    }
    dk_next_run(next);
    return 0;
}

static const dk_plugin origin_check_plugin = {
    .name = "originCheck",
    .version = "1.0.0",
    .middleware = (const dk_plugin_middleware[]){{"originCheck", origin_check_mw}, {0}},
};

const dk_plugin *dk_plugin_origin_check(void) { return &origin_check_plugin; }

/* ---- requestLog ---- */

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int request_log_mw(dk_ctx *ctx, dk_request *req, dk_response *res, const json_t *config,
                          dk_next *next, void *user)
{
    double t0 = mono_ms();
    dk_next_run(next);
    double ms = mono_ms() - t0;
    const char *level = json_string_value(json_object_get(config, "level"));
    dk_log_level lv = DK_LOG_INFO;
    if (level != NULL)
        dk_log_level_parse(level, &lv);
    dk_log(dk_ctx_log(ctx), lv, "Request completed",
           json_pack("{s:s, s:s, s:i, s:f}", "method", dk_request_method(req), "route",
                     dk_ctx_route(ctx), "status", dk_response_status(res), "durationMs",
                     (double)((long long)(ms * 1000.0)) / 1000.0));
    return 0;
}

static const dk_plugin request_log_plugin = {
    .name = "requestLog",
    .version = "1.0.0",
    .middleware = (const dk_plugin_middleware[]){{"requestLog", request_log_mw}, {0}},
};

const dk_plugin *dk_plugin_request_log(void) { return &request_log_plugin; }
