/* One request's objects: arena, context, request and response, and the
 * rendering of failures into a response. Independent of the HTTP library and
 * of routing, so the server, the test harness and fuzzers share them
 * (dk__exchange, src/internal.h). */
#include "internal.h"
#include "base/offload.h"
#include "http/metrics.h"
#include "donkey/trace.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ---- */

/* The first block of a request's arena is small enough for glibc's per-thread
 * cache (chunks up to 1032 bytes): a typical request fits in it, and a larger
 * block would take malloc's slow path (and a consolidation) every request. */
#define ARENA_FIRST_CAP (1024 - sizeof(dk__arena_block))
#define ARENA_NEXT_CAP 4000

void *dk__arena_alloc(dk__arena *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    dk__arena_block *b = a->head;
    if (b == NULL || b->cap - b->used < size) {
        size_t min = b == NULL ? ARENA_FIRST_CAP : ARENA_NEXT_CAP;
        size_t cap = size > min ? size : min;
        b = malloc(sizeof(*b) + cap);
        if (b == NULL)
            return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += size;
    return p;
}

char *dk__arena_strndup(dk__arena *a, const char *s, size_t len)
{
    char *p = dk__arena_alloc(a, len + 1);
    if (p != NULL) {
        if (len > 0) /* s may be NULL when len is 0 (h2o: an obs-fold header line) */
            memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

void dk__arena_free(dk__arena *a)
{
    dk__arena_block *b = a->head;
    while (b) {
        dk__arena_block *n = b->next;
        free(b);
        b = n;
    }
    a->head = NULL;
}

/* ---- context ---- */

static void ctx_init(dk_ctx *ctx, dk_app *app, dk_request *req, dk_response *res)
{
    ctx->app = app;
    ctx->req = req;
    ctx->res = res;
    ctx->ip = req->peer_ip ? req->peer_ip : "unknown";
    dk_uuid_v4(ctx->request_id);
    clock_gettime(CLOCK_MONOTONIC, &ctx->t0);
    /* Request header names are lower case. */
    const char *tp = NULL, *ts = NULL;
    for (size_t i = 0; i < req->nheaders; i++) {
        const char *n = req->headers[i].name;
        if (n[0] != 't' || strncmp(n, "trace", 5) != 0)
            continue;
        if (strcmp(n + 5, "parent") == 0)
            tp = tp == NULL ? req->headers[i].value : ""; /* twice: invalid */
        else if (strcmp(n + 5, "state") == 0)
            ts = req->headers[i].value;
    }
    dk__trace_defer(&ctx->trace, tp, ts); /* ids made on first use */
}

static void ctx_finish(dk_ctx *ctx)
{
    while (ctx->on_end) {
        dk__on_end *e = ctx->on_end;
        ctx->on_end = e->next;
        e->fn(e->arg);
    }
    for (dk__kv *kv = ctx->values; kv; kv = kv->next)
        json_decref(kv->value);
    json_decref(ctx->user);
    dk_error_free(ctx->error);
    free(ctx->internal);
    dk_logger_free(ctx->log);
    if (ctx->req)
        json_decref(ctx->req->json);
    dk__arena_free(&ctx->arena);
}

/* ---- the exchange: one request's context, request and response ---- */

void dk__exchange_init(dk__exchange *x)
{
    memset(x, 0, sizeof(*x));
    x->req.arena = &x->ctx.arena;
    x->req.query = "";
    dk__response_init(&x->res);
}

void dk__exchange_begin(dk__exchange *x, dk_app *app)
{
    ctx_init(&x->ctx, app, &x->req, &x->res);
    x->begun = true;
}

void dk__exchange_finish(dk__exchange *x)
{
    if (x->begun)
        ctx_finish(&x->ctx); /* on-end hooks, values, the arena */
    else
        dk__arena_free(&x->ctx.arena);
    x->begun = false;
    dk__response_free(&x->res);
}

const char *dk_ctx_request_id(const dk_ctx *ctx) { return ctx->request_id; }
const char *dk_ctx_ip(const dk_ctx *ctx) { return ctx->ip; }
const char *dk_ctx_trace_id(const dk_ctx *ctx) { return dk__trace_get(&ctx->trace)->trace_id; }
const char *dk_ctx_span_id(const dk_ctx *ctx) { return dk__trace_get(&ctx->trace)->span_id; }
const char *dk_ctx_parent_span_id(const dk_ctx *ctx)
{
    return dk__trace_get(&ctx->trace)->parent_id;
}
const char *dk_ctx_tracestate(const dk_ctx *ctx) { return dk__trace_get(&ctx->trace)->state; }

const char *dk_ctx_traceparent(const dk_ctx *ctx)
{
    dk_ctx *c = (dk_ctx *)ctx;
    if (c->traceparent[0] == '\0')
        dk__trace_format(&c->trace, NULL, c->traceparent);
    return c->traceparent;
}

const char *dk_trace_current_id(char buf[33])
{
    const dk__trace *t = dk__trace_current();
    if (t == NULL)
        return NULL;
    memcpy(buf, t->trace_id, 33);
    return buf;
}
bool dk_ctx_is_secure(const dk_ctx *ctx) { return ctx->secure; }
const char *dk_ctx_route(const dk_ctx *ctx) { return ctx->route ? ctx->route->name : ""; }
const dk_core *dk_ctx_core(const dk_ctx *ctx) { return &ctx->app->core; }
dk_app *dk_ctx_app(const dk_ctx *ctx) { return ctx->app; }
const json_t *dk_ctx_config(const dk_ctx *ctx) { return ctx->app->config; }

dk_logger *dk_ctx_log(dk_ctx *ctx)
{
    if (ctx->log == NULL) {
        json_t *c = json_pack("{s:s, s:s, s:s, s:s}", "requestId", ctx->request_id, "route",
                              dk_ctx_route(ctx), "trace_id", dk_ctx_trace_id(ctx), "span_id",
                              dk_ctx_span_id(ctx));
        ctx->log = dk_logger_child(ctx->app->core.logger, c);
        json_decref(c);
        if (ctx->log == NULL)
            return ctx->app->core.logger;
    }
    return ctx->log;
}

void dk_ctx_set_user(dk_ctx *ctx, json_t *user)
{
    json_decref(ctx->user);
    ctx->user = user;
}

json_t *dk_ctx_user(const dk_ctx *ctx) { return ctx->user; }

static dk__kv *find_kv(const dk_ctx *ctx, const char *key)
{
    for (dk__kv *kv = ctx->values; kv; kv = kv->next)
        if (strcmp(kv->key, key) == 0)
            return kv;
    return NULL;
}

static dk__kv *get_kv(dk_ctx *ctx, const char *key)
{
    dk__kv *kv = find_kv(ctx, key);
    if (kv)
        return kv;
    kv = dk__arena_alloc(&ctx->arena, sizeof(*kv));
    if (kv == NULL)
        return NULL;
    memset(kv, 0, sizeof(*kv));
    kv->key = dk__arena_strndup(&ctx->arena, key, strlen(key));
    if (kv->key == NULL)
        return NULL;
    kv->next = ctx->values;
    ctx->values = kv;
    return kv;
}

int dk_ctx_set(dk_ctx *ctx, const char *key, json_t *value)
{
    dk__kv *kv = get_kv(ctx, key);
    if (kv == NULL) {
        json_decref(value);
        return DK_ENOMEM;
    }
    json_decref(kv->value);
    kv->value = value;
    return 0;
}

json_t *dk_ctx_get(const dk_ctx *ctx, const char *key)
{
    dk__kv *kv = find_kv(ctx, key);
    return kv ? kv->value : NULL;
}

int dk_ctx_set_ptr(dk_ctx *ctx, const char *key, void *ptr)
{
    dk__kv *kv = get_kv(ctx, key);
    if (kv == NULL)
        return DK_ENOMEM;
    kv->ptr = ptr;
    return 0;
}

void *dk_ctx_get_ptr(const dk_ctx *ctx, const char *key)
{
    dk__kv *kv = find_kv(ctx, key);
    return kv ? kv->ptr : NULL;
}

void *dk_ctx_alloc(dk_ctx *ctx, size_t size) { return dk__arena_alloc(&ctx->arena, size); }

char *dk_ctx_strdup(dk_ctx *ctx, const char *s)
{
    return s ? dk__arena_strndup(&ctx->arena, s, strlen(s)) : NULL;
}

/* Formats made only of text, "%s" and "%%" (the common case: "hello %s") are
 * assembled by hand, without printf; `n` strings at most. Returns the length,
 * or -1 when the format needs printf. A NULL string prints as glibc does. */
#define SIMPLE_FMT_MAX 8

static int simple_format(const char *fmt, va_list ap, const char **strs, size_t *lens)
{
    size_t total = 0, n = 0;
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            total++;
            continue;
        }
        f++;
        if (*f == '%') {
            total++;
        } else if (*f == 's' && n < SIMPLE_FMT_MAX) {
            const char *a = va_arg(ap, const char *);
            strs[n] = a ? a : "(null)";
            lens[n] = strlen(strs[n]);
            total += lens[n++];
        } else {
            return -1;
        }
    }
    return total > INT32_MAX ? -1 : (int)total;
}

static void simple_write(char *out, const char *fmt, const char **strs, const size_t *lens)
{
    size_t n = 0;
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            *out++ = *f;
        } else if (*++f == '%') {
            *out++ = '%';
        } else {
            memcpy(out, strs[n], lens[n]);
            out += lens[n++];
        }
    }
    *out = '\0';
}

