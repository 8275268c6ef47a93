/* The HTTP server: N h2o evloop threads, each with its own SO_REUSEPORT
 * listener, turning h2o requests into dk_request/dk_response and back, plus
 * streaming responses written from any thread. */
#include "internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <h2o.h>
#include <h2o/http1.h>
#include <h2o/http2.h>

#include "donkey/ratelimit.h"
#include "base/offload.h"
#include "base/fiber.h"
#include "http/metrics.h"
#include "base/stats.h"


typedef struct task task;

typedef struct worker {
    dk__server *srv;
    int index;
    pthread_t thread;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_evloop_t *loop;
    h2o_socket_t *listener;
    int fd;
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t stream_rx;
    h2o_multithread_receiver_t control_rx;
    h2o_multithread_message_t control_msg;
    h2o_multithread_receiver_t wake_rx; /* resumptions of waiting requests */
    task *free_tasks;                   /* HTTP thread only */
    int nfree_tasks;
    atomic_int inflight;
    atomic_int conns;
    h2o_linklist_t streams; /* live streams, HTTP thread only */
    atomic_bool stop_accepting, close_streams, exit;
    atomic_bool exited;
    /* Out of descriptors: accepting paused for a moment (HTTP thread). */
    h2o_timeout_t accept_pause;
    h2o_timeout_entry_t accept_pause_entry;
} worker;

/* Open connections of one client address (max_connections_per_ip). */
typedef struct ip_count {
    struct ip_count *next;
    dk__server *srv;
    unsigned char addr[16]; /* IPv6, IPv4 mapped */
    int n;
} ip_count;

#define IP_BUCKETS 1024

struct dk__server {
    dk_app *app;
    h2o_globalconf_t config;
    h2o_hostconf_t *host;
    SSL_CTX *ssl;
    worker *workers;
    int nworkers;
    int trusted_n;
    atomic_int conns; /* open connections, all workers (max_connections) */
    pthread_mutex_t ip_lock; /* guards ip_table */
    ip_count *ip_table[IP_BUCKETS];
    atomic_int reserve_fd; /* /dev/null, given up to accept-and-refuse at EMFILE */
    char hsts[40];         /* Strict-Transport-Security value, "" when off */
    atomic_int tasks; /* requests whose handler has not finished (max_waiting) */
    pthread_mutex_t ready_lock;
    pthread_cond_t ready_cond;
    int nready;
};

/* ---- shared buffers ---- */

struct dk_buf {
    atomic_int refs;
    size_t len;
    char data[];
};

dk_buf *dk_buf_new(const void *data, size_t len)
{
    dk_buf *b = malloc(sizeof(*b) + len + 1);
    if (b == NULL)
        return NULL;
    atomic_init(&b->refs, 1);
    b->len = len;
    if (len)
        memcpy(b->data, data, len);
    b->data[len] = '\0';
    return b;
}

dk_buf *dk_buf_ref(dk_buf *b)
{
    atomic_fetch_add(&b->refs, 1);
    return b;
}

void dk_buf_unref(dk_buf *b)
{
    if (b != NULL && atomic_fetch_sub(&b->refs, 1) == 1)
        free(b);
}

const char *dk_buf_data(const dk_buf *b, size_t *len)
{
    if (len)
        *len = b->len;
    return b->data;
}

/* ---- streams ---- */

#define STREAM_MAX_IOV 16

/* A stream is written through h2o's generator (h2o_send) until, for a
 * long-lived stream on cleartext HTTP/1.1 (dk_stream_set_long_lived: event
 * streams), the response head and the first bytes are out. Then it is
 * "detached": the socket is duplicated into a plain h2o socket of the same
 * loop and h2o is told to drop the request, which frees the connection, the
 * request and its memory pool and the socket's input buffer (~10 KiB) and
 * leaves a few hundred bytes per open stream. The body is chunk-encoded by
 * donkey from the start (h2o's chunked filter steps aside when the response
 * already names a Transfer-Encoding), so the framing is the same before and
 * after the switch and the stream still ends with the last chunk. */
struct dk_stream {
    h2o_generator_t gen; /* first: h2o hands it back */
    atomic_int refs;
    pthread_mutex_t lock;
    worker *w;
    h2o_req_t *req;     /* HTTP thread; NULL once the request is gone */
    h2o_socket_t *sock; /* HTTP thread; the socket once detached */
    h2o_linklist_t link;
    h2o_multithread_message_t msg;
    /* queued, under lock */
    dk_buf **q;
    size_t qn, qcap, qbytes, limit;
    bool notified, close_requested, abort, closed, started;
    /* HTTP thread */
    bool sending, final_sent, on_close_ran, cut;
    bool long_lived, chunked, detached;
    uint8_t ninflight;
    dk_buf *inflight[STREAM_MAX_IOV];
    char chunk_head[20];
    void (*on_close)(dk_stream *s, void *user);
    void *on_close_user;
};

static _Thread_local worker *tl_worker;

/* Stopped servers stay reachable (see dk__server_free). */
dk__server *dk__retired[64];
int dk__retired_n;

static void stream_flush(dk_stream *s);

dk_stream *dk_stream_ref(dk_stream *s)
{
    atomic_fetch_add(&s->refs, 1);
    return s;
}

