/* Internal structures shared by src/rpc (router, dispatch, app) and src/http
 * (the h2o server). Not installed. */
#ifndef DK_INTERNAL_H
#define DK_INTERNAL_H

#include "donkey/app.h"
#include "base/internal.h"
#include "base/trace.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

/* ---- arena: per-request bump allocator ---- */
typedef struct dk__arena_block {
    struct dk__arena_block *next;
    size_t used, cap;
    _Alignas(16) char data[];
} dk__arena_block;

typedef struct dk__arena {
    dk__arena_block *head;
} dk__arena;

void *dk__arena_alloc(dk__arena *a, size_t size);
char *dk__arena_strndup(dk__arena *a, const char *s, size_t len);
void dk__arena_free(dk__arena *a);

/* ---- middleware attachment ---- */
typedef struct dk__mw_ref {
    char *name;
    json_t *config; /* JSON null when none */
} dk__mw_ref;

typedef struct dk__mw_list {
    dk__mw_ref *items;
    size_t n, cap;
} dk__mw_list;

int dk__mw_list_push(dk__mw_list *l, const char *name, const json_t *config);
int dk__mw_list_copy(dk__mw_list *dst, const dk__mw_list *src);
void dk__mw_list_free(dk__mw_list *l);

enum { DK__KIND_TYPED = 0, DK__KIND_RAW = 1, DK__KIND_CUSTOM = 2 };

/* Resolved middleware entry in the route table. */
typedef struct dk__mw_impl {
    char *name;
    dk_middleware_fn fn;
    void *user;
} dk__mw_impl;

/* Why the cors middleware's `config` is refused at start-up (credentials with
 * "*", "null" or no origin list), or NULL (also when `fn` is not cors). */
const char *dk__cors_config_error(dk_middleware_fn fn, const json_t *config);

typedef struct dk__kind_impl {
    char *name;
    dk_kind_fn fn;
    void *user;
} dk__kind_impl;

struct dk_route {
    char *name;     /* full name */
    char *kind_name;
    int kind;
    unsigned methods;
    dk_schema *input, *output;
    json_t *config; /* extra keys, object */
    dk_typed_fn typed;
    dk_raw_fn raw;
    dk_handler_fn custom;
    void *user;
    dk__mw_list mw;
    /* resolved at start */
    const dk__mw_impl **mw_impl;
    const dk__kind_impl *kind_impl;
    char allow[64]; /* Allow header value */
    json_t *doc;    /* dk_route_document(): {summary?, description?, sse?}; NULL: none */
    size_t index;   /* position in the route table's list (metrics, src/http/metrics.c) */
};

struct dk_router {
    char *prefix;
    dk__mw_list mw;
    dk_route **routes;
    size_t nroutes, cap;
    dk_router **children;
    size_t nchildren, ccap;
    char *error; /* first definition error, reported at start */
};

dk_route *dk__route_clone(const dk_route *r);
void dk__route_free(dk_route *r);

/* ---- route table: open addressing on full names ---- */
typedef struct dk__route_table {
    dk_route **slots;
    size_t mask;
    dk_route **list; /* in registration order */
    size_t n;
} dk__route_table;

const dk_route *dk__route_table_get(const dk__route_table *t, const char *name, size_t len);

/* ---- request / response ---- */
typedef struct dk__header {
    const char *name; /* lower case for requests */
    const char *value;
} dk__header;

struct dk_request {
    dk__arena *arena;
    const char *method;
    const char *path;  /* without query, NUL-terminated */
    const char *query; /* raw, "" when none */
    dk__header *headers;
    size_t nheaders;
    const char *body;
    size_t body_len;
    json_t *json;      /* parsed body (typed), owned */
    dk__header *qparams; /* decoded, lazily */
    size_t nqparams;
    bool qparsed;
    const char *peer_ip;
};

struct dk_response {
    int status;
    dk__header *headers; /* heap copies, name and value in one block */
    size_t nheaders, hcap;
    uint64_t hlit;       /* bit i: header i is two string literals, not owned */
    json_t *json;      /* owned */
    dk__buf body;      /* when not JSON */
    bool has_body;
    char *json_text;   /* serialised lazily for dk_response_body */
    size_t json_len;
    dk_stream *stream; /* server-side reference when streaming */
};

void dk__response_init(dk_response *res);
void dk__response_reset_body(dk_response *res);
void dk__response_free(dk_response *res);
/* dk_response_set_header for a name and value the framework made itself
 * (known safe): no validation, which costs ~300 instructions per request. */
int dk__response_set_header_trusted(dk_response *res, const char *name, const char *value);

typedef struct dk__kv {
    char *key;
    json_t *value;
    void *ptr;
    struct dk__kv *next;
} dk__kv;

typedef struct dk__on_end {
    void (*fn)(void *arg);
    void *arg;
    struct dk__on_end *next;
} dk__on_end;

