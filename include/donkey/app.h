/* donkey: application, routers, routes, request context, requests and responses.
 *
 * Threads (docs/architecture.md has the whole map; the same three words are
 * used in every header): an "HTTP thread" is one of the N h2o event loops;
 * route handlers and middleware run on a fiber of the HTTP thread that
 * received the request ("HTTP thread" below), and a call that waits moves its
 * work to a "worker thread" meanwhile. Background work (cron timers, async
 * event handlers, keep-alives) runs on the "service thread" (the libuv loop,
 * loop.h); job bodies and blocking cron bodies run on worker threads. Never
 * on the HTTP threads. */
#ifndef DONKEY_APP_H
#define DONKEY_APP_H

#include "common.h"
#include "error.h"
#include "log.h"
#include "schema.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dk_app dk_app;
typedef struct dk_router dk_router;
typedef struct dk_route dk_route;
typedef struct dk_ctx dk_ctx;
typedef struct dk_request dk_request;
typedef struct dk_response dk_response;
typedef struct dk_stream dk_stream;
typedef struct dk_next dk_next;

/* Core services (each declared in its own header). */
typedef struct dk_cache dk_cache;
typedef struct dk_events dk_events;
typedef struct dk_cron dk_cron;
typedef struct dk_jobs dk_jobs;
typedef struct dk_sse dk_sse;
typedef struct dk_ratelimit dk_ratelimit;
typedef struct dk_db dk_db;
typedef struct dk_loop dk_loop;

/** The core services record, reachable from requests, plugins, jobs. The
 *  pointers are owned by the app and live until dk_app_free(). */
typedef struct dk_core {
    dk_logger *logger;
    dk_cache *cache;
    dk_events *events;
    dk_cron *cron;
    dk_jobs *jobs;
    dk_sse *sse;
    dk_ratelimit *ratelimit;
    dk_errors *errors;
    dk_db *db;
    dk_loop *loop;        /* the service thread's loop (timers, background work) */
    const json_t *config; /* application configuration object (never NULL) */
    dk_app *app;
} dk_core;

/* HTTP methods a route allows (bit set). */
enum {
    DK_METHOD_GET = 1 << 0,
    DK_METHOD_POST = 1 << 1,
    DK_METHOD_PUT = 1 << 2,
    DK_METHOD_DELETE = 1 << 3,
    DK_METHOD_PATCH = 1 << 4,
    DK_METHOD_OPTIONS = 1 << 5,
    DK_METHOD_HEAD = 1 << 6,
};

/* ------------------------------------------------------------------ */
/* Handlers                                                            */

/** Typed route handler. `input` passed the input schema (defaults applied) and
 *  is borrowed for the call. On 0, `*output` must be a new reference; donkey
 *  takes it and checks the output schema (a violation is answered 500 and
 *  logged). Return dk_fail(...) for an HTTP error; any other negative code is
 *  logged with the request id and answered 500 INTERNAL_SERVER_ERROR without
 *  detail. HTTP thread. */
typedef int (*dk_typed_fn)(dk_ctx *ctx, const json_t *input, json_t **output, void *user);

/** Raw route handler: reads the request, fills the response (status, headers,
 *  body, or a stream). Errors as for dk_typed_fn. HTTP thread. */
typedef int (*dk_raw_fn)(dk_ctx *ctx, dk_request *req, dk_response *res, void *user);

/** Middleware: may answer early (fill `res` and return 0 without calling
 *  dk_next_run(), or return dk_fail(...)), set context values, call
 *  dk_next_run(next) to run the rest of the chain, then change the response.
 *  `config` is the per-route configuration given at attachment (borrowed; JSON
 *  null when none). HTTP thread. */
typedef int (*dk_middleware_fn)(dk_ctx *ctx, dk_request *req, dk_response *res,
                                const json_t *config, dk_next *next, void *user);

/** Runs the rest of the chain (later middleware and the handler). Errors of
 *  the inner chain are already rendered into `res` when it returns, so the
 *  middleware always sees a complete response; returns 0. A second call on
 *  the same `next` runs nothing, logs an error and returns DK_ESTATE. */
DK_API int dk_next_run(dk_next *next);