void dk_stream_unref(dk_stream *s)
{
    if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    for (size_t i = 0; i < s->qn; i++)
        dk_buf_unref(s->q[i]);
    free(s->q);
    for (size_t i = 0; i < s->ninflight; i++)
        dk_buf_unref(s->inflight[i]);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static void stream_notify_locked(dk_stream *s)
{
    if (s->notified || !s->started || s->w == NULL)
        return;
    s->notified = true;
    dk_stream_ref(s);
    h2o_multithread_send_message(&s->w->stream_rx, &s->msg);
}

static atomic_uint_fast64_t streams_cut; /* slow readers cut off (metrics) */

uint64_t dk__streams_cut(void)
{
    return atomic_load_explicit(&streams_cut, memory_order_relaxed);
}

int dk__server_connections(dk_app *app)
{
    dk__server *srv = app->server;
    return srv != NULL ? atomic_load(&srv->conns) : 0;
}

static int stream_push(dk_stream *s, dk_buf *b)
{
    pthread_mutex_lock(&s->lock);
    if (s->closed || s->close_requested) {
        pthread_mutex_unlock(&s->lock);
        dk_buf_unref(b);
        return DK_ESTATE;
    }
    if (s->qbytes + b->len > s->limit) {
        /* Slow reader: cut it off rather than grow without bound. */
        if (!s->abort)
            atomic_fetch_add_explicit(&streams_cut, 1, memory_order_relaxed);
        s->close_requested = true;
        s->abort = true;
        stream_notify_locked(s);
        pthread_mutex_unlock(&s->lock);
        dk_buf_unref(b);
        return DK_ELIMIT;
    }
    if (s->qn == s->qcap) {
        size_t cap = s->qcap ? s->qcap * 2 : 8;
        dk_buf **q = realloc(s->q, cap * sizeof(*q));
        if (q == NULL) {
            pthread_mutex_unlock(&s->lock);
            dk_buf_unref(b);
            return DK_ENOMEM;
        }
        s->q = q;
        s->qcap = cap;
    }
    s->q[s->qn++] = b;
    s->qbytes += b->len;
    if (tl_worker == s->w && s->detached && !s->notified) {
        /* On the stream's own HTTP thread (an SSE broadcast from a handler
         * of this loop): write now instead of messaging ourselves. */
        pthread_mutex_unlock(&s->lock);
        stream_flush(s);
        return 0;
    }
    stream_notify_locked(s);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

int dk_stream_write(dk_stream *s, const void *data, size_t len)
{
    dk_buf *b = dk_buf_new(data, len);
    if (b == NULL)
        return DK_ENOMEM;
    return stream_push(s, b);
}

int dk_stream_write_buf(dk_stream *s, dk_buf *b)
{
    return stream_push(s, dk_buf_ref(b));
}

void dk_stream_set_limit(dk_stream *s, size_t bytes)
{
    pthread_mutex_lock(&s->lock);
    s->limit = bytes;
    pthread_mutex_unlock(&s->lock);
}

void dk_stream_close(dk_stream *s)
{
    pthread_mutex_lock(&s->lock);
    if (!s->closed && !s->close_requested) {
        s->close_requested = true;
        stream_notify_locked(s);
    }
    pthread_mutex_unlock(&s->lock);
}

bool dk_stream_closed(const dk_stream *s)
{
    dk_stream *m = (dk_stream *)s;
    pthread_mutex_lock(&m->lock);
    bool c = m->closed || m->close_requested;
    pthread_mutex_unlock(&m->lock);
    return c;
}

void dk_stream_on_close(dk_stream *s, void (*fn)(dk_stream *s, void *user), void *user)
{
    s->on_close = fn;
    s->on_close_user = user;
}

void dk_stream_set_long_lived(dk_stream *s, bool yes)
{
    s->long_lived = yes;
}

dk_stream *dk_response_stream(dk_response *res)
{
    if (res->stream != NULL)
        return dk_stream_ref(res->stream);
    dk_stream *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    atomic_init(&s->refs, 2); /* caller + response/server */
    pthread_mutex_init(&s->lock, NULL);
    s->limit = 256 * 1024;
    s->w = tl_worker;
    res->stream = s;
    return s;
}

/* Runs once when the request memory goes away: the stream is over. */
static void stream_ended(dk_stream *s)
{
    pthread_mutex_lock(&s->lock);
    s->closed = true;
    pthread_mutex_unlock(&s->lock);
    s->req = NULL;
    if (s->link.next != NULL) {
        h2o_linklist_unlink(&s->link);
        dk__metrics_stream(-1);
    }
    if (!s->on_close_ran) {
        s->on_close_ran = true;
        if (s->on_close)
            s->on_close(s, s->on_close_user);
    }
}

static void stream_req_dispose(void *p)
{
    dk_stream **slot = p;
    dk_stream *s = *slot;
    if (!s->detached)
        stream_ended(s);
    dk_stream_unref(s);
}

static void stream_release_inflight(dk_stream *s)
{
    for (size_t i = 0; i < s->ninflight; i++)
        dk_buf_unref(s->inflight[i]);
    s->ninflight = 0;
    s->sending = false;
}

/* The detached stream is over (finished, cut off, or the peer left). */
static void detached_end(dk_stream *s)
{
    if (s->sock == NULL)
        return;
    h2o_socket_close(s->sock); /* on_close: the connection count */
    s->sock = NULL;
    stream_ended(s);
    atomic_fetch_sub(&s->w->inflight, 1);
    dk_stream_unref(s); /* the reference the socket held */
}

static void on_detached_written(h2o_socket_t *sock, const char *err)
{
    dk_stream *s = sock->data;
    stream_release_inflight(s);
    if (err != NULL || s->final_sent) {
        detached_end(s);
        return;
    }
    stream_flush(s);
}

static void on_detached_read(h2o_socket_t *sock, const char *err)
{
    dk_stream *s = sock->data;
    if (err != NULL) {
        detached_end(s); /* hang-up */
        return;
    }
    /* Nothing more is expected from an event-stream client: discard. */
    h2o_buffer_consume(&sock->input, sock->input->size);
}

static void conn_count_again(h2o_socket_t *old, h2o_socket_t *sock);

/* The connection's socket, or NULL (HTTP/2 streams share one; some
 * connection types have none). */
static h2o_socket_t *conn_socket(h2o_conn_t *conn)
{
    return conn->callbacks->get_socket != NULL ? conn->callbacks->get_socket(conn) : NULL;
}

/* Moves the stream from h2o's request onto a socket of its own (see the
 * comment on struct dk_stream). HTTP thread, no write in flight. On failure
 * the stream simply stays on the request. */
static void stream_detach(dk_stream *s)
{
    h2o_req_t *req = s->req;
    h2o_socket_t *old = conn_socket(req->conn);
    if (old == NULL || old->ssl != NULL)
        return;
    int fd = fcntl(h2o_socket_get_fd(old), F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return;
    h2o_socket_t *sock = h2o_evloop_socket_create(s->w->loop, fd, 0);
    if (sock == NULL) {
        close(fd);
        return;
    }
    /* The duplicate counts as a connection (of the same client) until closed. */
    conn_count_again(old, sock);
    sock->data = s;
    atomic_fetch_add(&s->w->inflight, 1); /* drained at shutdown like a request */
    dk_stream_ref(s);
    s->sock = sock;
    s->detached = true;
    s->req = NULL;
    /* h2o closes its side (its fd; the duplicate keeps the connection) and
     * disposes the request; stream_req_dispose sees `detached`. Nothing is
     * written: the response carries its own Transfer-Encoding. */
    h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
    h2o_socket_read_start(sock, on_detached_read);
}

static void stream_proceed(h2o_generator_t *g, h2o_req_t *req)
{
    dk_stream *s = (dk_stream *)g;
    stream_release_inflight(s);
    if (s->chunked && !s->detached && !s->final_sent)
        stream_detach(s);
    stream_flush(s);
}

static void stream_stop(h2o_generator_t *g, h2o_req_t *req)
{
    dk_stream *s = (dk_stream *)g;
    pthread_mutex_lock(&s->lock);
    s->closed = true;
    pthread_mutex_unlock(&s->lock);
    s->req = NULL;
    s->final_sent = true;
}

/* A slow reader is cut off while a write to it is still pending (h2o would
 * wait for that write as long as the peer does not read, so the ERROR state
 * could never be sent). Disconnecting the TCP socket (connect with AF_UNSPEC:
 * RST, the fd stays h2o's) makes the pending write fail, and h2o then closes
 * the connection and disposes the request as for any write error. HTTP/1
 * only: an HTTP/2 connection is shared by other streams. */
static void stream_cut(dk_stream *s)
{
    if (s->cut || s->req->version >= 0x200)
        return;
    h2o_socket_t *sock = conn_socket(s->req->conn);
    if (sock == NULL)
        return;
    s->cut = true;
    struct sockaddr sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_family = AF_UNSPEC;
    connect(h2o_socket_get_fd(sock), &sa, sizeof(sa));
}

static void stream_flush(dk_stream *s)
{
    if ((s->req == NULL && s->sock == NULL) || s->final_sent)
        return;
    if (s->sending) {
        pthread_mutex_lock(&s->lock);
        bool cut = s->abort;
        pthread_mutex_unlock(&s->lock);
        if (cut) {
            if (s->sock != NULL)
                detached_end(s); /* drops the pending write with the socket */
            else
                stream_cut(s);
        }
        return;
    }
    /* chunk head, data, chunk tail, last chunk */
    h2o_iovec_t iov[STREAM_MAX_IOV + 3];
    size_t n = 0, bytes = 0;
    bool final = false, abort_now = false;
    h2o_iovec_t *data = s->chunked ? iov + 1 : iov;
    pthread_mutex_lock(&s->lock);
    if (s->abort) {
        abort_now = true;
    } else {
        while (n < s->qn && n < STREAM_MAX_IOV) {
            s->inflight[n] = s->q[n];
            data[n] = h2o_iovec_init(s->q[n]->data, s->q[n]->len);
            bytes += s->q[n]->len;
            n++;
        }
        s->qbytes -= bytes;
        memmove(s->q, s->q + n, (s->qn - n) * sizeof(*s->q));
        s->qn -= n;
        final = s->close_requested && s->qn == 0;
    }
    pthread_mutex_unlock(&s->lock);
    s->ninflight = (uint8_t)n;
    dk__metrics_bytes_out(bytes);
    if (abort_now) {
        s->final_sent = true;
        if (s->sock != NULL)
            detached_end(s);
        else
            h2o_send(s->req, NULL, 0, H2O_SEND_STATE_ERROR);
        return;
    }
    if (n == 0 && !final)
        return;
    size_t cnt = n;
    if (s->chunked) {
        cnt = 0;
        if (bytes > 0) {
            int hl = snprintf(s->chunk_head, sizeof(s->chunk_head), "%zx\r\n", bytes);
            iov[0] = h2o_iovec_init(s->chunk_head, (size_t)hl);
            iov[n + 1] = h2o_iovec_init(H2O_STRLIT("\r\n"));
            cnt = n + 2;
        }
        if (final)
            iov[cnt++] = h2o_iovec_init(H2O_STRLIT("0\r\n\r\n"));
    }
    s->sending = true;
    if (final)
        s->final_sent = true;
    if (s->sock != NULL)
        h2o_socket_write(s->sock, iov, cnt, on_detached_written);
    else
        h2o_send(s->req, iov, cnt, final ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void on_stream_messages(h2o_multithread_receiver_t *rx, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *m =
            H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&m->link);
        dk_stream *s = H2O_STRUCT_FROM_MEMBER(dk_stream, msg, m);
        pthread_mutex_lock(&s->lock);
        s->notified = false;
        pthread_mutex_unlock(&s->lock);
        stream_flush(s);
        dk_stream_unref(s);
    }
}

/* ---- request handling ---- */

static void inflight_dispose(void *p)
{
    worker **w = p;
    atomic_fetch_sub(&(*w)->inflight, 1);
}

static void copy_headers(h2o_req_t *hreq, dk_request *req)
{
    size_t n = hreq->headers.size;
    req->headers = dk__arena_alloc(req->arena, (n + 1) * sizeof(dk__header));
    if (req->headers == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        h2o_header_t *h = &hreq->headers.entries[i];
        dk__header *d = &req->headers[req->nheaders];
        /* h2o stores header names lower-cased. */
        d->name = dk__arena_strndup(req->arena, h->name->base, h->name->len);
        d->value = dk__arena_strndup(req->arena, h->value.base, h->value.len);
        if (d->name && d->value)
            req->nheaders++;
    }
    /* h2o keeps Host (HTTP/1) and :authority (HTTP/2) out of the header
     * list; middleware such as originCheck compares against it. */
    if (hreq->input.authority.len > 0 && dk_request_header(req, "host") == NULL) {
        dk__header *d = &req->headers[req->nheaders];
        d->name = "host";
        d->value = dk__arena_strndup(req->arena, hreq->input.authority.base,
                                     hreq->input.authority.len);
        if (d->value != NULL)
            req->nheaders++;
    }
}

/* Header lookup for dk_client_ip_resolve(): X-Forwarded-For is every line
 * of it joined with "," (a proxy may add a line of its own instead of
 * appending, and the walk must start at the last one); another header counts
 * only when it appears exactly once. */
static const char *fwd_lookup(void *u, const char *name)
{
    dk_request *req = u;
    bool xff = strcasecmp(name, "x-forwarded-for") == 0;
    const char *found = NULL;
    for (size_t i = 0; i < req->nheaders; i++) {
        if (strcasecmp(req->headers[i].name, name) != 0)
            continue;
        if (found == NULL) {
            found = req->headers[i].value;
        } else if (!xff) {
            return NULL;
        } else {
            size_t a = strlen(found), b = strlen(req->headers[i].value);
            char *j = dk__arena_alloc(req->arena, a + b + 2);
            if (j == NULL)
                return NULL;
            memcpy(j, found, a);
            j[a] = ',';
            memcpy(j + a + 1, req->headers[i].value, b + 1);
            found = j;
        }
    }
    return found;
}

/* The peer is a trusted proxy and its X-Forwarded-Proto (the last entry:
 * the scheme the nearest proxy saw) is https. */
static bool forwarded_https(const dk_app *app, const char *peer, dk_request *req)
{
    bool trusted = false;
    for (char **c = app->trusted; *c != NULL && !trusted; c++)
        trusted = dk_cidr_match(*c, peer) == 1;
    const char *v = trusted ? fwd_lookup(req, "x-forwarded-proto") : NULL;
    if (v == NULL)
        return false;
    const char *last = strrchr(v, ',');
    last = last ? last + 1 : v;
    while (*last == ' ' || *last == '\t')
        last++;
    size_t n = strcspn(last, " \t");
    return n == 5 && strncasecmp(last, "https", 5) == 0 && last[n + strspn(last + n, " \t")] == '\0';
}

/* Dotted quad without inet_ntop (which costs ~1,700 instructions per request,
 * ~5 % of a typed echo). `out` has room for 16 bytes. */
static void format_ipv4(const struct in_addr *a, char *out)
{
    const unsigned char *b = (const unsigned char *)&a->s_addr;
    char *p = out;
    for (int i = 0; i < 4; i++) {
        unsigned v = b[i];
        if (v >= 100)
            *p++ = (char)('0' + v / 100);
        if (v >= 10)
            *p++ = (char)('0' + v / 10 % 10);
        *p++ = (char)('0' + v % 10);
        *p++ = i < 3 ? '.' : '\0';
    }
}

static void peer_ip(dk_app *app, h2o_req_t *hreq, dk_request *req, dk_ctx *ctx)
{
    struct sockaddr_storage ss;
    socklen_t sl = hreq->conn->callbacks->get_peername(hreq->conn, (struct sockaddr *)&ss);
    char buf[INET6_ADDRSTRLEN] = "unknown";
    if (sl > 0) {
        if (ss.ss_family == AF_INET)
            format_ipv4(&((struct sockaddr_in *)&ss)->sin_addr, buf);
        else if (ss.ss_family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, buf, sizeof(buf));
    }
    req->peer_ip = dk__arena_strndup(req->arena, buf, strlen(buf));
    ctx->ip = req->peer_ip;
    ctx->secure = app->server->ssl != NULL; /* a TLS listener takes only TLS */
    if (app->trusted == NULL || app->trusted[0] == NULL)
        return;
    if (!ctx->secure)
        ctx->secure = forwarded_https(app, buf, req);
    char out[256];
    if (dk_client_ip_resolve(buf, (const char *const *)app->trusted, app->ip_header, fwd_lookup,
                             req, out, sizeof(out)) == 0 &&
        strcmp(out, buf) != 0)
        ctx->ip = dk__arena_strndup(req->arena, out, strlen(out));
}

/* Connection-specific headers are forbidden in HTTP/2 responses. */
static bool is_connection_header(const char *name, size_t len)
{
    static const char *const banned[] = {"connection", "keep-alive", "proxy-connection",
                                         "transfer-encoding", "upgrade"};
    for (size_t i = 0; i < sizeof(banned) / sizeof(banned[0]); i++)
        if (strlen(banned[i]) == len && memcmp(banned[i], name, len) == 0)
            return true;
    return false;
}

/* Returns the body bytes sent (0 for a stream). */
static size_t send_response(h2o_req_t *hreq, dk_response *res, dk_stream **stream_out)
{
    hreq->res.status = res->status;
    hreq->res.reason = dk_http_reason(res->status);
    for (size_t i = 0; i < res->nheaders; i++) {
        const dk__header *h = &res->headers[i];
        size_t nl = strlen(h->name), vl = strlen(h->value);
        h2o_iovec_t v = h2o_strdup(&hreq->pool, h->value, vl);
        if (strcasecmp(h->name, "content-type") == 0) {
            h2o_add_header(&hreq->pool, &hreq->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, v.base,
                           v.len);
        } else {
            /* Lower case: required by HTTP/2, harmless for HTTP/1. */
            h2o_iovec_t n = h2o_strdup(&hreq->pool, h->name, nl);
            for (size_t k = 0; k < n.len; k++)
                n.base[k] = (char)tolower((unsigned char)n.base[k]);
            if (hreq->version >= 0x200 && is_connection_header(n.base, n.len))
                continue;
            h2o_add_header_by_str(&hreq->pool, &hreq->res.headers, n.base, n.len, 1, NULL, v.base,
                                  v.len);
        }
    }
    if (res->stream != NULL) {
        dk_stream *s = res->stream;
        res->stream = NULL; /* the server keeps the response's reference */
        h2o_socket_t *sock = conn_socket(hreq->conn);
        if (s->long_lived && hreq->version == 0x101 && sock != NULL && sock->ssl == NULL &&
            hreq->res.status == 200 &&
            !(hreq->method.len == 4 && memcmp(hreq->method.base, "HEAD", 4) == 0) &&
            h2o_find_header(&hreq->res.headers, H2O_TOKEN_TRANSFER_ENCODING, -1) == -1) {
            s->chunked = true;
            h2o_add_header(&hreq->pool, &hreq->res.headers, H2O_TOKEN_TRANSFER_ENCODING, NULL,
                           H2O_STRLIT("chunked"));
        }
        s->gen.proceed = stream_proceed;
        s->gen.stop = stream_stop;
        s->req = hreq;
        if (s->w != tl_worker) {
            /* Created on another thread: other threads read s->w under the lock. */
            pthread_mutex_lock(&s->lock);
            s->w = tl_worker;
            pthread_mutex_unlock(&s->lock);
        }
        dk_stream **slot = h2o_mem_alloc_shared(&hreq->pool, sizeof(*slot), stream_req_dispose);
        *slot = s;
        h2o_linklist_insert(&s->w->streams, &s->link);
        dk__metrics_stream(1);
        h2o_start_response(hreq, &s->gen);
        pthread_mutex_lock(&s->lock);
        s->started = true;
        pthread_mutex_unlock(&s->lock);
        *stream_out = s;
        return 0;
    }
    size_t len;
    const char *body = dk_response_body(res, &len);
    /* A known length keeps HTTP/1.1 connections persistent (h2o's chunked
     * encoder closes non-200 responses) and avoids chunk framing. */
    hreq->res.content_length = len;
    if (hreq->method.len == 4 && memcmp(hreq->method.base, "HEAD", 4) == 0)
        len = 0;
    h2o_send_inline(hreq, body, len);
    return len;
}

static bool over_header_limits(const dk_app *app, const h2o_req_t *hreq)
{
    const dk_app_options *o = &app->opts;
    if (o->max_headers > 0 && hreq->headers.size > (size_t)o->max_headers)
        return true;
    if (o->max_header_bytes == 0)
        return false;
    /* Request line plus "name: value\r\n" for each header. */
    size_t n = hreq->method.len + hreq->path.len + 12;
    for (size_t i = 0; i < hreq->headers.size; i++)
        n += hreq->headers.entries[i].name->len + hreq->headers.entries[i].value.len + 4;
    return n > o->max_header_bytes;
}

/* ---- requests on fibers ----
 *
 * Each request runs its middleware and handler on a fiber (src/base/fiber.h)
 * of the HTTP thread that received it. When the handler makes a call that
 * waits (exec.h), the fiber is suspended and on_req returns to h2o; the
 * thread goes on serving other connections. When the work is done, a pool
 * thread posts the task to wake_rx and the fiber resumes here, on the same
 * thread. Only that thread ever touches the task, the request's arena and
 * h2o's request. */
struct task {
    dk__waiter waiter; /* first: exec.h hands it back */
    worker *w;
    h2o_req_t *hreq;   /* NULL once h2o disposed the request (HTTP/2 reset) */
    task **slot;       /* in hreq's pool, pointing back here */
    dk__fiber *fiber;
    h2o_multithread_message_t msg;
    task *next_free;
    dk__exchange x;    /* the request's context, request and response */
};

/* Tasks and their fibers are kept for reuse (a warm stack, no mmap). */
#define TASK_CACHE_MAX 64

static void task_wake(dk__waiter *wt)
{
    task *t = (task *)wt;
    h2o_multithread_send_message(&t->w->wake_rx, &t->msg);
}

static task *task_get(worker *w)
{
    task *t = w->free_tasks;
    if (t != NULL) {
        w->free_tasks = t->next_free;
        w->nfree_tasks--;
    } else {
        t = malloc(sizeof(*t));
        if (t == NULL)
            return NULL;
        t->fiber = dk__fiber_new(0);
        if (t->fiber == NULL) {
            free(t);
            return NULL;
        }
    }
    dk__fiber *f = t->fiber;
    /* The exchange (the last member, most of the task) is cleared by
     * dk__exchange_init in on_req. */
    memset(t, 0, offsetof(task, x));
    t->fiber = f;
    t->w = w;
    dk_app *app = w->srv->app;
    t->waiter.wake = task_wake;
    t->waiter.pools[DK__POOL_IO] = app->exec_io;
    t->waiter.pools[DK__POOL_WORK] = app->exec_work;
    t->waiter.trace = &t->x.ctx.trace;
    return t;
}

static void task_put(worker *w, task *t)
{
    if (w->nfree_tasks >= TASK_CACHE_MAX) {
        dk__fiber_free(t->fiber);
        free(t);
        return;
    }
    t->next_free = w->free_tasks;
    w->free_tasks = t;
    w->nfree_tasks++;
}

static void task_req_dispose(void *p)
{
    task **slot = p;
    if (*slot != NULL) {
        (*slot)->hreq = NULL;
        (*slot)->slot = NULL;
    }
}

/* A stream the handler created for a request that is gone: over at once. */
static void stream_abandon(dk_stream *s)
{
    pthread_mutex_lock(&s->lock);
    s->closed = true;
    pthread_mutex_unlock(&s->lock);
    if (!s->on_close_ran) {
        s->on_close_ran = true;
        if (s->on_close)
            s->on_close(s, s->on_close_user);
    }
    dk_stream_unref(s);
}

/* --hsts: Strict-Transport-Security on answers to HTTPS clients, unless the
 * handler set its own. */
static void add_hsts(dk__server *srv, dk_ctx *ctx, dk_response *res)
{
    if (srv->hsts[0] != '\0' && ctx->secure &&
        dk_response_header(res, "Strict-Transport-Security") == NULL)
        dk_response_set_header(res, "Strict-Transport-Security", srv->hsts);
}

/* The handler is done (or was never run): answer and recycle the task. */
static void task_finish(task *t)
{
    worker *w = t->w;
    h2o_req_t *hreq = t->hreq;
    if (t->slot != NULL)
        *t->slot = NULL; /* h2o may dispose the request from here on */
    dk_stream *stream = NULL;
    if (hreq != NULL) {
        add_hsts(w->srv, &t->x.ctx, &t->x.res);
        size_t out = send_response(hreq, &t->x.res, &stream);
        dk__metrics_request_end(&t->x.ctx, t->x.req.body_len, out);
        dk__access_log(&t->x.ctx);
    } else if (t->x.res.stream != NULL) {
        stream_abandon(t->x.res.stream);
        t->x.res.stream = NULL;
    }
    dk__exchange_finish(&t->x);
    if (stream != NULL)
        stream_flush(stream);
    atomic_fetch_sub(&w->srv->tasks, 1);
    task_put(w, t);
}

static void task_main(void *arg)
{
    task *t = arg;
    dk_app *app = t->w->srv->app;
    app->wire.dispatch(app, &t->x.ctx, &t->x.req, &t->x.res);
}

/* Runs (or continues) the task's fiber; answers when the handler is done. */
static void task_run(task *t, bool start)
{
    dk__waiter_enter(&t->waiter);
    dk__trace_enter(&t->x.ctx.trace);
    bool done = start ? dk__fiber_start(t->fiber, task_main, t) : dk__fiber_resume(t->fiber);
    dk__trace_enter(NULL);
    dk__waiter_enter(NULL);
    if (done)
        task_finish(t);
}

static void on_wake(h2o_multithread_receiver_t *rx, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *m =
            H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&m->link);
        task_run(H2O_STRUCT_FROM_MEMBER(task, msg, m), false);
    }
}

/* picohttpparser, h2o's HTTP/1 parser, is linked into libh2o but its header
 * is not installed; these are its declarations (picohttpparser.h). */
struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len,
                      const char **path, size_t *path_len, int *minor_version,
                      struct phr_header *headers, size_t *num_headers, size_t last_len);

