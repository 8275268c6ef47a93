/* sse_client: SSE fan-out benchmark (epoll, one thread, loopback).
 *
 *   sse_client PORT N [ROUNDS=10] [SERVER_PID]
 *
 * 1. Opens N connections to GET /conf.sse?channel=bench (at most 512 connects
 *    in flight) and waits until each has received the response headers and
 *    the "retry:" frame. Prints the connect rate.
 * 2. With SERVER_PID, reads the server's VmRSS before step 1 and after it and
 *    prints the growth per client.
 * 3. ROUNDS times: POSTs /conf.broadcast {"channel":"bench","event":"b<r>",...}
 *    on a keep-alive connection and measures from just before the request is
 *    written until every one of the N connections has received
 *    "event: b<r>\n". Prints each time and the median.
 *
 * Output lines are "key=value" pairs, machine-readable by bench/run:
 *   SSE_CONNECT n=.. ms=.. per_s=..
 *   SSE_RSS before_kb=.. after_kb=.. per_client_bytes=..
 *   SSE_BROADCAST round=.. ms=..
 *   SSE_BROADCAST_MEDIAN ms=..
 *   SSE_CPU server_ms_per_round=.. client_ms_per_round=..  (CPU time spent per round)
 * Exit status 0 when every step completed, 1 otherwise. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { ST_CONNECTING, ST_HEADERS, ST_READY, ST_DEAD };

#define TAIL 32
#define HDR_MAX 4096

typedef struct conn {
    int fd;
    int state;
    int seen_round;   /* last broadcast round received */
    size_t hlen;      /* bytes in hdr (headers phase) */
    char *hdr;
    size_t tlen;      /* bytes in tail (ready phase) */
    char tail[TAIL];
} conn;