char *dk_ctx_printf(dk_ctx *ctx, const char *fmt, ...)
{
    const char *strs[SIMPLE_FMT_MAX];
    size_t lens[SIMPLE_FMT_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = simple_format(fmt, ap, strs, lens);
    va_end(ap);
    if (n >= 0) {
        char *p = dk__arena_alloc(&ctx->arena, (size_t)n + 1);
        if (p != NULL)
            simple_write(p, fmt, strs, lens);
        return p;
    }
    /* printf formats: straight into the arena's free space when it fits. */
    dk__arena_block *b = ctx->arena.head;
    size_t avail = b != NULL ? b->cap - b->used : 0;
    if (avail > 0) {
        va_start(ap, fmt);
        n = vsnprintf(b->data + b->used, avail, fmt, ap);
        va_end(ap);
        if (n < 0)
            return NULL;
        if ((size_t)n < avail) {
            char *p = b->data + b->used;
            size_t used = ((size_t)n + 1 + 15) & ~(size_t)15;
            b->used += used < avail ? used : avail;
            return p;
        }
    } else {
        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return NULL;
    }
    char *p = dk__arena_alloc(&ctx->arena, (size_t)n + 1);
    if (p == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

int dk_ctx_on_end(dk_ctx *ctx, void (*fn)(void *arg), void *arg)
{
    dk__on_end *e = dk__arena_alloc(&ctx->arena, sizeof(*e));
    if (e == NULL)
        return DK_ENOMEM;
    e->fn = fn;
    e->arg = arg;
    e->next = ctx->on_end;
    ctx->on_end = e;
    return 0;
}

int dk_fail_error(dk_ctx *ctx, dk_error *err)
{
    dk_error_free(ctx->error);
    ctx->error = err;
    if (err == NULL)
        return DK_ENOMEM;
    return DK_EHTTP;
}

int dk_fail(dk_ctx *ctx, int status, const char *fmt, ...)
{
    char buf[1024];
    const char *msg = NULL;
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        msg = buf;
    }
    return dk_fail_error(ctx, dk_error_std(status, msg, NULL));
}

int dk_fail_details(dk_ctx *ctx, int status, const char *message, json_t *details)
{
    return dk_fail_error(ctx, dk_error_std(status, message, details));
}

int dk_fail_internal(dk_ctx *ctx, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    free(ctx->internal);
    ctx->internal = strdup(buf);
    return DK_EINTERNAL;
}

int dk_fail_code(dk_ctx *ctx, int code, const char *what)
{
    if (code >= 0 || code == DK_EHTTP)
        return code;
    if (code == DK_ECONSTRAINT)
        return dk_fail(ctx, 409, "%s", what ? what : "Conflict");
    if (code == DK_EBUSY || code == DK_EUNAVAILABLE)
        return dk_fail(ctx, 503, "%s", what ? what : "Service Unavailable");
    if (code == DK_ENOTFOUND)
        return dk_fail(ctx, 404, "%s", what ? what : "Not Found");
    return dk_fail_internal(ctx, "%s: %s", what ? what : "failure", dk_strerror(code));
}

/* ---- request ---- */

const char *dk_request_method(const dk_request *req) { return req->method; }
const char *dk_request_path(const dk_request *req) { return req->path; }
const char *dk_request_query(const dk_request *req) { return req->query; }

const char *dk_request_header(dk_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

size_t dk_request_header_count(const dk_request *req) { return req->nheaders; }

int dk_request_header_at(dk_request *req, size_t i, const char **name, const char **value)
{
    if (i >= req->nheaders)
        return DK_ENOTFOUND;
    *name = req->headers[i].name;
    *value = req->headers[i].value;
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static char *url_decode(dk__arena *a, const char *s, size_t len)
{
    char *out = dk__arena_alloc(a, len + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%' && i + 2 < len && hexval((unsigned char)s[i + 1]) >= 0 &&
                   hexval((unsigned char)s[i + 2]) >= 0) {
            out[o++] = (char)(hexval((unsigned char)s[i + 1]) * 16 + hexval((unsigned char)s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

static void parse_query(dk_request *req)
{
    req->qparsed = true;
    const char *q = req->query;
    if (q == NULL || *q == '\0')
        return;
    size_t count = 1;
    for (const char *p = q; *p; p++)
        if (*p == '&')
            count++;
    req->qparams = dk__arena_alloc(req->arena, count * sizeof(dk__header));
    if (req->qparams == NULL)
        return;
    const char *p = q;
    while (*p) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > 0) {
            const char *eq = memchr(p, '=', len);
            size_t klen = eq ? (size_t)(eq - p) : len;
            dk__header *h = &req->qparams[req->nqparams];
            h->name = url_decode(req->arena, p, klen);
            h->value = eq ? url_decode(req->arena, eq + 1, len - klen - 1)
                          : dk__arena_strndup(req->arena, "", 0);
            if (h->name && h->value)
                req->nqparams++;
        }
        if (!end)
            break;
        p = end + 1;
    }
}

const char *dk_request_query_param(dk_request *req, const char *name)
{
    const char *v = NULL;
    dk_request_query_params(req, name, &v, 1);
    return v;
}

size_t dk_request_query_params(dk_request *req, const char *name, const char **out, size_t max)
{
    if (!req->qparsed)
        parse_query(req);
    size_t n = 0;
    for (size_t i = 0; i < req->nqparams && n < max; i++)
        if (strcmp(req->qparams[i].name, name) == 0)
            out[n++] = req->qparams[i].value;
    return n;
}

const char *dk_request_cookie(dk_request *req, const char *name)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i < req->nheaders; i++) {
        if (strcmp(req->headers[i].name, "cookie") != 0)
            continue;
        const char *p = req->headers[i].value;
        while (*p) {
            while (*p == ' ' || *p == ';')
                p++;
            const char *eq = strchr(p, '=');
            const char *semi = strchr(p, ';');
            if (eq == NULL || (semi && semi < eq))
                break;
            if ((size_t)(eq - p) == nlen && strncmp(p, name, nlen) == 0) {
                size_t vlen = semi ? (size_t)(semi - eq - 1) : strlen(eq + 1);
                const char *v = eq + 1;
                if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
                    v++;
                    vlen -= 2;
                }
                return dk__arena_strndup(req->arena, v, vlen);
            }
            if (!semi)
                break;
            p = semi + 1;
        }
    }
    return NULL;
}

const char *dk_request_body(const dk_request *req, size_t *len)
{
    if (len)
        *len = req->body_len;
    return req->body ? req->body : "";
}

json_t *dk_request_json(dk_request *req) { return req->json; }

/* ---- response ---- */

void dk__response_init(dk_response *res)
{
    memset(res, 0, sizeof(*res));
    res->status = 200;
}

void dk__response_reset_body(dk_response *res)
{
    json_decref(res->json);
    res->json = NULL;
    free(res->json_text);
    res->json_text = NULL;
    res->body.len = 0;
    res->has_body = false;
}

/* Header i's strings are owned (one allocation, at `name`) unless its bit in
 * `hlit` says both are string literals. */
static bool header_owned(const dk_response *res, size_t i)
{
    return i >= 64 || !(res->hlit & (UINT64_C(1) << i));
}

void dk__response_free(dk_response *res)
{
    dk__response_reset_body(res);
    dk__buf_free(&res->body);
    for (size_t i = 0; i < res->nheaders; i++)
        if (header_owned(res, i))
            free((char *)res->headers[i].name); /* the value is in the same block */
    free(res->headers);
    if (res->stream)
        dk_stream_unref(res->stream);
    memset(res, 0, sizeof(*res));
}

void dk_response_set_status(dk_response *res, int status) { res->status = status; }
int dk_response_status(const dk_response *res) { return res->status; }

static bool header_safe(const char *s, bool name)
{
    if (s == NULL || (name && *s == '\0'))
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\r' || c == '\n')
            return false;
        if (name && (c <= ' ' || c == ':' || c >= 127))
            return false;
    }
    return true;
}

/* Appends a header whose name and value were already checked. `literal`:
 * both are string literals, kept by pointer. */
static int push_header(dk_response *res, const char *name, const char *value, bool literal)
{
    if (res->nheaders == res->hcap) {
        size_t cap = res->hcap ? res->hcap * 2 : 8;
        dk__header *h = realloc(res->headers, cap * sizeof(*h));
        if (h == NULL)
            return DK_ENOMEM;
        res->headers = h;
        res->hcap = cap;
    }
    size_t i = res->nheaders;
    if (literal && i < 64) {
        res->headers[i].name = name;
        res->headers[i].value = value;
        res->hlit |= UINT64_C(1) << i;
    } else {
        size_t nl = strlen(name), vl = strlen(value);
        char *p = malloc(nl + vl + 2);
        if (p == NULL)
            return DK_ENOMEM;
        memcpy(p, name, nl + 1);
        memcpy(p + nl + 1, value, vl + 1);
        res->headers[i].name = p;
        res->headers[i].value = p + nl + 1;
        if (i < 64)
            res->hlit &= ~(UINT64_C(1) << i);
    }
    res->nheaders++;
    return 0;
}

/* Removes every header named `name` (any case), keeping the others' order. */
static void drop_headers(dk_response *res, const char *name)
{
    size_t o = 0;
    uint64_t lit = 0;
    for (size_t i = 0; i < res->nheaders; i++) {
        if (strcasecmp(res->headers[i].name, name) == 0) {
            if (header_owned(res, i))
                free((char *)res->headers[i].name);
            continue;
        }
        if (!header_owned(res, i) && o < 64)
            lit |= UINT64_C(1) << o;
        res->headers[o++] = res->headers[i];
    }
    res->nheaders = o;
    res->hlit = lit;
}

int dk_response_add_header(dk_response *res, const char *name, const char *value)
{
    if (!header_safe(name, true) || !header_safe(value, false))
        return DK_EINVAL;
    return push_header(res, name, value, false);
}

int dk_response_set_header(dk_response *res, const char *name, const char *value)
{
    if (!header_safe(name, true) || !header_safe(value, false))
        return DK_EINVAL;
    drop_headers(res, name);
    return push_header(res, name, value, false);
}

int dk__response_set_header_trusted(dk_response *res, const char *name, const char *value)
{
    drop_headers(res, name);
    return push_header(res, name, value, false);
}

const char *dk_response_header(const dk_response *res, const char *name)
{
    for (size_t i = 0; i < res->nheaders; i++)
        if (strcasecmp(res->headers[i].name, name) == 0)
            return res->headers[i].value;
    return NULL;
}

int dk_response_set_body(dk_response *res, const void *data, size_t len)
{
    dk__response_reset_body(res);
    res->has_body = true;
    return dk__buf_append(&res->body, data, len);
}

int dk_response_set_json(dk_response *res, json_t *value)
{
    dk__response_reset_body(res);
    if (value == NULL)
        return DK_ENOMEM;
    res->json = value;
    res->has_body = true;
    drop_headers(res, "Content-Type");
    return push_header(res, "Content-Type", "application/json", true);
}

json_t *dk_response_json(const dk_response *res) { return res->json; }

const char *dk_response_body(dk_response *res, size_t *len)
{
    if (res->json != NULL) {
        if (res->json_text == NULL) {
            dk__buf out = {0};
            if (dk__json_write(&out, res->json) == 0 && out.data != NULL) {
                res->json_text = out.data; /* ownership moves to the response */
                res->json_len = out.len;
            } else {
                dk__buf_free(&out);
            }
        }
        if (len)
            *len = res->json_len;
        return res->json_text ? res->json_text : "";
    }
    if (len)
        *len = res->body.len;
    return res->body.data ? res->body.data : "";
}

/* ---- error rendering ---- */

static void render_error(dk_ctx *ctx, dk_response *res, dk_error *err)
{
    res->status = dk_error_status(err);
    dk_response_set_json(res, dk_error_body(err));
}

void dk__render_failure(dk_ctx *ctx, dk_response *res, int rc)
{
    if (res->stream != NULL) {
        /* A stream already started belongs to the client; just close it. */
        dk_stream_close(res->stream);
        return;
    }
    if (rc == DK_EHTTP && ctx->error != NULL) {
        dk_error *err = ctx->error;
        if (ctx->route) { /* thrown by a route (typed, raw or custom) or its middleware */
            json_t *d = json_pack("{s:s, s:i, s:s, s:s}", "route", dk_ctx_route(ctx), "status",
                                  dk_error_status(err), "code", dk_error_code(err), "message",
                                  dk_error_message(err));
            dk_log(dk_ctx_log(ctx), DK_LOG_WARN, "HTTP error thrown", d);
        }
        render_error(ctx, res, err);
        dk_error_free(err);
        ctx->error = NULL;
        return;
    }
    int status = 500;
    if (rc == DK_ECONSTRAINT)
        status = 409;
    else if (rc == DK_EBUSY || rc == DK_EUNAVAILABLE)
        status = 503;
    json_t *d = json_pack("{s:s, s:s, s:i}", "cause",
                          ctx->internal ? ctx->internal : dk_strerror(rc), "code", dk_err_name(rc),
                          "status", status);
    dk_log(dk_ctx_log(ctx), status == 500 ? DK_LOG_ERROR : DK_LOG_WARN,
           status == 500 ? "Unhandled error" : "Request failed", d);
    free(ctx->internal);
    ctx->internal = NULL;
    dk_error *err = dk_error_std(status, NULL, NULL);
    if (err) {
        render_error(ctx, res, err);
        dk_error_free(err);
    } else {
        res->status = 500;
        dk_response_set_body(res, "", 0);
    }
}