static bool hdr_is(const struct phr_header *h, const char *name)
{
    return h->name_len == strlen(name) && strncasecmp(h->name, name, h->name_len) == 0;
}

static bool all_digits(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* Message framing checks of RFC 9112 that h2o 2.2 does not make (it keeps
 * only the last Host, the first Content-Length, the last Transfer-Encoding,
 * and lets Transfer-Encoding override Content-Length). h2o hands over neither
 * of these headers, so the request head, still at the start of the
 * connection's input buffer while the request is processed, is parsed again
 * with h2o's own parser to see every line. Returns a message for a 400, or
 * NULL. HTTP/1 only. */
/* A quick look at the head in `p` (len bytes): true when it has no
 * Transfer-Encoding, at most one Content-Length and exactly one Host (at most
 * one on HTTP/1.0). Nearly every request looks like that and then needs no
 * full re-parse (~900 instructions); anything else, or a head this cannot
 * read to its end, goes to the full check. Header names cannot have white
 * space before the colon (h2o's parser refuses them), so a line's first
 * bytes name its field. */
/* Whether `line` starts with `lit` (lower case letters, '-' and ':'),
 * ignoring the case of letters; the caller made sure it has the bytes. */
static inline bool starts_nocase(const char *line, const char *lit, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((line[i] | 0x20) != lit[i])
            return false;
    return true;
}

static bool framing_plain(const char *p, size_t len, bool http11)
{
    const char *end = p + len;
    const char *nl = memchr(p, '\n', len); /* end of the request line */
    int hosts = 0, cls = 0;
    while (nl != NULL) {
        const char *line = nl + 1;
        size_t left = (size_t)(end - line);
        if (left == 0)
            return false;
        if (*line == '\r' || *line == '\n')
            return cls <= 1 && (http11 ? hosts == 1 : hosts <= 1); /* end of the head */
        switch (*line | 0x20) {
        case 'h':
            hosts += left >= 5 && starts_nocase(line, "host:", 5);
            break;
        case 'c':
            cls += left >= 15 && starts_nocase(line, "content-length:", 15);
            break;
        case 't':
            if (left >= 17 && starts_nocase(line, "transfer-encoding", 17))
                return false;
            break;
        }
        nl = memchr(line, '\n', left);
    }
    return false;
}

static const char *framing_error(h2o_req_t *hreq)
{
    h2o_socket_t *sock = conn_socket(hreq->conn);
    if (hreq->version >= 0x200 || sock == NULL || sock->input == NULL)
        return NULL;
    if (framing_plain(sock->input->bytes, sock->input->size, hreq->version >= 0x101))
        return NULL;
    const char *method, *path;
    size_t mlen, plen, nh = H2O_MAX_HEADERS;
    int minor;
    struct phr_header h[H2O_MAX_HEADERS];
    int rc = phr_parse_request(sock->input->bytes, sock->input->size, &method, &mlen, &path, &plen,
                               &minor, h, &nh, 0);
    if (rc <= 0 || mlen != hreq->method.len || memcmp(method, hreq->method.base, mlen) != 0)
        return NULL; /* not the head of this request: nothing to check against */
    int hosts = 0, cls = 0, tes = 0;
    const struct phr_header *cl = NULL;
    for (size_t i = 0; i < nh; i++) {
        if (h[i].name == NULL) /* obs-fold continuation line */
            continue;
        if (hdr_is(&h[i], "host")) {
            hosts++;
        } else if (hdr_is(&h[i], "content-length")) {
            /* Identical repeated values are accepted (RFC 9110 8.6 allows it). */
            if (!all_digits(h[i].value, h[i].value_len))
                return "Invalid Content-Length";
            if (cl != NULL && (cl->value_len != h[i].value_len ||
                               memcmp(cl->value, h[i].value, h[i].value_len) != 0))
                return "Conflicting Content-Length headers";
            cl = &h[i];
            cls++;
        } else if (hdr_is(&h[i], "transfer-encoding")) {
            if (++tes > 1 || h[i].value_len != 7 || strncasecmp(h[i].value, "chunked", 7) != 0)
                return "Unsupported Transfer-Encoding (only a single 'chunked' is accepted)";
        }
    }
    if (tes > 0 && cls > 0)
        return "Both Content-Length and Transfer-Encoding";
    if (tes > 0 && minor == 0)
        return "Transfer-Encoding in an HTTP/1.0 request";
    if (minor >= 1 ? hosts != 1 : hosts > 1)
        return "An HTTP/1.1 request needs exactly one Host header";
    return NULL;
}

static int on_req(h2o_handler_t *self, h2o_req_t *hreq)
{
    worker *w = tl_worker;
    dk__server *srv = w->srv;
    dk_app *app = srv->app;
    worker **slot = h2o_mem_alloc_shared(&hreq->pool, sizeof(*slot), inflight_dispose);
    *slot = w;
    atomic_fetch_add(&w->inflight, 1);

    task *t = task_get(w);
    if (t == NULL) {
        h2o_send_error_503(hreq, "Service Unavailable", "out of memory", 0);
        return 0;
    }
    int alive = atomic_fetch_add(&srv->tasks, 1);
    t->hreq = hreq;
    dk__exchange_init(&t->x);
    dk_ctx *ctx = &t->x.ctx;
    dk_request *req = &t->x.req;
    dk_response *res = &t->x.res;

    req->method = dk__arena_strndup(&ctx->arena, hreq->method.base, hreq->method.len);
    size_t plen = hreq->query_at != SIZE_MAX ? hreq->query_at : hreq->path.len;
    req->path = dk__arena_strndup(&ctx->arena, hreq->path.base, plen);
    req->query = hreq->query_at != SIZE_MAX
                     ? dk__arena_strndup(&ctx->arena, hreq->path.base + hreq->query_at + 1,
                                         hreq->path.len - hreq->query_at - 1)
                     : "";
    req->body = hreq->entity.base;
    req->body_len = hreq->entity.base ? hreq->entity.len : 0;
    if (req->body != NULL && hreq->version >= 0x200) {
        /* An HTTP/2 stream can be reset while its handler waits, and h2o then
         * frees the request; HTTP/1 keeps it until the response is sent. */
        req->body = dk__arena_strndup(&ctx->arena, req->body, req->body_len);
        if (req->body == NULL)
            req->body_len = 0;
    }
    if (req->method == NULL || req->path == NULL || req->query == NULL) {
        dk__exchange_finish(&t->x);
        atomic_fetch_sub(&srv->tasks, 1);
        task_put(w, t);
        h2o_send_error_503(hreq, "Service Unavailable", "out of memory", 0);
        return 0;
    }
    copy_headers(hreq, req);
    dk__exchange_begin(&t->x, app);
    peer_ip(app, hreq, req, ctx);
    t->slot = h2o_mem_alloc_shared(&hreq->pool, sizeof(*t->slot), task_req_dispose);
    *t->slot = t;

    const char *framing = framing_error(hreq);
    if (framing != NULL) {
        /* The framing is ambiguous: what follows on this connection cannot
         * be trusted to start a request, so it is answered and closed. */
        dk_fail(ctx, 400, "%s", framing);
        dk__render_failure(ctx, res, DK_EHTTP);
        hreq->http1_is_persistent = 0;
    } else if (over_header_limits(app, hreq)) {
        /* h2o itself refuses more than 100 headers or ~400 KiB of head (400);
         * below that donkey applies max_headers / max_header_bytes. */
        dk_fail_error(ctx, dk_error_new(431, "REQUEST_HEADER_FIELDS_TOO_LARGE",
                                        "Request header fields too large", NULL));
        dk__render_failure(ctx, res, DK_EHTTP);
        hreq->http1_is_persistent = 0;
    } else if (atomic_load(&w->stop_accepting) && !app->wire.probe(app, ctx, req, res)) {
        dk_fail(ctx, 503, "Server is shutting down");
        dk__render_failure(ctx, res, DK_EHTTP);
        dk_response_set_header(res, "Connection", "close");
    } else if (app->opts.max_waiting > 0 && alive >= app->opts.max_waiting) {
        /* Too many handlers in flight: refuse rather than grow memory. */
        dk_fail(ctx, 503, "Too many requests in progress, retry shortly");
        dk__render_failure(ctx, res, DK_EHTTP);
        dk_response_set_header(res, "Retry-After", "1");
    } else {
        task_run(t, true);
        return 0;
    }
    task_finish(t);
    return 0;
}

/* ---- workers ---- */

/* ---- connection accounting and accepting ----
 *
 * Every accepted connection is counted in srv->conns (max_connections) and,
 * when max_connections_per_ip is set, under its client address in a small
 * table shared by all loops. The socket's on_close hook gives both back. */

static void on_conn_close(void *data)
{
    atomic_fetch_sub(&((dk__server *)data)->conns, 1);
}

static unsigned ip_hash(const unsigned char a[16])
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < 16; i++)
        h = (h ^ a[i]) * 16777619u;
    return h & (IP_BUCKETS - 1);
}

