/* Outbound HTTP (include/donkey/fetch.h) on libcurl.
 *
 * From a request's fiber, a transfer is handed to the application's fetch
 * thread, which drives every transfer of the process's handlers with one
 * curl multi handle (curl_multi_poll, woken by curl_multi_wakeup when a new
 * transfer is queued); the fiber is suspended (src/base/offload.h) and
 * resumed by the fetch thread's wake when its transfer is done. Elsewhere the
 * transfer runs on the calling thread with curl_easy_perform. */
#include "internal.h"
#include "base/offload.h"
#include "donkey/fetch.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct xfer {
    CURL *easy;
    struct curl_slist *hdrs;
    dk_fetch_response *res;
    size_t max_bytes;
    bool too_large;
    CURLcode code;
    dk__waiter *waiter; /* resumed when done (fetch thread) */
    struct xfer *next;  /* submission queue */
    dk__buf body, head;
    char errbuf[CURL_ERROR_SIZE];
} xfer;

typedef struct dk__fetcher {
    pthread_t thread;
    CURLM *multi;
    pthread_mutex_t lock;
    xfer *queue; /* submitted, not yet added to multi */
    bool stopping;
    int active;
} fetcher;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t create_lock = PTHREAD_MUTEX_INITIALIZER;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void dk_fetch_options_init(dk_fetch_options *o)
{
    memset(o, 0, sizeof(*o));
    o->method = "GET";
    o->timeout_ms = 30000;
    o->connect_timeout_ms = 10000;
    o->max_response_bytes = 8u * 1024 * 1024;
}

static size_t on_body(char *p, size_t size, size_t n, void *u)
{
    xfer *x = u;
    size_t len = size * n;
    if (x->body.len + len > x->max_bytes) {
        x->too_large = true;
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    }
    return dk__buf_append(&x->body, p, len) == 0 ? len : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *u)
{
    xfer *x = u;
    size_t len = size * n;
    /* A new response head (after 1xx or a followed redirect) replaces the last. */
    if (len > 5 && strncmp(p, "HTTP/", 5) == 0) {
        x->head.len = 0;
        return len;
    }
    if (len <= 2 || memchr(p, ':', len) == NULL)
        return len;
    if (x->head.len + len > 64 * 1024)
        return len; /* keep at most 64 KiB of headers */
    return dk__buf_append(&x->head, p, len) == 0 ? len : 0;
}

static bool has_header(const dk_fetch_options *o, const char *name)
{
    size_t n = strlen(name);
    for (const char *const *h = o->headers; h != NULL && *h != NULL; h++)
        if (strncasecmp(*h, name, n) == 0 && ((*h)[n] == ':' || (*h)[n] == ' '))
            return true;
    return false;
}

/* W3C trace context for the downstream service: the same trace, a new span
 * (docs/observability.md). Not when the caller set a traceparent. */
static int add_trace_headers(xfer *x, const dk_fetch_options *o, const dk__trace *t)
{
    if (t == NULL || has_header(o, "traceparent"))
        return 0;
    char span[17], tp[56], line[80];
    dk__trace_new_span(span);
    dk__trace_format(t, span, tp);
    snprintf(line, sizeof(line), "traceparent: %s", tp);
    struct curl_slist *l = curl_slist_append(x->hdrs, line);
    if (l == NULL)
        return DK_ENOMEM;
    x->hdrs = l;
    if (t->state != NULL && !has_header(o, "tracestate")) {
        dk__buf b = {0};
        if (dk__buf_appendf(&b, "tracestate: %s", t->state) < 0)
            return DK_ENOMEM;
        l = curl_slist_append(x->hdrs, b.data);
        dk__buf_free(&b);
        if (l == NULL)
            return DK_ENOMEM;
        x->hdrs = l;
    }
    return 0;
}