/** A user handler of a custom kind: any function pointer, cast by the kind's executor. */
typedef void (*dk_handler_fn)(void);

/** Executor of a custom handler kind. Receives the request, the route (its
 *  schemas and extra configuration) and the user's handler (dk_route_handler()).
 *  Fills `res` or fails like a raw handler. HTTP thread. */
typedef int (*dk_kind_fn)(dk_ctx *ctx, dk_request *req, dk_response *res,
                          const dk_route *route, void *user);

/* ------------------------------------------------------------------ */
/* Routers                                                             */

/* User data of the HTTP layer. Every `(fn, user)` pair registered below
 * (dk_route_typed/raw/custom, dk_app_add_middleware, dk_app_add_kind,
 * dk_app_on_shutdown) keeps `user` borrowed: donkey never frees it, copies of
 * a route (dk_router_mount, the route table) share it, and it must stay valid
 * until dk_app_free() returns. Free it after dk_app_free(), or in a plugin's
 * destroy hook (plugin.h), which runs after the last request. For a stream's
 * `user` see dk_stream_on_close(). */

/** New router with `prefix` ("" or NULL for none; copied). Caller frees with
 *  dk_router_free() unless it hands it to dk_app_use(). NULL if out of memory. */
DK_API dk_router *dk_router_new(const char *prefix);
DK_API void dk_router_free(dk_router *r);

/** Appends middleware `name` with `config_json` (JSON text or NULL) to the
 *  router's current list: sticky, it applies to every route defined after this
 *  call (and to child routers created after it). Returns 0, DK_EINVAL (bad
 *  config JSON; also recorded as a start-up error) or DK_ENOMEM. */
DK_API int dk_router_use(dk_router *r, const char *name, const char *config_json);

/** Child router with prefix "<parent prefix>.<sub>", starting with a copy of
 *  the parent's current middleware list. Owned by the parent (do not free).
 *  NULL if out of memory. */
DK_API dk_router *dk_router_child(dk_router *parent, const char *sub);

/** Copies `other`'s routes as they are now, renamed "<r prefix>.<name>", each
 *  with middleware = r's current list ++ the route's own. `other` is borrowed. */
DK_API int dk_router_mount(dk_router *r, const dk_router *other);

/** Typed route `name` (full name "<prefix>.<name>"), POST. Schemas are JSON
 *  Schema text (NULL: none) compiled now; an invalid schema returns DK_EINVAL
 *  and is recorded so dk_app_start() fails naming the route. Redefining a name
 *  on the same router is an error (recorded too). */
DK_API int dk_route_typed(dk_router *r, const char *name, const char *input_schema,
                          const char *output_schema, dk_typed_fn fn, void *user);

/** Raw route `name` answering the methods in `methods` (DK_METHOD_* bits; 0 means POST). */
DK_API int dk_route_raw(dk_router *r, const char *name, unsigned methods, dk_raw_fn fn,
                        void *user);

/** Route of custom handler kind `kind` (provided by a plugin; checked at
 *  start-up). `config_json` holds the extra keys (JSON object text or NULL);
 *  the keys "name", "handler", "middleware" are reserved (DK_EINVAL). */
DK_API int dk_route_custom(dk_router *r, const char *kind, const char *name, unsigned methods,
                           const char *input_schema, const char *output_schema,
                           const char *config_json, dk_handler_fn fn, void *user);

/** Documentation of a route, for `--routes-json`, `donkey routes` and the
 *  OpenAPI document (`donkey generate openapi`). Strings are copied. */
typedef struct dk_route_doc {
    const char *summary;     /* one line: the operation's OpenAPI summary */
    const char *description; /* longer text (Markdown), NULL: none */
    bool sse;                /* a raw route serving Server-Sent Events: documented as
                                text/event-stream with repeatable `channel` query
                                parameters and a Last-Event-ID header */
} dk_route_doc;

/** Documents route `name` (the same short name as when it was defined, on the
 *  same router, after its definition); a second call replaces the first.
 *  Returns 0, DK_ENOTFOUND (no such route on this router; recorded as a
 *  start-up error), DK_EINVAL or DK_ENOMEM. */