/* The client address of a connection as 16 bytes (IPv4 mapped; zeros if unknown). */
static void peer_key(int fd, unsigned char out[16])
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    memset(out, 0, 16);
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
        return;
    if (ss.ss_family == AF_INET) {
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &((struct sockaddr_in *)&ss)->sin_addr, 4);
    } else if (ss.ss_family == AF_INET6) {
        memcpy(out, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
    }
}

/* One more connection from `key`; NULL when that address is at `max` already
 * (or out of memory). */
static ip_count *ip_acquire(dk__server *srv, const unsigned char key[16], int max)
{
    unsigned b = ip_hash(key);
    pthread_mutex_lock(&srv->ip_lock);
    ip_count *c = srv->ip_table[b];
    while (c != NULL && memcmp(c->addr, key, 16) != 0)
        c = c->next;
    if (c == NULL) {
        c = calloc(1, sizeof(*c));
        if (c != NULL) {
            c->srv = srv;
            memcpy(c->addr, key, 16);
            c->next = srv->ip_table[b];
            srv->ip_table[b] = c;
        }
    } else if (c->n >= max) {
        c = NULL;
    }
    if (c != NULL)
        c->n++;
    pthread_mutex_unlock(&srv->ip_lock);
    return c;
}

static void on_conn_close_ip(void *data)
{
    ip_count *c = data;
    dk__server *srv = c->srv;
    pthread_mutex_lock(&srv->ip_lock);
    if (--c->n == 0) {
        ip_count **p = &srv->ip_table[ip_hash(c->addr)];
        while (*p != c)
            p = &(*p)->next;
        *p = c->next;
        free(c);
    }
    pthread_mutex_unlock(&srv->ip_lock);
    atomic_fetch_sub(&srv->conns, 1);
}