struct dk_ctx {
    dk_app *app;
    const dk_route *route;
    dk_request *req;
    dk_response *res;
    dk__arena arena;
    char request_id[37];
    const char *ip;
    json_t *user;
    dk__kv *values;
    dk__on_end *on_end;
    dk_error *error;     /* recorded HTTP error */
    char *internal;      /* recorded internal failure text */
    dk_logger *log;      /* lazily created child */
    struct timespec t0;  /* request start (CLOCK_MONOTONIC), for the request log */
    dk__trace trace;     /* W3C trace context (src/base/trace.h) */
    char traceparent[56];/* dk_ctx_traceparent(), formatted lazily */
    bool secure;         /* TLS, or a trusted proxy's X-Forwarded-Proto: https */
};

struct dk_next {
    dk_ctx *ctx;
    dk_request *req;
    dk_response *res;
    size_t index;
};

/* One request's objects, set up the same way by the HTTP server, the test
 * harness and the unit tests (src/rpc/dispatch.c):
 *
 *     dk__exchange_init(&x);            zeroed; x.req.arena is x.ctx.arena
 *     x.req.method = dk__arena_strndup(x.req.arena, ...); ... path, query,
 *                                       headers, body, peer_ip
 *     dk__exchange_begin(&x, app);      request id, start time, trace context
 *     dk__dispatch(app, &x.ctx, &x.req, &x.res);
 *     dk__exchange_finish(&x);          on-end hooks, then the arena and the
 *                                       response are freed; x may be reused
 *
 * dk__exchange_finish() may also follow dk__exchange_init() alone (a request
 * that failed while being copied). One thread at a time. */
typedef struct dk__exchange {
    dk_ctx ctx;
    dk_request req;
    dk_response res;
    bool begun;
} dk__exchange;

void dk__exchange_init(dk__exchange *x);
void dk__exchange_begin(dk__exchange *x, dk_app *app);
void dk__exchange_finish(dk__exchange *x);

/* Full dispatch of one request: lookup, method policy, chain, error rendering.
 * `path` is the URL path (with leading '/', without query). */
void dk__dispatch(dk_app *app, dk_ctx *ctx, dk_request *req, dk_response *res);

/* The request log line (opts.access_log): call once per request when its
 * status is final (src/http/access_log.c). */
void dk__access_log(dk_ctx *ctx);

/* Renders rc (< 0) from a chain step into res, clearing ctx->error. */
void dk__render_failure(dk_ctx *ctx, dk_response *res, int rc);

/* ---- the application ---- */
typedef struct dk__hook {
    void (*fn)(dk_app *app, void *user);
    void *user;
} dk__hook;

/* Hooks through which a lower layer reaches a higher one: the app layer
 * (src/app/app.c, dk_app_new) fills them, the lower layer calls them. So the
 * HTTP server does not call the RPC dispatcher, nor the dispatcher the
 * built-in endpoints of the app (scripts/check-layers.sh). */
typedef struct dk__wiring {
    /* HTTP server -> RPC: runs one request (dk__dispatch). */
    void (*dispatch)(dk_app *app, dk_ctx *ctx, dk_request *req, dk_response *res);
    /* HTTP server -> app: answers the health probes and redirects while the
     * server is shutting down; true when it answered (dk__probe). */
    bool (*probe)(dk_app *app, dk_ctx *ctx, dk_request *req, dk_response *res);
    /* RPC dispatcher -> app: built-in endpoints (redirects, probes, metrics,
     * admin page) for a path no route matches; true when one answered. */
    bool (*builtin)(dk_app *app, dk_ctx *ctx, dk_request *req, dk_response *res);
    /* Route table -> web: a middleware's configuration checked at start-up;
     * NULL when fine, else why not (dk__cors_config_error). */
    const char *(*mw_config_error)(dk_middleware_fn fn, const json_t *config);
} dk__wiring;

typedef struct dk__server dk__server;     /* src/http/server.c */
typedef struct dk__plugins dk__plugins;   /* src/app/plugin_internal.h */
typedef struct dk__services dk__services; /* src/app/lifecycle.c */
struct dk__fetcher;                        /* src/http/fetch.c */

struct dk_app {
    dk_app_options opts;
    char *host, *db_url, *redis_url, *tls_cert, *tls_key;
    char **trusted; /* NULL-terminated copies */
    char *ip_header; /* copy of opts.client_ip_header */
    json_t *config;
    dk_core core;
    dk_router **routers;
    size_t nrouters;
    dk__mw_impl *mws;
    size_t nmws, mwcap;
    dk__kind_impl *kinds;
    size_t nkinds, kcap;
    dk__wiring wire;  /* set by dk_app_new() */
    dk__hook *hooks;
    size_t nhooks, hcap;
    dk__route_table table;
    dk__server *server;
    int port;
    bool started;
    int stop_fd; /* eventfd signalled by dk_app_stop() */
    atomic_int stop_requested;
    dk__plugins *plugins;   /* plugin manager (src/app/plugin.c), created by the first plugin */
    dk__services *services; /* back-end clients and housekeeping (src/app/lifecycle.c) */
    size_t ncreated, nstarted; /* entries of the life-cycle table created / started */
    char *start_error;      /* configuration error found by dk_app_new, reported by start */
    /* Execution model (src/http/exec.h): pools for calls that wait. */
    struct dk__pool *exec_io;   /* database and Redis calls, --db-pool threads */
    struct dk__pool *exec_work; /* dk_blocking(), --workers threads */
    struct dk__fetcher *fetcher; /* outbound HTTP thread (src/http/fetch.c), lazily */
    json_t *redirects;            /* dk_app_redirect(): path -> location; NULL: none */
    double access_rate;           /* opts.access_log resolved (0..1) */
    atomic_uint_fast64_t access_seq; /* requests seen by the sampled request log */
    struct dk__metrics *metrics;     /* per-thread request counters (src/http/metrics.c) */
    char *obs_strings[3];            /* copies of opts.metrics_path, admin_token, admin_path */
    void *admin;                     /* the operations page (src/app/admin.c), or NULL */
};