DK_API int dk_route_document(dk_router *r, const char *name, const dk_route_doc *doc);

/* Route accessors (for executors of custom kinds; borrowed, live with the app). */
DK_API const char *dk_route_name(const dk_route *route);
DK_API const char *dk_route_kind(const dk_route *route);
DK_API const dk_schema *dk_route_input(const dk_route *route);
DK_API const dk_schema *dk_route_output(const dk_route *route);
/** Extra configuration keys (object, never NULL). */
DK_API const json_t *dk_route_config(const dk_route *route);
DK_API dk_handler_fn dk_route_handler(const dk_route *route);
DK_API void *dk_route_user(const dk_route *route);

/** Runs the standard typed pipeline (parse JSON body, validate input, call
 *  `fn`, validate output, JSON response) for a custom kind that wants it. */
DK_API int dk_route_run_typed(dk_ctx *ctx, dk_request *req, dk_response *res,
                              const dk_route *route, dk_typed_fn fn, void *user);

/* ------------------------------------------------------------------ */
/* Application                                                         */

typedef struct dk_app_options {
    const char *host;          /* bind address, default "127.0.0.1" */
    int port;                  /* default 3000; 0 picks a free port */
    int threads;               /* HTTP threads; default 1 */
    const char *db_url;        /* default "sqlite::memory:" */
    const char *redis_url;     /* NULL: in-memory services */
    size_t max_body_bytes;     /* default 1 MiB -> 413 */
    size_t max_header_bytes;   /* total header bytes, default 16 KiB -> 431 */
    int max_headers;           /* default 100 -> 431 */
    uint64_t read_timeout_ms;  /* whole request must arrive within, default 10000 -> 408/close */
    uint64_t idle_timeout_ms;  /* keep-alive idle, default 30000 */
    int max_connections;       /* 0 (default): min(10000, RLIMIT_NOFILE - margin) at start;
                                  beyond -> 503 and close */
    int max_json_depth;        /* default 64 -> 400 */
    size_t max_json_string;    /* longest JSON string accepted, default 1 MiB */
    uint64_t shutdown_grace_ms;/* default 10000 */
    const char *tls_cert_file; /* TLS when both set */
    const char *tls_key_file;
    bool http2;                /* default false (see docs/security.md) */
    const char *const *trusted_proxies; /* NULL-terminated CIDRs; default none */
    dk_log_level log_level;    /* default info, DONKEY_LOG_LEVEL overrides */
    dk_log_format log_format;  /* default pretty, DONKEY_LOG_FORMAT overrides */
    const char *config_json;   /* application config object text, NULL = {}; text that is not
                                  a JSON object makes dk_app_start() fail with DK_EINVAL */
    bool routes_json;          /* --routes-json: print routes and exit */
    bool install_signals;      /* default true: SIGINT/SIGTERM start shutdown */
    /* Execution model (docs/architecture.md): handlers run on small stacks
     * on the HTTP threads; a call that waits is done elsewhere meanwhile. */
    int db_pool;               /* database connections and I/O threads (--db-pool), default 16 */
    int workers;               /* dk_blocking() worker threads (--workers), default 8 */
    int max_waiting;           /* handlers alive at once, all HTTP threads (--max-waiting);
                                  default 4096; beyond -> 503 SERVICE_UNAVAILABLE */
    /* Input validation of typed routes (docs/schema.md). */
    int max_validation_issues; /* issues collected before validation stops
                                  (--max-validation-issues), default 100 */
    bool allow_nul_strings;    /* --allow-nul-strings: input strings may contain U+0000
                                  (default false: an invalid_string issue) */
    const char *log_redact;    /* --log-redact KEYS: comma-separated keys redacted in logs
                                  besides the defaults (docs/logger.md); read by dk_app_new() */
    /* --help / --version (docs/deployment.md "Flags and environment"). */
    const char *version;       /* the application's version, printed by --version; NULL: none */
    const char *usage;         /* the application's own options, appended to --help (text
                                  ending in a newline); NULL: none */
    bool help_returns;         /* --help/--version make dk_app_options_parse() return
                                  DK_APP_HELP_SHOWN instead of exiting with status 0 */
    /* Request log (docs/logger.md "Request log"): one line per request. */
    double access_log;         /* fraction of requests logged, 0..1 (--access-log
                                  on|off|FRACTION); -1 (default): on, off when
                                  DONKEY_ENV=production */
    /* Built-in probes (docs/deployment.md "Health checks"); NULL or "" turns one off. */
    const char *health_path;   /* liveness, default "/healthz" (--health-path) */
    const char *ready_path;    /* readiness, default "/readyz" (--ready-path) */
    bool env_read;             /* set by dk_app_options_parse(): it read DONKEY_LOG_LEVEL /
                                  DONKEY_LOG_FORMAT (a flag winning), dk_app_new() does not */
    /* Hardening (docs/security.md, docs/deployment.md). */
    int max_connections_per_ip;   /* open connections per client IP (socket peer), all HTTP
                                     threads; 0 = off (default); beyond -> 503 and close */
    const char *client_ip_header; /* header a trusted proxy sets to the client address
                                     ("X-Real-IP", "CF-Connecting-IP"...; --client-ip-header);
                                     NULL (default): only X-Forwarded-For, walked from the right */
    uint64_t hsts_seconds;        /* Strict-Transport-Security max-age on TLS responses
                                     (--hsts SECONDS); 0 = not sent (default) */
    /* Observability (docs/observability.md). */
    bool metrics;                 /* --metrics: GET metrics_path answers the Prometheus text
                                     format (0.0.4); default off */
    const char *metrics_path;     /* --metrics-path PATH, default "/metrics" */
    const char *admin_token;      /* --admin-token TOKEN: the operations page at admin_path and
                                     the admin.* routes, for `Authorization: Bearer TOKEN`
                                     (copied at dk_app_new); NULL (default): off */
    const char *admin_path;       /* --admin-path PATH, default "/_donkey" */
} dk_app_options;