/* `sock` carries on the connection of `old` (a detached stream). */
static void conn_count_again(h2o_socket_t *old, h2o_socket_t *sock)
{
    dk__server *srv = tl_worker->srv;
    atomic_fetch_add(&srv->conns, 1);
    if (old->on_close.cb == on_conn_close_ip) {
        ip_count *c = old->on_close.data;
        pthread_mutex_lock(&srv->ip_lock);
        c->n++;
        pthread_mutex_unlock(&srv->ip_lock);
        sock->on_close = old->on_close;
    } else {
        sock->on_close.cb = on_conn_close;
        sock->on_close.data = srv;
    }
}

/* The answer to a connection over a limit: a plain 503 (cleartext only; a
 * TLS client just sees the close). The caller closes the descriptor. */
static void refuse_conn(dk__server *srv, int fd)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"
                               "Content-Type: text/plain\r\nContent-Length: 20\r\n\r\n"
                               "too many connections";
    if (srv->ssl == NULL && send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT))
        shutdown(fd, SHUT_WR);
}

static void on_accept(h2o_socket_t *listener, const char *err);

static void resume_accept(h2o_timeout_entry_t *entry)
{
    worker *w = H2O_STRUCT_FROM_MEMBER(worker, accept_pause_entry, entry);
    dk__server *srv = w->srv;
    if (atomic_load(&srv->reserve_fd) < 0) {
        int r = open("/dev/null", O_RDONLY | O_CLOEXEC);
        int expected = -1;
        if (r >= 0 && !atomic_compare_exchange_strong(&srv->reserve_fd, &expected, r))
            close(r);
    }
    if (w->listener != NULL && !atomic_load(&w->stop_accepting))
        h2o_socket_read_start(w->listener, on_accept);
}

