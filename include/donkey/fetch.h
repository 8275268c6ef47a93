/* donkey: outbound HTTP for handlers, jobs and cron bodies (libcurl).
 *
 *   dk_fetch_options o;
 *   dk_fetch_options_init(&o);                 // GET, 30 s, 8 MiB, TLS verified
 *   o.timeout_ms = 5000;
 *   dk_fetch_response r;
 *   int rc = dk_fetch(ctx, "https://api.example.com/v1/rates", &o, &r);
 *   if (rc == DK_ETIMEOUT) return dk_fail(ctx, 504, "upstream timed out");
 *   if (rc < 0)            return dk_fail(ctx, 502, "upstream: %s", r.error);
 *   json_t *body = json_loadb(r.body, r.body_len, 0, NULL);
 *   dk_fetch_response_free(&r);
 *
 * In a request handler the transfer runs on the application's fetch thread
 * (one libcurl multi handle, many transfers at once) and the handler's HTTP
 * thread serves other requests until the answer is in; see
 * docs/architecture.md. Elsewhere (a job, a cron body, main) the transfer runs
 * on the calling thread. Redirects are not followed unless asked; TLS
 * certificates and host names are verified unless asked; only http:// and
 * https:// URLs are fetched. */
#ifndef DONKEY_FETCH_H
#define DONKEY_FETCH_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dk_ctx dk_ctx;

typedef struct dk_fetch_options {
    const char *method;          /* default "GET" */
    const char *const *headers;  /* NULL-terminated "Name: value" lines, borrowed; NULL none */
    const void *body;            /* request body, borrowed; NULL none */
    size_t body_len;
    uint64_t timeout_ms;         /* whole transfer, default 30000; 0 = default */
    uint64_t connect_timeout_ms; /* default 10000 (bounded by timeout_ms) */
    size_t max_response_bytes;   /* default 8 MiB; a bigger body fails with DK_ELIMIT */
    int max_redirects;           /* default 0: a 3xx is returned as it is */
    bool insecure;               /* default false: certificates and host names verified */
} dk_fetch_options;

typedef struct dk_fetch_response {
    int status;        /* HTTP status, 0 when no response arrived */
    char *body;        /* malloc'ed, NUL-terminated (also when empty); caller frees via
                          dk_fetch_response_free */
    size_t body_len;
    char *headers;     /* the response head's header lines, "Name: value\r\n" each */
    size_t headers_len;
    char error[256];   /* on failure: what went wrong, for logs */
} dk_fetch_response;

/** Fills defaults (see the struct). */
DK_API void dk_fetch_options_init(dk_fetch_options *o);

/** Fetches `url` (borrowed) with `o` (borrowed, NULL = defaults). `ctx` is
 *  the request's context in a handler, or NULL. Fills `*res` in every case
 *  (free it with dk_fetch_response_free()). Returns 0 when a response arrived
 *  (any status), or: DK_EINVAL (bad URL or scheme), DK_ECONNECT (refused,
 *  unreachable, unknown host), DK_ETIMEOUT, DK_ELIMIT (response larger than
 *  max_response_bytes), DK_ETLS (handshake or verification), DK_ENOMEM,
 *  DK_EIO (anything else; res->error has libcurl's text). */
DK_API int dk_fetch(dk_ctx *ctx, const char *url, const dk_fetch_options *o,
                    dk_fetch_response *res);

/** The value of response header `name` (case-insensitive; the last one when
 *  repeated), copied into `buf` (size `cap`); NULL when absent. */
DK_API const char *dk_fetch_response_header(const dk_fetch_response *res, const char *name,
                                            char *buf, size_t cap);

/** Frees what dk_fetch put in `res` (not `res` itself). NULL ok. */
DK_API void dk_fetch_response_free(dk_fetch_response *res);

#ifdef __cplusplus
}
#endif
#endif