/** Returned (positive) by dk_app_options_parse() after it printed --help or
 *  --version, when `help_returns` is set. */
#define DK_APP_HELP_SHOWN 1

/** The library's version ("0.1.0"). Static. */
DK_API const char *dk_version(void);

/** Fills defaults. */
DK_API void dk_app_options_init(dk_app_options *o);

/** Consumes the standard flags from argv (-h/--help and --version print to
 *  stdout and exit with status 0, see `help_returns`; --port N, --db URL, --redis URL,
 *  --threads N, --trust-proxy CIDR (repeatable, up to 16), --client-ip-header NAME,
 *  --routes-json, --access-log on|off|FRACTION, --health-path PATH, --ready-path PATH,
 *  --host H, --log-level L, --log-format F, --tls-cert FILE, --tls-key FILE,
 *  --http2 (off by default); limits, see docs/security.md:
 *  --max-body BYTES, --max-header-bytes BYTES, --max-headers N (1..100),
 *  --max-connections N, --max-connections-per-ip N, --hsts SECONDS, --read-timeout DUR, --idle-timeout DUR,
 *  --shutdown-grace DUR, --max-json-depth N, --max-json-string BYTES,
 *  --max-sse-clients N, --max-sse-per-channel N (these two set
 *  DK_SSE_MAX_CLIENTS / DK_SSE_MAX_PER_CHANNEL); BYTES takes a k or m suffix,
 *  DUR is "500ms", "10s" or milliseconds) and environment
 *  (DONKEY_DATABASE_URL, DONKEY_REDIS_URL, PORT, and DONKEY_<FLAG> for the
 *  others: --help lists them; a flag wins over its variable). Recognised flags are removed
 *  and *argc updated; others are left for the application. Strings point into
 *  argv/environ. Returns 0, or DK_EINVAL with `err` (bad value). */
DK_API int dk_app_options_parse(dk_app_options *o, int *argc, char **argv, dk_err *err);

/** New application; `opts` copied (NULL = defaults). Creates the logger and
 *  core services. NULL if out of memory. Caller frees with dk_app_free(). */
DK_API dk_app *dk_app_new(const dk_app_options *opts);
DK_API void dk_app_free(dk_app *app);

/** Registers a router; the app takes ownership (also on failure). */
DK_API int dk_app_use(dk_app *app, dk_router *r);