/* accept4 failed with EMFILE/ENFILE: the listener stays readable, and
 * polling it again at once would spin. Each waiting client is refused with
 * the reserve descriptor (closed, the client accepted and refused, reserve
 * opened again), then the listener is left alone for 100 ms. */
static void out_of_descriptors(worker *w)
{
    dk__server *srv = w->srv;
    for (int i = 0; i < 64; i++) {
        int r = atomic_exchange(&srv->reserve_fd, -1);
        if (r < 0)
            break; /* another loop holds it; resume_accept opens a new one */
        close(r);
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            refuse_conn(srv, fd);
            close(fd);
        }
        int again = open("/dev/null", O_RDONLY | O_CLOEXEC);
        int expected = -1;
        if (again >= 0 && !atomic_compare_exchange_strong(&srv->reserve_fd, &expected, again))
            close(again);
        if (fd < 0)
            break; /* backlog empty, or still no descriptor */
    }
    h2o_socket_read_stop(w->listener);
    if (!h2o_timeout_is_linked(&w->accept_pause_entry))
        h2o_timeout_link(w->loop, &w->accept_pause, &w->accept_pause_entry);
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    worker *w = listener->data;
    dk__server *srv = w->srv;
    if (err != NULL)
        return;
    int max = srv->app->opts.max_connections;
    int per_ip = srv->app->opts.max_connections_per_ip;
    for (int i = 0; i < 16; i++) {
        errno = 0;
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL) {
            if (errno == EMFILE || errno == ENFILE)
                out_of_descriptors(w);
            return;
        }
        int fd = h2o_socket_get_fd(sock);
        ip_count *c = NULL;
        if (max > 0 && atomic_load(&srv->conns) >= max) {
            refuse_conn(srv, fd);
            h2o_socket_close(sock);
            continue;
        }
        if (per_ip > 0) {
            unsigned char key[16];
            peer_key(fd, key);
            if ((c = ip_acquire(srv, key, per_ip)) == NULL) {
                refuse_conn(srv, fd);
                h2o_socket_close(sock);
                continue;
            }
        }
        atomic_fetch_add(&srv->conns, 1);
        sock->on_close.cb = c != NULL ? on_conn_close_ip : on_conn_close;
        sock->on_close.data = c != NULL ? (void *)c : (void *)srv;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        h2o_accept(&w->accept_ctx, sock);
    }
}

