/* The Redis client: URL parsing, a pool of synchronous connections with
 * timeouts for request-path commands, and asynchronous readers on the service
 * loop that reconnect with backoff. See redis.h. */
#include "adapters/redis.h"

#include "base/internal.h"

#include <stdlib.h>
#include <string.h>

#ifndef DK_HAVE_HIREDIS

int dk__redis_new(const char *url, const char *instance_id, dk_loop *loop, dk_logger *log,
                  dk__redis **out, dk_err *err)
{
    *out = NULL;
    return dk_err_set(err, DK_ESTATE,
                      "a Redis URL was given but donkey was built without hiredis "
                      "(install libhiredis-dev and rebuild)");
}

void dk__redis_stop_readers(dk__redis *r) {}
void dk__redis_free(dk__redis *r) {}
const char *dk__redis_instance(const dk__redis *r) { return ""; }
const char *dk__redis_describe(const dk__redis *r) { return ""; }
int dk__redis_ping(dk__redis *r) { return DK_ESTATE; }

#else

#include <uv.h>
#include <hiredis/adapters/libuv.h>
#include <openssl/sha.h>

#include "base/offload.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/time.h>

#define POOL_MAX 16
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define READER_BACKOFF_MAX_MS 2000
#define CONNECT_TIMEOUT_MS 1000

struct dk__redis_reader {
    dk__redis *r;
    const char *name;
    dk__redis_ready_fn ready;
    void *user;
    redisAsyncContext *ac;
    uv_timer_t retry;   /* reconnection */
    uv_timer_t watch;   /* watchdog */
    int open_handles;
    uint64_t backoff;
    uint64_t lost_at;   /* dk_now_ms() when the connection was lost, 0 = connected or never */
    char why[160];      /* reason given to dk__redis_reader_fail() */
    bool connected_once;
    bool stopping;
    bool stopped;       /* stop finished on the loop (freed when handles and ac are gone) */
    struct dk__redis_reader *next;
};

struct dk__redis {
    char *host;
    int port;
    int db;
    char *user;
    char *password;
    char *instance;
    char describe[300];
    dk_loop *loop;
    dk_logger *log;
    struct timeval timeout;

    pthread_mutex_t lock; /* everything below */
    redisContext *idle[POOL_MAX];
    int nidle;
    bool down;
    uint64_t down_since;
    uint64_t retry_at;
    uint64_t backoff;
    dk__redis_reader *readers;
};

/* ------------------------------------------------------------------ */
/* URL                                                                 */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes `len` bytes of `s` into a new string. */
static int url_decode(const char *s, size_t len, char **out)
{
    char *d = malloc(len + 1);
    if (d == NULL)
        return DK_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 &&
            hexval(s[i + 2]) >= 0) {
            d[k++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
            continue;
        }
        d[k++] = s[i];
    }
    d[k] = '\0';
    *out = d;
    return 0;
}

static int parse_url(dk__redis *r, const char *url, dk_err *err)
{
    const char *p;
    if (strncmp(url, "redis://", 8) == 0)
        p = url + 8;
    else
        return dk_err_set(err, DK_EINVAL, "invalid Redis URL '%s': expected redis://host:port[/db]",
                          url);
    const char *at = strrchr(p, '@');
    const char *slash = strchr(at != NULL ? at : p, '/');
    if (at != NULL) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon != NULL) {
            if (colon > p && url_decode(p, (size_t)(colon - p), &r->user) < 0)
                return DK_ENOMEM;
            if (url_decode(colon + 1, (size_t)(at - colon - 1), &r->password) < 0)
                return DK_ENOMEM;
        } else if (url_decode(p, (size_t)(at - p), &r->password) < 0) {
            return DK_ENOMEM;
        }
        p = at + 1;
    }
    size_t hostlen = slash != NULL ? (size_t)(slash - p) : strlen(p);
    const char *colon = memchr(p, ':', hostlen);
    size_t namelen = colon != NULL ? (size_t)(colon - p) : hostlen;
    r->port = 6379;
    if (colon != NULL) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (end != p + hostlen || port <= 0 || port > 65535)
            return dk_err_set(err, DK_EINVAL, "invalid Redis URL '%s': bad port", url);
        r->port = (int)port;
    }
    r->host = namelen > 0 ? strndup(p, namelen) : strdup("127.0.0.1");
    if (r->host == NULL)
        return DK_ENOMEM;
    if (slash != NULL && slash[1] != '\0') {
        char *end;
        long db = strtol(slash + 1, &end, 10);
        if (*end != '\0' || db < 0 || db > 100000)
            return dk_err_set(err, DK_EINVAL, "invalid Redis URL '%s': bad database number", url);
        r->db = (int)db;
    }
    snprintf(r->describe, sizeof(r->describe), "%s:%d/%d", r->host, r->port, r->db);
    return 0;
}