/** Registers a middleware implementation (used by plugins). Name copied. */
DK_API int dk_app_add_middleware(dk_app *app, const char *name, dk_middleware_fn fn, void *user);
/** Registers a handler kind implementation (used by plugins). Name copied. */
DK_API int dk_app_add_kind(dk_app *app, const char *name, dk_kind_fn fn, void *user);

/** Answers GET/HEAD requests for `path` (exact, with its leading '/', e.g.
 *  "/") with 302 Found and `Location: location`, when no route has that path.
 *  Both copied; a second call for the same path replaces the first. Before
 *  dk_app_start(). Returns 0, DK_EINVAL (path not starting with '/', or CR/LF
 *  in either) or DK_ENOMEM. */
DK_API int dk_app_redirect(dk_app *app, const char *path, const char *location);

/** Registers a function run at shutdown (after HTTP drain, before services are
 *  freed), in reverse registration order. */
DK_API int dk_app_on_shutdown(dk_app *app, void (*fn)(dk_app *app, void *user), void *user);

/** Core services. Borrowed; lives with the app. */
DK_API const dk_core *dk_app_core(dk_app *app);
DK_API dk_logger *dk_app_logger(dk_app *app);
/** The port actually bound (after dk_app_start()). */
DK_API int dk_app_port(const dk_app *app);

/** Prepares and starts: opens the database, runs migrations and plugin init,
 *  builds the route table (duplicate name, unknown middleware or kind: error),
 *  starts background services and the listener threads. Returns 0, or a
 *  negative code with `err` naming the problem (nothing left running). */
DK_API int dk_app_start(dk_app *app, dk_err *err);

/** Blocks until shutdown is requested (signal or dk_app_stop()), then shuts
 *  down in order: stop accepting, close SSE, stop cron and jobs, drain
 *  in-flight requests (grace period), plugin teardown, flush logs, close db. */
DK_API int dk_app_wait(dk_app *app);

/** Requests shutdown. Any thread, async-signal-safe. */
DK_API void dk_app_stop(dk_app *app);

/** Start, wait, and map the result to a process exit status (also handles
 *  --routes-json: prints the route table JSON and returns 0 without listening
 *  or opening the database). Start-up errors are printed as one line. */
DK_API int dk_app_run(dk_app *app);

/** The route table as JSON {"routes":[{name, handler, methods, input, output,
 *  middleware}], "events": [...], "sseChannels": [...]}. New reference. Call
 *  after routers are registered; builds nothing persistent. */
DK_API json_t *dk_app_routes_json(dk_app *app, dk_err *err);

/* ------------------------------------------------------------------ */
/* Request context                                                     */

DK_API const char *dk_ctx_request_id(const dk_ctx *ctx);
/** Client IP: the socket peer, or the forwarding headers when the peer is a
 *  trusted proxy. Valid until the request ends. */
DK_API const char *dk_ctx_ip(const dk_ctx *ctx);
/** Whether the client reached the server over HTTPS: the request came over
 *  TLS, or the socket peer is a trusted proxy (--trust-proxy) whose
 *  X-Forwarded-Proto (present once; its last entry) is "https". Use it for
 *  the Secure attribute of cookies. */
DK_API bool dk_ctx_is_secure(const dk_ctx *ctx);
/** Full route name. */
DK_API const char *dk_ctx_route(const dk_ctx *ctx);
DK_API const dk_core *dk_ctx_core(const dk_ctx *ctx);
DK_API dk_app *dk_ctx_app(const dk_ctx *ctx);
/** A logger bound to {requestId, route}; valid until the request ends. */
DK_API dk_logger *dk_ctx_log(dk_ctx *ctx);
DK_API const json_t *dk_ctx_config(const dk_ctx *ctx);

/** The authenticated user (stolen; replaces an earlier one). */
DK_API void dk_ctx_set_user(dk_ctx *ctx, json_t *user);
/** Borrowed; NULL when none. */
DK_API json_t *dk_ctx_user(const dk_ctx *ctx);
/** Per-request values; `value` stolen, key copied. */
DK_API int dk_ctx_set(dk_ctx *ctx, const char *key, json_t *value);
/** Borrowed; NULL when absent. */
DK_API json_t *dk_ctx_get(const dk_ctx *ctx, const char *key);
/** Per-request pointer slots (not JSON). */
DK_API int dk_ctx_set_ptr(dk_ctx *ctx, const char *key, void *ptr);
DK_API void *dk_ctx_get_ptr(const dk_ctx *ctx, const char *key);