static void on_control(h2o_multithread_receiver_t *rx, h2o_linklist_t *messages)
{
    worker *w = H2O_STRUCT_FROM_MEMBER(worker, control_rx, rx);
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *m =
            H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&m->link);
        free(m);
    }
    if (atomic_load(&w->stop_accepting) && w->listener != NULL) {
        h2o_socket_read_stop(w->listener);
        h2o_socket_close(w->listener);
        w->listener = NULL;
        h2o_context_request_shutdown(&w->ctx);
    }
    if (atomic_load(&w->close_streams)) {
        h2o_linklist_t *node = w->streams.next;
        while (node != &w->streams) {
            dk_stream *s = H2O_STRUCT_FROM_MEMBER(dk_stream, link, node);
            node = node->next;
            dk_stream_close(s);
            stream_flush(s);
        }
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    tl_worker = w;
    char name[16];
    snprintf(name, sizeof(name), "dk-http-%d", w->index);
    dk__thread_name(name);
    /* Shutdown signals go to the main thread; faults (SIGSEGV, SIGBUS, ...)
     * stay deliverable so sanitizers and debuggers can report them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGPIPE);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    /* Everything h2o allocates for this loop is created on this thread: h2o
     * 2.2 keeps socket-buffer allocators in thread-local storage, and a
     * socket created on another thread would keep using that thread's
     * (unlocked) allocator from here, racing with the other loops. */
    dk__server *srv = w->srv;
    dk__metrics_thread(srv->app, w->index);
    w->loop = h2o_evloop_create();
    h2o_context_init(&w->ctx, w->loop, &srv->config);
    w->accept_ctx.ctx = &w->ctx;
    w->accept_ctx.hosts = srv->config.hosts;
    w->accept_ctx.ssl_ctx = srv->ssl;
    h2o_linklist_init_anchor(&w->streams);
    h2o_timeout_init(w->loop, &w->accept_pause, 100);
    w->accept_pause_entry.cb = resume_accept;
    w->queue = h2o_multithread_create_queue(w->loop);
    h2o_multithread_register_receiver(w->queue, &w->stream_rx, on_stream_messages);
    h2o_multithread_register_receiver(w->queue, &w->control_rx, on_control);
    h2o_multithread_register_receiver(w->queue, &w->wake_rx, on_wake);
    w->listener = h2o_evloop_socket_create(w->loop, w->fd, H2O_SOCKET_FLAG_DONT_READ);
    w->listener->data = w;
    h2o_socket_read_start(w->listener, on_accept);
    pthread_mutex_lock(&srv->ready_lock);
    srv->nready++;
    pthread_cond_broadcast(&srv->ready_cond);
    pthread_mutex_unlock(&srv->ready_lock);

    while (!atomic_load(&w->exit))
        h2o_evloop_run(w->loop, 50);
    atomic_store(&w->exited, true);
    return NULL;
}

/* Binds and listens on host:port. The first listener (`first`) binds without
 * SO_REUSEPORT, so the bind fails with EADDRINUSE while any other socket (of
 * this or another process, with or without SO_REUSEPORT) holds the port; only
 * then is SO_REUSEPORT turned on, before listen(), so that the listeners of the
 * other HTTP threads (bound afterwards with SO_REUSEPORT) join its group. Linux
 * checks the flags of the sockets already bound at each bind, so a second
 * server started later fails on its own first bind. */
static int bind_listener(const char *host, int port, bool first, dk_err *err, int *out_port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t sl;
    int family;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        family = AF_INET;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        sl = sizeof(*sin);
    } else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        family = AF_INET6;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        sl = sizeof(*sin6);
    } else {
        return dk_err_set(err, DK_EINVAL, "bad listen address '%s' (use an IP address)", host);
    }
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return dk_err_set(err, DK_EIO, "socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (!first)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0) {
        int e = errno;
        close(fd);
        const char *lb = family == AF_INET6 ? "[" : "", *rb = family == AF_INET6 ? "]" : "";
        if (e == EADDRINUSE)
            return dk_err_set(err, DK_EIO, "cannot listen on %s%s%s:%d: address already in use",
                              lb, host, rb, port);
        return dk_err_set(err, DK_EIO, "cannot listen on %s%s%s:%d: %s", lb, host, rb, port,
                          strerror(e));
    }
    if (first && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
        int e = errno;
        close(fd);
        return dk_err_set(err, DK_EIO, "SO_REUSEPORT: %s", strerror(e));
    }
    if (listen(fd, 4096) != 0) {
        int e = errno;
        close(fd);
        return dk_err_set(err, DK_EIO, "listen: %s", strerror(e));
    }
    if (out_port) {
        getsockname(fd, (struct sockaddr *)&ss, &sl);
        *out_port = ntohs(family == AF_INET ? sin->sin_port : sin6->sin6_port);
    }
    return fd;
}

static int setup_tls(dk__server *srv, dk_err *err)
{
    const dk_app *app = srv->app;
    if (app->tls_cert == NULL || app->tls_key == NULL)
        return 0;
    SSL_load_error_strings();
    SSL_library_init();
    srv->ssl = SSL_CTX_new(SSLv23_server_method());
    if (srv->ssl == NULL)
        return dk_err_set(err, DK_EINVAL, "TLS: cannot create context");
    SSL_CTX_set_options(srv->ssl, SSL_OP_NO_SSLv2 | SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 |
                                      SSL_OP_NO_TLSv1_1);
    if (SSL_CTX_use_certificate_chain_file(srv->ssl, app->tls_cert) != 1)
        return dk_err_set(err, DK_EINVAL, "TLS: cannot load certificate '%s'", app->tls_cert);
    if (SSL_CTX_use_PrivateKey_file(srv->ssl, app->tls_key, SSL_FILETYPE_PEM) != 1)
        return dk_err_set(err, DK_EINVAL, "TLS: cannot load key '%s'", app->tls_key);
    if (app->opts.http2)
        h2o_ssl_register_alpn_protocols(srv->ssl, h2o_http2_alpn_protocols);
    return 0;
}

/* ---- h2o's own error answers ----
 *
 * h2o refuses some requests itself, before on_req: a Content-Length that is
 * not a number, a Transfer-Encoding other than chunked, a broken chunked
 * body, a body over max_body, an unknown Expect, a malformed head. Those
 * answers (text/plain from h2o_send_error_generic) go through the host's
 * fallback path, where this filter turns the text into donkey's JSON error
 * body: {"error": CODE, "message": h2o's text}. */
static void h2o_error_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *in, size_t n,
                           h2o_send_state_t state)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += in[i].len;
    char *text = h2o_mem_alloc_pool(&req->pool, len + 1);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(text + at, in[i].base, in[i].len);
        at += in[i].len;
    }
    text[len] = '\0';
    const char *code = req->res.status == 413   ? "PAYLOAD_TOO_LARGE"
                       : req->res.status == 417 ? "EXPECTATION_FAILED"
                       : dk_http_code(req->res.status) ? dk_http_code(req->res.status)
                                                         : "BAD_REQUEST";
    json_t *body = json_pack("{s:s,s:s}", "error", code, "message", text);
    char *json = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (json == NULL || n == 0) { /* HEAD, or out of memory: h2o's text */
        free(json);
        h2o_ostream_send_next(self, req, in, n, state);
        return;
    }
    h2o_iovec_t out = h2o_strdup(&req->pool, json, strlen(json));
    free(json);
    req->res.content_length = out.len; /* the head is written with the first bytes */
    h2o_ostream_send_next(self, req, &out, 1, state);
}