static int setup(xfer *x, const char *url, const dk_fetch_options *o, dk_fetch_response *res,
                 const dk__trace *trace)
{
    memset(res, 0, sizeof(*res));
    x->res = res;
    x->max_bytes = o->max_response_bytes ? o->max_response_bytes : 8u * 1024 * 1024;
    pthread_once(&curl_once, curl_init_once);
    x->easy = curl_easy_init();
    if (x->easy == NULL)
        return DK_ENOMEM;
    CURL *e = x->easy;
    uint64_t timeout = o->timeout_ms ? o->timeout_ms : 30000;
    uint64_t ctimeout = o->connect_timeout_ms ? o->connect_timeout_ms : 10000;
    if (ctimeout > timeout)
        ctimeout = timeout;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)ctimeout);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->max_bytes);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, o->max_redirects > 0 ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long)(o->max_redirects > 0 ? o->max_redirects : 0));
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, o->insecure ? 0L : 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, o->insecure ? 0L : 2L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "donkey");
    const char *method = o->method && *o->method ? o->method : "GET";
    if (strcmp(method, "GET") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    if (o->body != NULL) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, o->body);
    }
    for (const char *const *h = o->headers; h != NULL && *h != NULL; h++) {
        struct curl_slist *l = curl_slist_append(x->hdrs, *h);
        if (l == NULL)
            return DK_ENOMEM;
        x->hdrs = l;
    }
    if (add_trace_headers(x, o, trace) < 0)
        return DK_ENOMEM;
    if (x->hdrs != NULL)
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
    return 0;
}

/* Moves the transfer's outcome into its response; returns the DK_ code. */
static int finish(xfer *x)
{
    dk_fetch_response *res = x->res;
    int rc;
    long status = 0;
    if (x->easy != NULL)
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    switch (x->code) {
    case CURLE_OK:
        rc = 0;
        break;
    case CURLE_OPERATION_TIMEDOUT:
        rc = DK_ETIMEOUT;
        break;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        rc = DK_ECONNECT;
        break;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        rc = DK_EINVAL;
        break;
    case CURLE_FILESIZE_EXCEEDED:
        rc = DK_ELIMIT;
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        rc = DK_ETLS;
        break;
    case CURLE_OUT_OF_MEMORY:
        rc = DK_ENOMEM;
        break;
    default:
        rc = DK_EIO;
        break;
    }
    if (x->too_large)
        rc = DK_ELIMIT;
    if (rc < 0) {
        snprintf(res->error, sizeof(res->error), "%s",
                 x->errbuf[0] ? x->errbuf
                              : (x->too_large ? "response larger than the limit"
                                              : curl_easy_strerror(x->code)));
        status = rc == DK_ELIMIT ? status : 0;
    }
    res->status = (int)status;
    if (dk__buf_append(&x->body, "", 1) == 0) { /* NUL-terminate */
        res->body = x->body.data;
        res->body_len = x->body.len - 1;
        x->body.data = NULL;
    } else if (rc == 0) {
        rc = DK_ENOMEM;
    }
    if (x->head.len > 0 && dk__buf_append(&x->head, "", 1) == 0) {
        res->headers = x->head.data;
        res->headers_len = x->head.len - 1;
        x->head.data = NULL;
    }
    free(x->body.data);
    free(x->head.data);
    curl_slist_free_all(x->hdrs);
    if (x->easy != NULL)
        curl_easy_cleanup(x->easy);
    return rc;
}

/* ---- the fetch thread ---- */

static void *fetch_main(void *arg)
{
    fetcher *f = arg;
    dk__thread_name("dk-fetch");
    for (;;) {
        pthread_mutex_lock(&f->lock);
        xfer *q = f->queue;
        f->queue = NULL;
        bool stopping = f->stopping;
        pthread_mutex_unlock(&f->lock);
        for (; q != NULL; q = q->next) {
            if (curl_multi_add_handle(f->multi, q->easy) == CURLM_OK) {
                f->active++;
            } else {
                q->code = CURLE_FAILED_INIT;
                q->waiter->wake(q->waiter);
            }
        }
        if (stopping && f->active == 0)
            break;
        int running = 0;
        curl_multi_perform(f->multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(f->multi, &left)) != NULL) {
            if (m->msg != CURLMSG_DONE)
                continue;
            xfer *x = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            x->code = m->data.result;
            curl_multi_remove_handle(f->multi, m->easy_handle);
            f->active--;
            x->waiter->wake(x->waiter); /* x belongs to the fiber from here on */
        }
        curl_multi_poll(f->multi, NULL, 0, 1000, NULL);
    }
    return NULL;
}