static int port;
static struct sockaddr_in addr;
static char sse_req[256];
static size_t sse_req_len;
static char buf[1 << 16];

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static long rss_kb(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

/* CPU time (user + system) of process `pid` in ms, from /proc/PID/stat. */
static double cpu_ms(int pid)
{
    char path[64], line[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    double ms = -1;
    if (fgets(line, sizeof(line), f)) {
        const char *p = strrchr(line, ')'); /* the command name may hold spaces */
        unsigned long ut = 0, st = 0;
        if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
                        &st) == 2)
            ms = (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
    }
    fclose(f);
    return ms;
}

static double self_cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static int open_nb(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

static void kill_conn(int ep, conn *c)
{
    if (c->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->state = ST_DEAD;
    free(c->hdr);
    c->hdr = NULL;
}

/* Returns 1 when the connection became ready. */
static int on_headers(int ep, conn *c)
{
    for (;;) {
        ssize_t n = read(c->fd, c->hdr + c->hlen, HDR_MAX - 1 - c->hlen);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return 0;
        if (n <= 0) {
            kill_conn(ep, c);
            return 0;
        }
        c->hlen += (size_t)n;
        c->hdr[c->hlen] = '\0';
        if (strncmp(c->hdr, "HTTP/1.1 200", 12) != 0 && c->hlen >= 12) {
            fprintf(stderr, "sse_client: unexpected answer: %.80s\n", c->hdr);
            kill_conn(ep, c);
            return 0;
        }
        char *r = strstr(c->hdr, "retry:");
        if (r != NULL && strstr(r, "\n\n") != NULL) {
            free(c->hdr);
            c->hdr = NULL;
            c->state = ST_READY;
            return 1;
        }
        if (c->hlen >= HDR_MAX - 1) {
            kill_conn(ep, c);
            return 0;
        }
    }
}

/* Returns 1 when the connection saw `pat` (round `round`) during this call. */
static int on_data(int ep, conn *c, const char *pat, size_t plen, int round)
{
    int got = 0;
    for (;;) {
        ssize_t n = read(c->fd, buf + TAIL, sizeof(buf) - TAIL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return got;
        if (n <= 0) {
            kill_conn(ep, c);
            return got;
        }
        if (pat != NULL && c->seen_round < round) {
            char *start = buf + TAIL - c->tlen;
            memcpy(start, c->tail, c->tlen);
            if (memmem(start, c->tlen + (size_t)n, pat, plen) != NULL) {
                c->seen_round = round;
                got = 1;
            }
        }
        size_t keep = (size_t)n < TAIL ? (size_t)n : TAIL;
        memcpy(c->tail, buf + TAIL + n - keep, keep);
        c->tlen = keep;
        /* A short read emptied the socket: epoll is level-triggered and
         * reports it again when more arrives, so skip the read that would
         * only return EAGAIN (it doubled the client's system calls). */
        if ((size_t)n < sizeof(buf) - TAIL)
            return got;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Blocking keep-alive connection for the broadcast trigger. */
static int trigger_fd = -1;

static int trigger(int round)
{
    if (trigger_fd < 0) {
        trigger_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(trigger_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(trigger_fd, (struct sockaddr *)&addr, sizeof(addr)) != 0)
            return -1;
    }
    char body[128], req[512];
    int blen = snprintf(body, sizeof(body),
                        "{\"channel\":\"bench\",\"event\":\"b%d\",\"data\":{\"round\":%d}}", round,
                        round);
    int rlen = snprintf(req, sizeof(req),
                        "POST /conf.broadcast HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                        "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                        port, blen, body);
    return write(trigger_fd, req, (size_t)rlen) == rlen ? 0 : -1;
}

static void drain_trigger(void)
{
    /* The answer is small; read what is there without blocking for long. */
    struct timeval tv = {0, 200000};
    setsockopt(trigger_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char tmp[2048];
    ssize_t n = read(trigger_fd, tmp, sizeof(tmp) - 1);
    if (n > 0) {
        tmp[n] = '\0';
        if (strncmp(tmp, "HTTP/1.1 200", 12) != 0)
            fprintf(stderr, "sse_client: broadcast answered: %.120s\n", tmp);
    }
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: sse_client PORT N [ROUNDS=10] [SERVER_PID]\n");
        return 2;
    }
    port = atoi(argv[1]);
    int n = atoi(argv[2]);
    int rounds = argc > 3 ? atoi(argv[3]) : 10;
    int spid = argc > 4 ? atoi(argv[4]) : 0;

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 64) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sse_req_len = (size_t)snprintf(sse_req, sizeof(sse_req),
                                   "GET /conf.sse?channel=bench HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                                   "Accept: text/event-stream\r\n\r\n",
                                   port);

    conn *cs = calloc((size_t)n, sizeof(conn));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event evs[1024];

    long rss0 = spid ? rss_kb(spid) : -1;
    double t0 = now_ms();
    int next = 0, inflight = 0, ready = 0, dead = 0;
    while (ready + dead < n && now_ms() - t0 < 60000) {
        while (next < n && inflight < 512) {
            conn *c = &cs[next];
            c->fd = open_nb();
            c->hdr = malloc(HDR_MAX);
            if (c->fd < 0) {
                perror("sse_client: connect");
                c->state = ST_DEAD;
                dead++;
                next++;
                continue;
            }
            c->state = ST_CONNECTING;
            struct epoll_event e = {.events = EPOLLOUT, .data.u32 = (uint32_t)next};
            epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e);
            next++;
            inflight++;
        }
        int k = epoll_wait(ep, evs, 1024, 100);
        for (int i = 0; i < k; i++) {
            conn *c = &cs[evs[i].data.u32];
            if (c->state == ST_CONNECTING) {
                int err = 0;
                socklen_t el = sizeof(err);
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err != 0 || write(c->fd, sse_req, sse_req_len) != (ssize_t)sse_req_len) {
                    kill_conn(ep, c);
                    inflight--;
                    dead++;
                    continue;
                }
                c->state = ST_HEADERS;
                struct epoll_event e = {.events = EPOLLIN, .data.u32 = evs[i].data.u32};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
            } else if (c->state == ST_HEADERS) {
                if (on_headers(ep, c)) {
                    inflight--;
                    ready++;
                } else if (c->state == ST_DEAD) {
                    inflight--;
                    dead++;
                }
            } else if (c->state == ST_READY) {
                on_data(ep, c, NULL, 0, 0);
                if (c->state == ST_DEAD) {
                    ready--;
                    dead++;
                }
            }
        }
    }
    double t1 = now_ms();
    printf("SSE_CONNECT n=%d ready=%d failed=%d ms=%.1f per_s=%.0f\n", n, ready, dead, t1 - t0,
           ready / ((t1 - t0) / 1e3));
    fflush(stdout);
    if (ready < n) {
        fprintf(stderr, "sse_client: only %d of %d connections are ready\n", ready, n);
        return 1;
    }
    if (spid) {
        struct timespec ts = {0, 300000000};
        nanosleep(&ts, NULL);
        long rss1 = rss_kb(spid);
        printf("SSE_RSS before_kb=%ld after_kb=%ld per_client_bytes=%.0f\n", rss0, rss1,
               (rss1 - rss0) * 1024.0 / n);
        fflush(stdout);
    }

    double *times = calloc((size_t)(rounds > 0 ? rounds : 1), sizeof(double));
    int ok = 1;
    double srv_cpu0 = spid ? cpu_ms(spid) : -1, cli_cpu0 = self_cpu_ms();
    for (int r = 1; r <= rounds; r++) {
        char pat[32];
        size_t plen = (size_t)snprintf(pat, sizeof(pat), "event: b%d\n", r);
        int got = 0;
        double b0 = now_ms();
        if (trigger(r) != 0) {
            perror("sse_client: broadcast");
            return 1;
        }
        while (got < ready && now_ms() - b0 < 10000) {
            int k = epoll_wait(ep, evs, 1024, 100);
            for (int i = 0; i < k; i++) {
                conn *c = &cs[evs[i].data.u32];
                if (c->state != ST_READY)
                    continue;
                got += on_data(ep, c, pat, plen, r);
                if (c->state == ST_DEAD)
                    ready--;
            }
        }
        double b1 = now_ms();
        times[r - 1] = b1 - b0;
        printf("SSE_BROADCAST round=%d ms=%.2f received=%d of=%d\n", r, b1 - b0, got, n);
        fflush(stdout);
        if (got < n)
            ok = 0;
        drain_trigger();
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
    }
    if (rounds > 0) {
        /* CPU spent per broadcast round (pauses between rounds included, so
         * heartbeats and the like count too): shows how much of the wall time
         * the two processes need on a machine they share. */
        double srv_cpu1 = spid ? cpu_ms(spid) : -1, cli_cpu1 = self_cpu_ms();
        printf("SSE_CPU server_ms_per_round=%.1f client_ms_per_round=%.1f\n",
               spid && srv_cpu0 >= 0 ? (srv_cpu1 - srv_cpu0) / rounds : -1.0,
               (cli_cpu1 - cli_cpu0) / rounds);
        qsort(times, (size_t)rounds, sizeof(double), cmp_double);
        double med = rounds % 2 ? times[rounds / 2]
                                : (times[rounds / 2 - 1] + times[rounds / 2]) / 2;
        printf("SSE_BROADCAST_MEDIAN ms=%.2f\n", med);
    }
    return ok ? 0 : 1;
}
