/* Test harness: an application that is prepared and started without a
 * listener; requests are dispatched in-process like the HTTP server does. */
#include "donkey/harness.h"
#include "app/plugin_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

struct dk_harness {
    dk_app *app;
};

void dk_harness_options_init(dk_harness_options *o)
{
    memset(o, 0, sizeof(*o));
    o->db_url = "sqlite::memory:";
    o->log_level = DK_LOG_WARN;
    o->config_json = "{\"env\":\"test\"}";
}

dk_harness *dk_harness_new(const dk_plugin *const *plugins, size_t n, dk_err *err)
{
    dk_harness_options o;
    dk_harness_options_init(&o);
    o.plugins = plugins;
    o.nplugins = n;
    return dk_harness_new_opts(&o, err);
}

dk_harness *dk_harness_new_opts(const dk_harness_options *o, dk_err *err)
{
    dk_app_options ao;
    dk_app_options_init(&ao);
    ao.db_url = o->db_url ? o->db_url : "sqlite::memory:";
    ao.log_level = o->log_level;
    ao.config_json = o->config_json ? o->config_json : "{\"env\":\"test\"}";
    ao.install_signals = false;
    ao.port = 0;
    dk_harness *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        dk_err_set(err, DK_ENOMEM, "out of memory");
        return NULL;
    }
    h->app = dk_app_new(&ao);
    if (h->app == NULL) {
        free(h);
        dk_err_set(err, DK_ENOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < o->nplugins; i++) {
        /* A failure is recorded and reported by prepare below. */
        dk_app_add_plugin(h->app, o->plugins[i], o->configs ? o->configs[i] : NULL);
    }
    /* Prepare (plugins and route table) and start the services up to the
     * plugins (database, migrations, init hooks), but not the background
     * ones (jobs, cron) nor the pools and the listener. */
    if (dk__app_prepare(h->app, err) < 0 || dk__lifecycle_start(h->app, "plugins", err) < 0) {
        dk_harness_free(h);
        return NULL;
    }
    return h;
}

void dk_harness_free(dk_harness *h)
{
    if (h == NULL)
        return;
    dk_app_free(h->app); /* stops the plugins, closes the database */
    free(h);
}

dk_app *dk_harness_app(dk_harness *h) { return h->app; }
const dk_core *dk_harness_core(dk_harness *h) { return dk_app_core(h->app); }
dk_db *dk_harness_db(dk_harness *h) { return h->app->core.db; }
void *dk_harness_service(dk_harness *h, const char *name) { return dk_app_service(h->app, name); }

int dk_harness_use(dk_harness *h, dk_router *r, dk_err *err)
{
    int rc = dk_app_use(h->app, r);
    if (rc < 0)
        return dk_err_set(err, rc, "cannot add the router: %s", dk_strerror(rc));
    return dk__routes_build(h->app, err);
}

/* Splits "Name: value" into arena copies (name lower-cased, value trimmed). */
static int add_header(dk_ctx *ctx, dk_request *req, const char *line)
{
    const char *colon = strchr(line, ':');
    if (colon == NULL || colon == line)
        return DK_EINVAL;
    char *name = dk__arena_strndup(&ctx->arena, line, (size_t)(colon - line));
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    char *value = dk__arena_strndup(&ctx->arena, v, strlen(v));
    if (name == NULL || value == NULL)
        return DK_ENOMEM;
    for (char *p = name; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    req->headers[req->nheaders].name = name;
    req->headers[req->nheaders].value = value;
    req->nheaders++;
    return 0;
}

static int copy_response(dk_response *res, dk_harness_response *out)
{
    size_t len = 0;
    const char *body = dk_response_body(res, &len);
    out->status = res->status;
    out->body = malloc(len + 1);
    out->headers = calloc(res->nheaders * 2 + 1, sizeof(char *));
    if (out->body == NULL || out->headers == NULL)
        return DK_ENOMEM;
    memcpy(out->body, body, len);
    out->body[len] = '\0';
    out->body_len = len;
    if (len > 0) {
        json_error_t jerr;
        out->json = json_loadb(body, len, JSON_DECODE_ANY, &jerr);
    }
    for (size_t i = 0; i < res->nheaders; i++) {
        out->headers[2 * i] = strdup(res->headers[i].name);
        out->headers[2 * i + 1] = strdup(res->headers[i].value);
        if (out->headers[2 * i] == NULL || out->headers[2 * i + 1] == NULL)
            return DK_ENOMEM;
        out->nheaders++;
    }
    return 0;
}

int dk_harness_request(dk_harness *h, const char *method, const char *route,
                       const char *const *headers, const char *body, dk_harness_response *out)
{
    memset(out, 0, sizeof(*out));
    if (h == NULL || route == NULL)
        return DK_EINVAL;
    dk__exchange x;
    dk__exchange_init(&x);
    dk_request *req = &x.req;
    req->method =
        dk__arena_strndup(req->arena, method ? method : "POST", strlen(method ? method : "POST"));
    const char *path = route[0] == '/' ? route + 1 : route;
    const char *q = strchr(path, '?');
    size_t plen = q ? (size_t)(q - path) : strlen(path);
    char *p = dk__arena_alloc(req->arena, plen + 2);
    if (p != NULL) {
        p[0] = '/';
        memcpy(p + 1, path, plen);
        p[plen + 1] = '\0';
    }
    req->path = p;
    req->query = q ? q + 1 : "";
    req->body = body;
    req->body_len = body ? strlen(body) : 0;
    req->peer_ip = "127.0.0.1";
    size_t nh = 0;
    while (headers != NULL && headers[nh] != NULL)
        nh++;
    req->headers = dk__arena_alloc(req->arena, (nh + 1) * sizeof(*req->headers));
    int rc = 0;
    if (req->method == NULL || req->path == NULL || req->headers == NULL)
        rc = DK_ENOMEM;
    for (size_t i = 0; rc == 0 && i < nh; i++)
        rc = add_header(&x.ctx, req, headers[i]);
    if (rc == 0) {
        dk__exchange_begin(&x, h->app);
        const dk__trace *prev = dk__trace_enter(&x.ctx.trace);
        dk__dispatch(h->app, &x.ctx, req, &x.res);
        dk__trace_enter(prev);
        rc = copy_response(&x.res, out);
    }
    if (x.res.stream != NULL)
        dk_stream_close(x.res.stream);
    dk__exchange_finish(&x);
    if (rc < 0)
        dk_harness_response_free(out);
    return rc;
}

const char *dk_harness_response_header(const dk_harness_response *res, const char *name)
{
    for (size_t i = 0; i < res->nheaders; i++)
        if (strcasecmp(res->headers[2 * i], name) == 0)
            return res->headers[2 * i + 1];
    return NULL;
}

void dk_harness_response_free(dk_harness_response *res)
{
    if (res == NULL)
        return;
    free(res->body);
    json_decref(res->json);
    if (res->headers != NULL)
        for (size_t i = 0; res->headers[i] != NULL; i++) /* NULL-terminated */
            free(res->headers[i]);
    free(res->headers);
    memset(res, 0, sizeof(*res));
}

int dk_harness_call(dk_harness *h, const char *route, const char *json_input, char **out_json)
{
    dk_harness_response res;
    if (out_json != NULL)
        *out_json = NULL;
    int rc = dk_harness_request(h, "POST", route, NULL, json_input, &res);
    if (rc < 0)
        return rc;
    int status = res.status;
    if (out_json != NULL) {
        *out_json = res.body;
        res.body = NULL;
    }
    dk_harness_response_free(&res);
    return status;
}