static fetcher *fetcher_get(dk_app *app)
{
    pthread_mutex_lock(&create_lock);
    fetcher *f = app->fetcher;
    if (f == NULL && (f = calloc(1, sizeof(*f))) != NULL) {
        pthread_once(&curl_once, curl_init_once);
        f->multi = curl_multi_init();
        pthread_mutex_init(&f->lock, NULL);
        if (f->multi == NULL || pthread_create(&f->thread, NULL, fetch_main, f) != 0) {
            if (f->multi)
                curl_multi_cleanup(f->multi);
            pthread_mutex_destroy(&f->lock);
            free(f);
            f = NULL;
        } else {
            app->fetcher = f;
        }
    }
    pthread_mutex_unlock(&create_lock);
    return f;
}

void dk__fetch_stop(struct dk__fetcher *p)
{
    fetcher *f = p;
    if (f == NULL)
        return;
    pthread_mutex_lock(&f->lock);
    f->stopping = true;
    pthread_mutex_unlock(&f->lock);
    curl_multi_wakeup(f->multi);
    pthread_join(f->thread, NULL);
    curl_multi_cleanup(f->multi);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

int dk_fetch(dk_ctx *ctx, const char *url, const dk_fetch_options *o, dk_fetch_response *res)
{
    dk_fetch_options defaults;
    if (o == NULL) {
        dk_fetch_options_init(&defaults);
        o = &defaults;
    }
    if (res == NULL)
        return DK_EINVAL;
    xfer x;
    memset(&x, 0, sizeof(x));
    if (url == NULL) {
        memset(res, 0, sizeof(*res));
        snprintf(res->error, sizeof(res->error), "no URL");
        return DK_EINVAL;
    }
    const dk__trace *trace = ctx != NULL ? dk__trace_get(&ctx->trace) : dk__trace_current();
    int rc = setup(&x, url, o, res, trace);
    if (rc < 0) {
        x.code = CURLE_OUT_OF_MEMORY;
        finish(&x);
        return rc;
    }
    dk__waiter *w = dk__waiter_current();
    fetcher *f = w != NULL && ctx != NULL ? fetcher_get(dk_ctx_app(ctx)) : NULL;
    if (f == NULL) {
        x.code = curl_easy_perform(x.easy);
        return finish(&x);
    }
    x.waiter = w;
    pthread_mutex_lock(&f->lock);
    bool stopping = f->stopping;
    if (!stopping) {
        x.next = f->queue;
        f->queue = &x;
    }
    pthread_mutex_unlock(&f->lock);
    if (stopping) {
        x.code = curl_easy_perform(x.easy);
        return finish(&x);
    }
    curl_multi_wakeup(f->multi);
    dk__waiter_suspend(w);
    return finish(&x);
}

const char *dk_fetch_response_header(const dk_fetch_response *res, const char *name, char *buf,
                                     size_t cap)
{
    if (res == NULL || res->headers == NULL || name == NULL || buf == NULL || cap == 0)
        return NULL;
    size_t nl = strlen(name);
    const char *found = NULL;
    size_t found_len = 0;
    for (const char *p = res->headers; *p;) {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1;
            const char *end = p + len;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
                end--;
            found = v;
            found_len = (size_t)(end - v);
        }
        p += len;
        if (eol)
            p += 2;
    }
    if (found == NULL)
        return NULL;
    if (found_len >= cap)
        found_len = cap - 1;
    memcpy(buf, found, found_len);
    buf[found_len] = '\0';
    return buf;
}

void dk_fetch_response_free(dk_fetch_response *res)
{
    if (res == NULL)
        return;
    free(res->body);
    free(res->headers);
    res->body = res->headers = NULL;
}