static uint64_t env_timeout_ms(void)
{
    const char *v = getenv("DK_REDIS_TIMEOUT_MS");
    if (v != NULL && *v != '\0') {
        char *end;
        unsigned long long n = strtoull(v, &end, 10);
        if (*end == '\0' && n > 0 && n < 600000)
            return n;
    }
    return 500;
}

int dk__redis_new(const char *url, const char *instance_id, dk_loop *loop, dk_logger *log,
                  dk__redis **out, dk_err *err)
{
    *out = NULL;
    dk__redis *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return dk_err_set(err, DK_ENOMEM, "out of memory");
    int rc = parse_url(r, url, err);
    if (rc == 0 && (r->instance = dk__strdup(instance_id)) == NULL)
        rc = DK_ENOMEM;
    if (rc < 0) {
        free(r->host);
        free(r->user);
        free(r->password);
        free(r->instance);
        free(r);
        return rc == DK_ENOMEM ? dk_err_set(err, rc, "out of memory") : rc;
    }
    uint64_t ms = env_timeout_ms();
    r->timeout.tv_sec = (time_t)(ms / 1000);
    r->timeout.tv_usec = (suseconds_t)((ms % 1000) * 1000);
    r->loop = loop;
    r->log = log;
    r->backoff = BACKOFF_MIN_MS;
    pthread_mutex_init(&r->lock, NULL);
    *out = r;
    return 0;
}

const char *dk__redis_instance(const dk__redis *r) { return r->instance; }
const char *dk__redis_describe(const dk__redis *r) { return r->describe; }

/* ------------------------------------------------------------------ */
/* Synchronous pool                                                    */

/* AUTH and SELECT on a new connection. false when the connection is unusable. */
static bool session_setup(dk__redis *r, redisContext *c)
{
    redisReply *rep;
    if (r->password != NULL) {
        if (r->user != NULL)
            rep = redisCommand(c, "AUTH %s %s", r->user, r->password);
        else
            rep = redisCommand(c, "AUTH %s", r->password);
        bool ok = rep != NULL && rep->type != REDIS_REPLY_ERROR;
        if (rep != NULL && !ok && r->log != NULL)
            dk_logf(r->log, DK_LOG_ERROR, "[Redis] AUTH refused: %s", rep->str);
        freeReplyObject(rep);
        if (!ok)
            return false;
    }
    if (r->db != 0) {
        rep = redisCommand(c, "SELECT %d", r->db);
        bool ok = rep != NULL && rep->type != REDIS_REPLY_ERROR;
        freeReplyObject(rep);
        if (!ok)
            return false;
    }
    return true;
}