/** Plugin service by name (NULL: unknown). Borrowed. */
DK_API void *dk_ctx_service(dk_ctx *ctx, const char *plugin);

/** Arena memory valid until the request ends. NULL if out of memory. */
DK_API void *dk_ctx_alloc(dk_ctx *ctx, size_t size);
DK_API char *dk_ctx_strdup(dk_ctx *ctx, const char *s);
DK_API char *dk_ctx_printf(dk_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Runs `fn(arg)` when the request ends. */
DK_API int dk_ctx_on_end(dk_ctx *ctx, void (*fn)(void *arg), void *arg);

/** Records an HTTP error for this request and returns DK_EHTTP. `message` is
 *  printf-style; NULL uses the status' default message. */
/** Runs `fn(arg)` on a worker thread (the --workers pool) and returns its
 *  result, while the calling HTTP thread serves other requests; the handler
 *  resumes on its own HTTP thread afterwards. For CPU-heavy work and blocking
 *  library calls (password hashing, image work, a blocking SDK). Outside a
 *  handler (a job or cron body, main) it simply calls `fn(arg)`. `ctx` may be
 *  NULL; `arg` is borrowed and must stay valid until the call returns. */
DK_API int dk_blocking(dk_ctx *ctx, int (*fn)(void *arg), void *arg);

DK_API int dk_fail(dk_ctx *ctx, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/** As dk_fail() with details (stolen) and a plain message (copied; NULL default). */
DK_API int dk_fail_details(dk_ctx *ctx, int status, const char *message, json_t *details);
/** Records `err` (stolen) and returns DK_EHTTP. */
DK_API int dk_fail_error(dk_ctx *ctx, dk_error *err);
/** Records an internal (non-HTTP) failure: logged with the request id, the
 *  client gets a generic 500. Returns DK_EINTERNAL. */
DK_API int dk_fail_internal(dk_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Maps a negative DK_E* code from a service (db, cache...) to the right HTTP
 *  answer: DK_ECONSTRAINT 409, DK_EBUSY/DK_EUNAVAILABLE 503, DK_EHTTP kept,
 *  others 500. Returns the code to return from the handler. */
DK_API int dk_fail_code(dk_ctx *ctx, int code, const char *what);

/* ------------------------------------------------------------------ */
/* Request                                                             */

/** Method, path (without query) and raw query string ("" when none). Valid until the request ends. */
DK_API const char *dk_request_method(const dk_request *req);
DK_API const char *dk_request_path(const dk_request *req);
DK_API const char *dk_request_query(const dk_request *req);
/** First value of header `name` (case-insensitive) or NULL. */
DK_API const char *dk_request_header(dk_request *req, const char *name);
DK_API size_t dk_request_header_count(const dk_request *req);
/** Header `i`: name (lower case) and value, valid until the request ends. */
DK_API int dk_request_header_at(dk_request *req, size_t i, const char **name, const char **value);
/** First decoded query parameter `name` or NULL. */
DK_API const char *dk_request_query_param(dk_request *req, const char *name);
/** All decoded values of query parameter `name`, up to `max`; returns the count. */
DK_API size_t dk_request_query_params(dk_request *req, const char *name, const char **out, size_t max);
/** Cookie `name` or NULL. */
DK_API const char *dk_request_cookie(dk_request *req, const char *name);
/** Body bytes (not NUL-terminated... but a NUL follows them) and length. */
DK_API const char *dk_request_body(const dk_request *req, size_t *len);
/** Parsed JSON body (typed routes: the raw parsed value before validation) or NULL. Borrowed. */
DK_API json_t *dk_request_json(dk_request *req);

/* ------------------------------------------------------------------ */
/* Response                                                            */

DK_API void dk_response_set_status(dk_response *res, int status);
DK_API int dk_response_status(const dk_response *res);
/** Adds a header; name and value copied. DK_EINVAL when either holds CR, LF
 *  or NUL, or the name is empty. */
DK_API int dk_response_add_header(dk_response *res, const char *name, const char *value);
/** Replaces every header `name` with one value. */
DK_API int dk_response_set_header(dk_response *res, const char *name, const char *value);
DK_API const char *dk_response_header(const dk_response *res, const char *name);
/** Sets the body (copied). Clears a JSON body. */
DK_API int dk_response_set_body(dk_response *res, const void *data, size_t len);
/** Sets a JSON body (stolen) and Content-Type application/json. */
DK_API int dk_response_set_json(dk_response *res, json_t *value);
/** The JSON body, if the body is JSON (borrowed), else NULL. */
DK_API json_t *dk_response_json(const dk_response *res);
/** Body bytes (a JSON body is serialised lazily) */
DK_API const char *dk_response_body(dk_response *res, size_t *len);

/** Turns the response into a stream: status and headers are sent when the
 *  handler returns, then bytes written with dk_stream_write() follow, until
 *  dk_stream_close() or the client hangs up. Returns a stream with one
 *  reference owned by the caller (release with dk_stream_unref()). NULL if out
 *  of memory. HTTP thread. */
DK_API dk_stream *dk_response_stream(dk_response *res);

/** Queues bytes (copied) for the client. Any thread. Returns 0, DK_ESTATE when
 *  the stream is closed, DK_ELIMIT when the queued bytes would exceed the
 *  stream's limit (the stream is then closed: slow reader). */
DK_API int dk_stream_write(dk_stream *s, const void *data, size_t len);
/** A shared, immutable, reference-counted byte buffer: one copy of a frame
 *  written to many streams (an SSE broadcast to N clients) without copying it
 *  N times. Reference counts are atomic: any thread. */
typedef struct dk_buf dk_buf;
/** New buffer holding a copy of `len` bytes of `data`, with one reference
 *  owned by the caller (release with dk_buf_unref()). NULL if out of memory. */
DK_API dk_buf *dk_buf_new(const void *data, size_t len);
/** Takes one more reference; returns `b`. */
DK_API dk_buf *dk_buf_ref(dk_buf *b);
/** Drops one reference; the last one frees the buffer. NULL is ignored. */
DK_API void dk_buf_unref(dk_buf *b);
/** The bytes (borrowed, valid while a reference is held; a NUL follows them)
 *  and, when `len` is not NULL, their count. */
DK_API const char *dk_buf_data(const dk_buf *b, size_t *len);
/** Queues `b` for the client without copying. The stream takes its own
 *  reference (the caller keeps its one). Returns as dk_stream_write(). Any thread. */
DK_API int dk_stream_write_buf(dk_stream *s, dk_buf *b);
/** Marks a stream as long-lived (an event stream that stays open for minutes
 *  or hours). On cleartext HTTP/1.1 the server then releases the request's
 *  memory once the head and the first bytes are sent and keeps only the
 *  socket (a few hundred bytes per stream instead of ~10 KiB); the connection
 *  closes when the stream ends instead of serving another request. Call
 *  before the handler returns. HTTP thread. */
DK_API void dk_stream_set_long_lived(dk_stream *s, bool yes);
/** Limit of queued-but-unsent bytes (default 256 KiB). */
DK_API void dk_stream_set_limit(dk_stream *s, size_t bytes);
/** Ends the stream (after flushing queued bytes). Any thread; idempotent. */
DK_API void dk_stream_close(dk_stream *s);
DK_API bool dk_stream_closed(const dk_stream *s);
/** `fn` runs once, on the stream's HTTP thread, when the stream ends for any
 *  reason (close, hang-up, server shutdown). `user` is borrowed until then:
 *  `fn` is its last use, so `fn` may free it. A later call replaces `fn`. */
DK_API void dk_stream_on_close(dk_stream *s, void (*fn)(dk_stream *s, void *user), void *user);
DK_API dk_stream *dk_stream_ref(dk_stream *s);
DK_API void dk_stream_unref(dk_stream *s);

#ifdef __cplusplus
}
#endif
#endif