static void h2o_error_setup(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    ssize_t ct = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (req->res.status >= 400 && ct != -1 && req->res.content_length != SIZE_MAX) {
        req->res.headers.entries[ct].value = h2o_iovec_init(H2O_STRLIT("application/json"));
        h2o_ostream_t *os = h2o_add_ostream(req, sizeof(*os), slot);
        os->do_send = h2o_error_send;
        slot = &os->next;
    }
    h2o_setup_next_ostream(req, slot);
}

/* max_connections 0: min(10000, the descriptor limit less a margin for the
 * descriptors that are not connections: loops, listeners, database, files). */
static void default_max_connections(dk_app *app)
{
    if (app->opts.max_connections > 0)
        return;
    struct rlimit rl;
    long lim = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        lim = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1000000 ? 1000000 : (long)rl.rlim_cur;
    int threads = app->opts.threads > 0 ? app->opts.threads : 1;
    long margin = 32 + 4L * threads + 3L * (app->opts.db_pool > 0 ? app->opts.db_pool : 1);
    if (margin > lim / 4)
        margin = lim / 4;
    long max = lim - margin;
    if (max > 10000)
        max = 10000;
    if (max < 1)
        max = 1;
    app->opts.max_connections = (int)max;
    char line[128];
    snprintf(line, sizeof(line), "max_connections %ld (descriptor limit %ld)", max, lim);
    dk_log(app->core.logger, max < 1000 ? DK_LOG_WARN : DK_LOG_DEBUG, line, NULL);
}

int dk__server_start(dk_app *app, dk_err *err)
{
    dk__server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL)
        return dk_err_set(err, DK_ENOMEM, "out of memory");
    srv->app = app;
    app->server = srv;
    pthread_mutex_init(&srv->ready_lock, NULL);
    pthread_cond_init(&srv->ready_cond, NULL);
    pthread_mutex_init(&srv->ip_lock, NULL);
    atomic_init(&srv->reserve_fd, open("/dev/null", O_RDONLY | O_CLOEXEC));
    default_max_connections(app);
    if (app->opts.hsts_seconds > 0)
        snprintf(srv->hsts, sizeof(srv->hsts), "max-age=%llu",
                 (unsigned long long)app->opts.hsts_seconds);
    h2o_config_init(&srv->config);
    srv->config.max_request_entity_size = app->opts.max_body_bytes;
    /* h2o 2.2 has one HTTP/1 timer for "waiting for a request": it covers the
     * idle time on a keep-alive connection and reading the whole head and
     * body (not reset by each byte). It closes without a response. */
    uint64_t rt = app->opts.read_timeout_ms, it = app->opts.idle_timeout_ms;
    srv->config.http1.req_timeout = it > 0 && it < rt ? it : rt;
    srv->config.http1.upgrade_to_http2 = app->opts.http2 ? 1 : 0;
    srv->config.http2.idle_timeout = app->opts.idle_timeout_ms;
    srv->config.server_name = h2o_iovec_init(H2O_STRLIT("donkey"));
    srv->host = h2o_config_register_host(&srv->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(srv->host, "/", 0);
    h2o_handler_t *h = h2o_create_handler(path, sizeof(*h));
    h->on_req = on_req;
    h2o_filter_t *f = h2o_create_filter(&srv->host->fallback_path, sizeof(*f));
    f->on_setup_ostream = h2o_error_setup;
    int rc = setup_tls(srv, err);
    if (rc < 0)
        return rc;

    int n = app->opts.threads > 0 ? app->opts.threads : 1;
    if (app->metrics == NULL && dk__metrics_start(app, n) < 0)
        return dk_err_set(err, DK_ENOMEM, "out of memory");
    srv->workers = calloc((size_t)n, sizeof(worker));
    if (srv->workers == NULL)
        return dk_err_set(err, DK_ENOMEM, "out of memory");
    int port = app->opts.port;
    for (int i = 0; i < n; i++) {
        worker *w = &srv->workers[i];
        w->srv = srv;
        w->index = i;
        w->fd = -1;
        int bound = port;
        int fd = bind_listener(app->host, port, i == 0, err, &bound);
        if (fd < 0)
            return fd;
        port = bound;
        w->fd = fd;
    }
    app->port = port;
    for (int i = 0; i < n; i++) {
        worker *w = &srv->workers[i];
        w->srv = srv;
        srv->nworkers++;
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            srv->nworkers--;
            return dk_err_set(err, DK_EIO, "cannot start HTTP thread");
        }
    }
    /* Wait until every loop exists: control messages need the receivers. */
    pthread_mutex_lock(&srv->ready_lock);
    while (srv->nready < srv->nworkers)
        pthread_cond_wait(&srv->ready_cond, &srv->ready_lock);
    pthread_mutex_unlock(&srv->ready_lock);
    return 0;
}

/* h2o only runs a receiver's callback for a real message (a NULL message
 * merely wakes the loop), so every poke carries one; on_control frees it. */
static void poke(worker *w)
{
    h2o_multithread_message_t *m = calloc(1, sizeof(*m));
    if (m != NULL)
        h2o_multithread_send_message(&w->control_rx, m);
}

void dk__server_stop_accepting(dk_app *app)
{
    dk__server *srv = app->server;
    if (srv == NULL)
        return;
    for (int i = 0; i < srv->nworkers; i++) {
        atomic_store(&srv->workers[i].stop_accepting, true);
        poke(&srv->workers[i]);
    }
}

void dk__server_close_streams(dk_app *app)
{
    dk__server *srv = app->server;
    if (srv == NULL)
        return;
    for (int i = 0; i < srv->nworkers; i++) {
        atomic_store(&srv->workers[i].close_streams, true);
        poke(&srv->workers[i]);
    }
}

void dk__server_drain(dk_app *app, uint64_t deadline_ms)
{
    dk__server *srv = app->server;
    if (srv == NULL)
        return;
    for (;;) {
        int busy = atomic_load(&srv->tasks);
        for (int i = 0; i < srv->nworkers; i++)
            busy += atomic_load(&srv->workers[i].inflight);
        if (busy == 0 || dk_now_ms() >= deadline_ms)
            break;
        dk__server_close_streams(app);
        usleep(10000);
    }
}

void dk__server_free(dk_app *app)
{
    dk__server *srv = app->server;
    if (srv == NULL)
        return;
    for (int i = 0; i < srv->nworkers; i++) {
        atomic_store(&srv->workers[i].exit, true);
        poke(&srv->workers[i]);
    }
    for (int i = 0; i < srv->nworkers; i++)
        pthread_join(srv->workers[i].thread, NULL);
    /* Connections still open at exit (idle keep-alive) are closed by the
     * kernel with the process; h2o 2.2 has no safe way to tear down a context
     * with live connections, so the loops are intentionally not disposed. */
    for (int i = 0; i < srv->nworkers; i++)
        if (srv->workers[i].listener == NULL && srv->workers[i].fd >= 0)
            srv->workers[i].fd = -1;
    if (srv->ssl)
        SSL_CTX_free(srv->ssl);
    int reserve = atomic_exchange(&srv->reserve_fd, -1);
    if (reserve >= 0)
        close(reserve);
    app->server = NULL;
    /* srv itself is kept reachable via a static so leak checkers do not
     * report the undisposed h2o contexts. */
    if (dk__retired_n < 64)
        dk__retired[dk__retired_n++] = srv;
}