static void mark_down(dk__redis *r, const char *why)
{
    uint64_t now = dk_now_ms();
    pthread_mutex_lock(&r->lock);
    bool was_down = r->down;
    if (!r->down) {
        r->down = true;
        r->down_since = now;
        r->backoff = BACKOFF_MIN_MS;
    } else if (r->backoff < BACKOFF_MAX_MS) {
        r->backoff *= 2;
        if (r->backoff > BACKOFF_MAX_MS)
            r->backoff = BACKOFF_MAX_MS;
    }
    r->retry_at = now + r->backoff;
    /* Pooled connections are probably broken too (server restarted). */
    redisContext *old[POOL_MAX];
    int n = r->nidle;
    memcpy(old, r->idle, sizeof(old));
    r->nidle = 0;
    pthread_mutex_unlock(&r->lock);
    for (int i = 0; i < n; i++)
        redisFree(old[i]);
    if (!was_down && r->log != NULL) {
        json_t *d = json_pack("{s:s, s:s}", "redis", r->describe, "error", why);
        dk_log(r->log, DK_LOG_ERROR,
               "[Redis] connection lost; requests that need Redis answer 503 until it is back", d);
    }
}

static void mark_up(dk__redis *r)
{
    pthread_mutex_lock(&r->lock);
    bool was_down = r->down;
    uint64_t since = r->down_since;
    r->down = false;
    r->backoff = BACKOFF_MIN_MS;
    pthread_mutex_unlock(&r->lock);
    if (was_down && r->log != NULL) {
        json_t *d = json_pack("{s:s, s:I}", "redis", r->describe, "downMs",
                              (json_int_t)(dk_now_ms() - since));
        dk_log(r->log, DK_LOG_INFO, "[Redis] connection restored", d);
    }
}

/* A connection from the pool or a new one; NULL when Redis is down (fail fast)
 * or cannot be reached. `*fresh` tells whether it was just opened. */
static redisContext *checkout(dk__redis *r, bool *fresh)
{
    pthread_mutex_lock(&r->lock);
    if (r->nidle > 0) {
        redisContext *c = r->idle[--r->nidle];
        pthread_mutex_unlock(&r->lock);
        *fresh = false;
        return c;
    }
    uint64_t now = dk_now_ms();
    if (r->down && now < r->retry_at) {
        pthread_mutex_unlock(&r->lock);
        return NULL;
    }
    if (r->down)
        r->retry_at = now + r->backoff; /* one thread probes; the others fail fast */
    pthread_mutex_unlock(&r->lock);

    *fresh = true;
    redisContext *c = redisConnectWithTimeout(r->host, r->port, r->timeout);
    if (c == NULL || c->err) {
        char why[160];
        snprintf(why, sizeof(why), "%s", c != NULL ? c->errstr : "out of memory");
        redisFree(c);
        mark_down(r, why);
        return NULL;
    }
    redisSetTimeout(c, r->timeout);
    redisEnableKeepAlive(c);
    if (!session_setup(r, c)) {
        char why[160];
        snprintf(why, sizeof(why), "%s", c->err ? c->errstr : "session set-up refused");
        redisFree(c);
        mark_down(r, why);
        return NULL;
    }
    return c;
}

static void checkin(dk__redis *r, redisContext *c)
{
    pthread_mutex_lock(&r->lock);
    if (r->nidle < POOL_MAX && !r->down) {
        r->idle[r->nidle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&r->lock);
    redisFree(c);
}

static int redis_cmd(dk__redis *r, redisReply **out, int argc, const char **argv,
                     const size_t *argvlen)
{
    *out = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        bool fresh = false;
        redisContext *c = checkout(r, &fresh);
        if (c == NULL)
            return DK_EUNAVAILABLE;
        redisReply *rep = redisCommandArgv(c, argc, argv, argvlen);
        if (rep == NULL) {
            char why[160];
            snprintf(why, sizeof(why), "%s", c->err ? c->errstr : "no reply");
            bool timeout = c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
            redisFree(c);
            /* A pooled connection may simply be stale (server restarted):
             * try once more on a new one. */
            if (!fresh && !timeout)
                continue;
            mark_down(r, timeout ? "command timed out" : why);
            return DK_EUNAVAILABLE;
        }
        if (fresh)
            mark_up(r);
        checkin(r, c);
        if (rep->type == REDIS_REPLY_ERROR) {
            if (r->log != NULL)
                dk_logf(r->log, DK_LOG_DEBUG, "[Redis] %.*s: %s", (int)argvlen[0], argv[0],
                        rep->str);
            bool loading = strncmp(rep->str, "LOADING", 7) == 0 ||
                           strncmp(rep->str, "BUSY", 4) == 0 ||
                           strncmp(rep->str, "MASTERDOWN", 10) == 0;
            *out = rep;
            if (strncmp(rep->str, "NOSCRIPT", 8) == 0)
                return DK_ENOTFOUND; /* the caller frees *out */
            freeReplyObject(rep);
            *out = NULL;
            return loading ? DK_EUNAVAILABLE : DK_EINTERNAL;
        }
        *out = rep;
        return 0;
    }
    return DK_EUNAVAILABLE;
}

