/* PostgreSQL LISTEN on a dedicated connection, for the job queue: enqueue
 * sends NOTIFY donkey_jobs (src/services/jobs.c, shared mode) and every
 * instance's listener wakes its workers at once instead of at their next
 * poll. The listener runs on a thread of its own (libpq's connect is
 * blocking; it must never stall the service loop), waits in poll() on the
 * connection's socket and an eventfd used to stop it, and reconnects with
 * backoff (250 ms to 5 s) after losing the server. It also calls `fn` after
 * each (re)connection, since notifications sent meanwhile were lost. */
#include "adapters/pg_notify.h"

#include "db/pq.h"
#include "base/internal.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct dk__pg_listener {
    char *conninfo;
    char *channel;
    void (*fn)(void *user);
    void *user;
    dk_logger *log;
    int stop_fd;
    pthread_t thread;
};

/* Waits up to `ms` (-1: forever) for `fd` or the stop signal. Returns 1 when
 * `fd` is readable, 0 on timeout, -1 when asked to stop. */
static int wait_for(dk__pg_listener *l, int fd, int ms)
{
    struct pollfd p[2] = {{l->stop_fd, POLLIN, 0}, {fd, POLLIN, 0}};
    for (;;) {
        int n = poll(p, fd >= 0 ? 2 : 1, ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n > 0 && (p[0].revents & POLLIN))
            return -1;
        return n > 0 ? 1 : 0;
    }
}

static PGconn *connect_listen(dk__pg_listener *l, char *why, size_t whylen)
{
    const char *keys[] = {"dbname", "connect_timeout", NULL};
    const char *vals[] = {l->conninfo, "3", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (c == NULL || PQstatus(c) != CONNECTION_OK) {
        snprintf(why, whylen, "%s", c != NULL ? PQerrorMessage(c) : "out of memory");
        PQfinish(c);
        return NULL;
    }
    char *ident = PQescapeIdentifier(c, l->channel, strlen(l->channel));
    char sql[300];
    snprintf(sql, sizeof(sql), "LISTEN %s", ident != NULL ? ident : "donkey_jobs");
    PQfreemem(ident);
    PGresult *res = PQexec(c, sql);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        snprintf(why, whylen, "%s", PQerrorMessage(c));
    PQclear(res);
    if (!ok) {
        PQfinish(c);
        return NULL;
    }
    return c;
}

static void *listener_main(void *arg)
{
    dk__pg_listener *l = arg;
    dk__thread_name("dk-pg-listen");
    int backoff = 250;
    uint64_t lost_at = 0;
    bool ever = false;
    char why[512];
    for (;;) {
        PGconn *c = connect_listen(l, why, sizeof(why));
        if (c == NULL) {
            if (lost_at == 0) {
                lost_at = dk_now_ms();
                if (l->log != NULL) {
                    why[strcspn(why, "\n")] = '\0';
                    json_t *d = json_pack("{s:s, s:s}", "channel", l->channel, "error", why);
                    dk_log(l->log, DK_LOG_ERROR,
                           "[Jobs] PostgreSQL LISTEN connection unavailable; retrying", d);
                }
            }
            if (wait_for(l, -1, backoff) < 0)
                break;
            backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
            continue;
        }
        if (lost_at != 0 && l->log != NULL) {
            json_t *d = json_pack("{s:s, s:I}", "channel", l->channel, "downMs",
                                  (json_int_t)(dk_now_ms() - lost_at));
            dk_log(l->log, DK_LOG_INFO, "[Jobs] PostgreSQL LISTEN connection restored", d);
        } else if (!ever && l->log != NULL) {
            dk_logf(l->log, DK_LOG_DEBUG, "[Jobs] listening on PostgreSQL channel %s",
                    l->channel);
        }
        ever = true;
        lost_at = 0;
        backoff = 250;
        l->fn(l->user); /* anything enqueued while we were away */
        bool stop = false;
        for (;;) {
            int w = wait_for(l, PQsocket(c), 30000);
            if (w < 0) {
                stop = true;
                break;
            }
            if (PQconsumeInput(c) == 0) {
                snprintf(why, sizeof(why), "%s", PQerrorMessage(c));
                break;
            }
            if (w == 0 && PQstatus(c) != CONNECTION_OK)
                break;
            bool got = false;
            PGnotify *n;
            while ((n = PQnotifies(c)) != NULL) {
                got = true;
                PQfreemem(n);
            }
            if (got)
                l->fn(l->user);
        }
        PQfinish(c);
        if (stop)
            break;
        lost_at = dk_now_ms();
        if (l->log != NULL) {
            why[strcspn(why, "\n")] = '\0';
            json_t *d = json_pack("{s:s, s:s}", "channel", l->channel, "error", why);
            dk_log(l->log, DK_LOG_ERROR, "[Jobs] PostgreSQL LISTEN connection lost; reconnecting",
                   d);
        }
        if (wait_for(l, -1, backoff) < 0)
            break;
    }
    return NULL;
}

dk__pg_listener *dk__pg_listen_start(const char *conninfo, const char *channel,
                                     void (*fn)(void *user), void *user, dk_logger *log)
{
    if (dk__pq_load(NULL, 0) != 0)
        return NULL; /* not reached in practice: the database opened libpq first */
    dk__pg_listener *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->conninfo = dk__strdup(conninfo);
    l->channel = dk__strdup(channel);
    l->fn = fn;
    l->user = user;
    l->log = log;
    l->stop_fd = eventfd(0, EFD_CLOEXEC);
    if (l->conninfo == NULL || l->channel == NULL || l->stop_fd < 0)
        goto fail;
    if (pthread_create(&l->thread, NULL, listener_main, l) != 0)
        goto fail;
    return l;
fail:
    if (l->stop_fd >= 0)
        close(l->stop_fd);
    free(l->conninfo);
    free(l->channel);
    free(l);
    return NULL;
}

void dk__pg_listen_stop(dk__pg_listener *l)
{
    if (l == NULL)
        return;
    uint64_t one = 1;
    ssize_t w = write(l->stop_fd, &one, sizeof(one));
    (void)w;
    pthread_join(l->thread, NULL);
    close(l->stop_fd);
    free(l->conninfo);
    free(l->channel);
    free(l);
}