/* Execution pools (src/http/exec.c): started before the server, stopped after it. */
int dk__exec_start(dk_app *app, dk_err *err);
void dk__exec_stop(dk_app *app);
/* The outbound HTTP thread (src/http/fetch.c); stopped with the pools. NULL ignored. */
void dk__fetch_stop(struct dk__fetcher *f);

/* Server (src/http/server.c). */
int dk__server_start(dk_app *app, dk_err *err);
void dk__server_stop_accepting(dk_app *app);
void dk__server_close_streams(dk_app *app);
void dk__server_drain(dk_app *app, uint64_t deadline_ms);
void dk__server_free(dk_app *app);

/* Route table construction (src/rpc/router.c). */
int dk__routes_build(dk_app *app, dk_err *err);
void dk__routes_free(dk_app *app);
json_t *dk__route_json(const dk_route *r);

const dk__mw_impl *dk__app_find_mw(const dk_app *app, const char *name);
const dk__kind_impl *dk__app_find_kind(const dk_app *app, const char *name);


/* The life cycle (src/app/lifecycle.c): a table of services
 * {name, create, start, quiesce, stop, free}, walked forward to create and
 * start, backward to quiesce, stop and free. */
typedef struct dk__service {
    const char *name;
    int (*create)(dk_app *app, dk_err *err);           /* dk_app_new */
    int (*start)(dk_app *app, dk_err *err);            /* dk_app_start; undoes itself on failure */
    void (*quiesce)(dk_app *app, uint64_t deadline_ms); /* shutdown, first pass (backward) */
    void (*stop)(dk_app *app, uint64_t deadline_ms);    /* shutdown, second pass (backward) */
    void (*free)(dk_app *app);                         /* dk_app_free */
} dk__service;

/* Creates every entry not created yet; on failure the created ones stay
 * recorded for dk__lifecycle_free(). 0 or the failing entry's code. */
int dk__lifecycle_create(dk_app *app, dk_err *err);
/* Starts the entries up to and including `until` (NULL: all). On failure
 * every entry this app started is quiesced and stopped again (backward), so
 * nothing is left running, and the error is returned. */
int dk__lifecycle_start(dk_app *app, const char *until, dk_err *err);
/* Quiesces, then stops, every started entry (backward). Idempotent. */
void dk__lifecycle_stop(dk_app *app, uint64_t deadline_ms);
/* dk__lifecycle_stop, then frees every created entry (backward). */
void dk__lifecycle_free(dk_app *app);
/* Tests only: the start of entry `name` fails (NULL: none). */
void dk__lifecycle_fail_at(const char *name);
/* Position of entry `name` in the table (the count when unknown), and back. */
size_t dk__lifecycle_index(const char *name);
const char *dk__lifecycle_name(size_t i);
/* SIGINT/SIGTERM call dk_app_stop() (opts.install_signals); undone when a
 * start fails (src/app/app.c). */
void dk__app_signals_install(dk_app *app);
void dk__app_signals_undo(dk_app *app);
/* Plugins' static parts and the route table (no database). */
int dk__app_prepare(dk_app *app, dk_err *err);
/* Readiness: pings the database and Redis (when configured), adding
 * "database"/"redis": "ok"|"unreachable" to `checks`. 0 or DK_EUNAVAILABLE. */
int dk__services_ready(dk_app *app, json_t *checks);
/* Answers the built-in probes (opts.health_path / ready_path, GET or HEAD);
 * true when `req` was one (src/app/probes.c). */
bool dk__probe(dk_app *app, dk_ctx *ctx, dk_request *req, dk_response *res);
/* Answers GET <admin path> when the operations page is installed; true when
 * `req` was it (src/app/admin.c). */
bool dk__admin_page(dk_app *app, dk_ctx *ctx, dk_request *req, dk_response *res);
/* Frees the page's state when its plugin never ran (dk_app_free). */
void dk__admin_free(dk_app *app);
/* Plugin manager (src/app/plugin.c). */
int dk__plugins_prepare(dk_app *app, dk_err *err); /* validate deps/order; register errors,
                                                      middleware, kinds (no db) */
int dk__plugins_start(dk_app *app, dk_err *err);   /* migrations, services, init hooks */
void dk__plugins_stop(dk_app *app);                /* teardown hooks, reverse order */
void dk__plugins_free(dk_app *app);
void dk__plugins_describe(dk_app *app, json_t *doc); /* adds "events", "sseChannels" */
#endif