/* In a request's fiber the command runs on an I/O thread (src/base/offload.h)
 * while the HTTP thread serves other requests. */
typedef struct cmd_call {
    dk__redis *r;
    redisReply **out;
    int argc;
    const char **argv;
    const size_t *argvlen;
} cmd_call;

static int cmd_run(void *arg)
{
    cmd_call *c = arg;
    return redis_cmd(c->r, c->out, c->argc, c->argv, c->argvlen);
}

int dk__redis_cmd(dk__redis *r, redisReply **out, int argc, const char **argv,
                  const size_t *argvlen)
{
    cmd_call c = {r, out, argc, argv, argvlen};
    return dk__offload(DK__POOL_IO, cmd_run, &c);
}

int dk__redis_ping(dk__redis *r)
{
    const char *argv[] = {"PING"};
    size_t len[] = {4};
    redisReply *rep = NULL;
    int rc = dk__redis_cmd(r, &rep, 1, argv, len);
    freeReplyObject(rep);
    return rc;
}

void dk__redis_script_init(dk__redis_script *s, const char *body)
{
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)body, strlen(body), md);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
        snprintf(s->sha + 2 * i, 3, "%02x", md[i]);
    s->body = body;
}

int dk__redis_eval(dk__redis *r, const dk__redis_script *s, int nkeys, int argc,
                   const char **argv, const size_t *argvlen, redisReply **out)
{
    const char *av[3 + 16];
    size_t al[3 + 16];
    if (argc > 16)
        return DK_EINVAL;
    char nk[16];
    snprintf(nk, sizeof(nk), "%d", nkeys);
    av[0] = "EVALSHA";
    al[0] = 7;
    av[1] = s->sha;
    al[1] = 40;
    av[2] = nk;
    al[2] = strlen(nk);
    for (int i = 0; i < argc; i++) {
        av[3 + i] = argv[i];
        al[3 + i] = argvlen[i];
    }
    int rc = dk__redis_cmd(r, out, 3 + argc, av, al);
    if (rc != DK_ENOTFOUND)
        return rc;
    freeReplyObject(*out);
    *out = NULL;
    av[0] = "EVAL";
    al[0] = 4;
    av[1] = s->body;
    al[1] = strlen(s->body);
    rc = dk__redis_cmd(r, out, 3 + argc, av, al);
    if (rc == DK_ENOTFOUND) {
        freeReplyObject(*out);
        *out = NULL;
        rc = DK_EINTERNAL;
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* Asynchronous readers (service thread)                               */

static void reader_connect(dk__redis_reader *rd);
static void on_watchdog(uv_timer_t *t);

static void reader_maybe_free(dk__redis_reader *rd)
{
    if (rd->stopped && rd->open_handles == 0 && rd->ac == NULL)
        free(rd);
}

static void reader_handle_closed(uv_handle_t *h)
{
    dk__redis_reader *rd = h->data;
    rd->open_handles--;
    reader_maybe_free(rd);
}

static void on_retry(uv_timer_t *t)
{
    dk__redis_reader *rd = t->data;
    if (!rd->stopping)
        reader_connect(rd);
}

static void schedule_retry(dk__redis_reader *rd)
{
    if (rd->stopping || uv_is_active((uv_handle_t *)&rd->retry))
        return;
    uv_timer_start(&rd->retry, on_retry, rd->backoff, 0);
    rd->backoff = rd->backoff * 2 > READER_BACKOFF_MAX_MS ? READER_BACKOFF_MAX_MS : rd->backoff * 2;
}

static void reader_lost(dk__redis_reader *rd, const char *why)
{
    dk__redis *r = rd->r;
    if (rd->lost_at == 0 && !rd->stopping) {
        rd->lost_at = dk_now_ms();
        if (r->log != NULL) {
            json_t *d = json_pack("{s:s, s:s, s:s}", "reader", rd->name, "redis", r->describe,
                                  "error", why != NULL ? why : "");
            dk_log(r->log, DK_LOG_ERROR, "[Redis] reader disconnected; reconnecting", d);
        }
    }
    uv_timer_stop(&rd->watch);
    schedule_retry(rd);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    dk__redis_reader *rd = ac->data;
    if (rd == NULL)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback. */
        rd->ac = NULL;
        reader_lost(rd, ac->errstr);
        if (rd->stopped)
            reader_maybe_free(rd);
        return;
    }
    if (rd->lost_at != 0 && rd->r->log != NULL) {
        json_t *d = json_pack("{s:s, s:s, s:I}", "reader", rd->name, "redis", rd->r->describe,
                              "downMs", (json_int_t)(dk_now_ms() - rd->lost_at));
        dk_log(rd->r->log, DK_LOG_INFO, "[Redis] reader reconnected", d);
    } else if (!rd->connected_once && rd->r->log != NULL) {
        dk_logf(rd->r->log, DK_LOG_DEBUG, "[Redis] reader %s connected", rd->name);
    }
    uv_timer_stop(&rd->watch);
    rd->why[0] = '\0';
    rd->lost_at = 0;
    rd->connected_once = true;
    rd->backoff = BACKOFF_MIN_MS;
    redisAsyncContext *a = (redisAsyncContext *)ac;
    if (rd->r->password != NULL) {
        if (rd->r->user != NULL)
            redisAsyncCommand(a, NULL, NULL, "AUTH %s %s", rd->r->user, rd->r->password);
        else
            redisAsyncCommand(a, NULL, NULL, "AUTH %s", rd->r->password);
    }
    if (rd->r->db != 0)
        redisAsyncCommand(a, NULL, NULL, "SELECT %d", rd->r->db);
    rd->ready(rd, a, rd->user);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    dk__redis_reader *rd = ac->data;
    if (rd == NULL)
        return;
    rd->ac = NULL;
    if (rd->stopped) {
        reader_maybe_free(rd);
        return;
    }
    reader_lost(rd, ac->err ? ac->errstr : "connection closed");
}

static void reader_connect(dk__redis_reader *rd)
{
    dk__redis *r = rd->r;
    redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);
    if (ac == NULL) {
        reader_lost(rd, "out of memory");
        return;
    }
    if (ac->err) {
        char why[160];
        snprintf(why, sizeof(why), "%s", ac->errstr);
        redisAsyncFree(ac);
        reader_lost(rd, why);
        return;
    }
    ac->data = rd;
    if (redisLibuvAttach(ac, dk_loop_uv(r->loop)) != REDIS_OK) {
        redisAsyncFree(ac);
        reader_lost(rd, "cannot attach to the loop");
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    rd->ac = ac;
    /* hiredis 0.14's libuv adapter drops poll errors (a refused connection
     * reports UV_EBADF and is never handed to hiredis), so a connection that
     * is not up in time is torn down and retried by the watchdog. */
    snprintf(rd->why, sizeof(rd->why), "not connected within %d ms", CONNECT_TIMEOUT_MS);
    uv_timer_start(&rd->watch, on_watchdog, CONNECT_TIMEOUT_MS, 0);
}

/* Tears the connection down and schedules a reconnection. Runs from a timer,
 * never inside a hiredis callback (freeing the context there is unsafe). */
static void on_watchdog(uv_timer_t *t)
{
    dk__redis_reader *rd = t->data;
    redisAsyncContext *ac = rd->ac;
    if (rd->stopping)
        return;
    reader_lost(rd, rd->why[0] != '\0' ? rd->why : "no reply in time (watchdog)");
    rd->why[0] = '\0';
    if (ac != NULL) {
        /* Pending callbacks get NULL replies; on_disconnect is skipped. */
        rd->ac = NULL;
        ac->data = NULL;
        redisAsyncFree(ac);
    }
}

void dk__redis_reader_fail(dk__redis_reader *rd, const char *why)
{
    if (rd->stopping)
        return;
    snprintf(rd->why, sizeof(rd->why), "%s", why != NULL ? why : "error");
    uv_timer_start(&rd->watch, on_watchdog, 0, 0);
}

void dk__redis_reader_expect(dk__redis_reader *rd, uint64_t ms)
{
    if (rd->stopping)
        return;
    if (ms == 0)
        uv_timer_stop(&rd->watch);
    else
        uv_timer_start(&rd->watch, on_watchdog, ms, 0);
}

bool dk__redis_reader_stopping(const dk__redis_reader *rd) { return rd->stopping; }
void *dk__redis_reader_user(dk__redis_reader *rd) { return rd->user; }
dk__redis *dk__redis_reader_client(dk__redis_reader *rd) { return rd->r; }

static void reader_begin(void *arg)
{
    dk__redis_reader *rd = arg;
    uv_loop_t *uv = dk_loop_uv(rd->r->loop);
    uv_timer_init(uv, &rd->retry);
    uv_timer_init(uv, &rd->watch);
    rd->retry.data = rd->watch.data = rd;
    rd->open_handles = 2;
    reader_connect(rd);
}

dk__redis_reader *dk__redis_reader_start(dk__redis *r, const char *name, dk__redis_ready_fn ready,
                                         void *user)
{
    dk__redis_reader *rd = calloc(1, sizeof(*rd));
    if (rd == NULL)
        return NULL;
    rd->r = r;
    rd->name = name;
    rd->ready = ready;
    rd->user = user;
    rd->backoff = BACKOFF_MIN_MS;
    pthread_mutex_lock(&r->lock);
    rd->next = r->readers;
    r->readers = rd;
    pthread_mutex_unlock(&r->lock);
    if (dk_loop_call(r->loop, reader_begin, rd) != 0) {
        pthread_mutex_lock(&r->lock);
        r->readers = rd->next;
        pthread_mutex_unlock(&r->lock);
        free(rd);
        return NULL;
    }
    return rd;
}

static void reader_end(void *arg)
{
    dk__redis_reader *rd = arg;
    rd->stopping = true;
    uv_timer_stop(&rd->retry);
    uv_timer_stop(&rd->watch);
    uv_close((uv_handle_t *)&rd->retry, reader_handle_closed);
    uv_close((uv_handle_t *)&rd->watch, reader_handle_closed);
    redisAsyncContext *ac = rd->ac;
    rd->stopped = true;
    if (ac != NULL) {
        /* Callbacks see `stopping` and issue nothing; they get NULL replies. */
        rd->ac = NULL;
        ac->data = NULL;
        redisAsyncFree(ac);
    }
}

void dk__redis_stop_readers(dk__redis *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->lock);
    dk__redis_reader *rd = r->readers;
    r->readers = NULL;
    pthread_mutex_unlock(&r->lock);
    while (rd != NULL) {
        dk__redis_reader *next = rd->next;
        /* The reader frees itself once its handles are closed. */
        if (dk_loop_call(r->loop, reader_end, rd) != 0)
            free(rd); /* the loop is gone: nothing of it runs any more */
        rd = next;
    }
}

void dk__redis_free(dk__redis *r)
{
    if (r == NULL)
        return;
    dk__redis_stop_readers(r);
    for (int i = 0; i < r->nidle; i++)
        redisFree(r->idle[i]);
    pthread_mutex_destroy(&r->lock);
    free(r->host);
    free(r->user);
    free(r->password);
    free(r->instance);
    free(r);
}

#endif /* DK_HAVE_HIREDIS */
