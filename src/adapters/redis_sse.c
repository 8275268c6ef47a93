/* SSE back end on Redis: one stream, "donkey:sse", for every channel.
 *
 * A broadcast is XADDed (MAXLEN ~ bound) while the SSE service holds its send
 * lock, before local delivery (dk_sse_backend.publish_ordered), and the
 * stream id Redis assigns ("1718000000000-0") becomes the event id when the
 * caller gave none: unique and increasing across the cluster, and the same
 * on every instance. Each instance reads the stream with XREAD BLOCK on the
 * service loop and hands other instances' entries to dk_sse_deliver_remote(),
 * which also keeps them in its local replay windows, so a client resuming
 * with Last-Event-ID gets its replay from whichever instance it reconnects
 * to. A reader that lost Redis resumes after the last entry it saw (nothing
 * is missed while the stream still holds it); a starting instance fills its
 * replay windows from the newest entries that are younger than the replay
 * age. One stream rather than one per channel: one blocking read per
 * instance whatever the number of channels, and one order for channel and
 * global broadcasts. */
#include "adapters/redis.h"

#ifdef DK_HAVE_HIREDIS

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STREAM "donkey:sse"
#define BLOCK_MS 2000
#define WATCHDOG_MS (BLOCK_MS + 3000)
#define READ_COUNT 512

typedef struct rsse {
    dk__redis *r;
    dk_sse **sse;
    size_t stream_max;
    uint64_t max_age_ms;
    char last_id[64]; /* last stream entry seen; "" before the first read */
} rsse;

static int rs_publish(void *user, const char *channel, const char *event, const char *data,
                      size_t len, const char *id, char *out_id, size_t out_len)
{
    rsse *s = user;
    const char *inst = dk__redis_instance(s->r);
    char max[24];
    snprintf(max, sizeof(max), "%zu", s->stream_max);
    const char *argv[16];
    size_t lens[16];
    int n = 0;
#define ARG(str, l) (argv[n] = (str), lens[n] = (l), n++)
    ARG("XADD", 4);
    ARG(STREAM, sizeof(STREAM) - 1);
    ARG("MAXLEN", 6);
    ARG("~", 1);
    ARG(max, strlen(max));
    ARG("*", 1);
    ARG("o", 1);
    ARG(inst, strlen(inst));
    if (channel != NULL) {
        ARG("c", 1);
        ARG(channel, strlen(channel));
    }
    if (event != NULL) {
        ARG("e", 1);
        ARG(event, strlen(event));
    }
    ARG("d", 1);
    ARG(data != NULL ? data : "", data != NULL ? len : 0);
    if (id != NULL && id[0] != '\0') {
        ARG("i", 1);
        ARG(id, strlen(id));
    }
#undef ARG
    redisReply *rep = NULL;
    int rc = dk__redis_cmd(s->r, &rep, n, argv, lens);
    if (rc < 0)
        return rc;
    if (rep->type == REDIS_REPLY_STRING && rep->len < out_len)
        snprintf(out_id, out_len, "%s", rep->str);
    freeReplyObject(rep);
    return 0;
}

/* Delivers one stream entry [id, [field, value, ...]]; returns its id. */
static const char *deliver_entry(rsse *s, const redisReply *entry, bool check_age)
{
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
        entry->element[0]->type != REDIS_REPLY_STRING ||
        entry->element[1]->type != REDIS_REPLY_ARRAY)
        return NULL;
    const char *sid = entry->element[0]->str;
    const redisReply *f = entry->element[1];
    const char *origin = NULL, *channel = NULL, *event = NULL, *data = "", *id = NULL;
    size_t dlen = 0;
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const redisReply *k = f->element[i], *v = f->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING || k->len != 1)
            continue;
        switch (k->str[0]) {
        case 'o': origin = v->str; break;
        case 'c': channel = v->str; break;
        case 'e': event = v->str; break;
        case 'd': data = v->str; dlen = v->len; break;
        case 'i': id = v->str; break;
        default: break;
        }
    }
    if (origin != NULL && strcmp(origin, dk__redis_instance(s->r)) == 0)
        return sid;
    if (check_age) {
        int64_t ms = strtoll(sid, NULL, 10);
        if (ms + (int64_t)s->max_age_ms < dk_wall_ms())
            return sid;
    }
    dk_sse *sse = *s->sse;
    if (sse != NULL)
        dk_sse_deliver_remote(sse, channel, event, data, dlen, id != NULL ? id : sid);
    return sid;
}

static void read_next(dk__redis_reader *rd, redisAsyncContext *ac);

static void on_xread(redisAsyncContext *ac, void *reply, void *privdata)
{
    redisReply *rep = reply;
    dk__redis_reader *rd = privdata;
    if (rep == NULL || dk__redis_reader_stopping(rd))
        return;
    rsse *s = dk__redis_reader_user(rd);
    dk__redis_reader_expect(rd, 0);
    if (rep->type == REDIS_REPLY_ERROR) {
        dk__redis_reader_fail(rd, rep->str);
        return;
    }
    /* nil: BLOCK timed out. Else [[stream, [entry, ...]]]. */
    if (rep->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < rep->elements; i++) {
            const redisReply *st = rep->element[i];
            if (st->type != REDIS_REPLY_ARRAY || st->elements != 2 ||
                st->element[1]->type != REDIS_REPLY_ARRAY)
                continue;
            const redisReply *entries = st->element[1];
            for (size_t j = 0; j < entries->elements; j++) {
                const char *sid = deliver_entry(s, entries->element[j], false);
                if (sid != NULL)
                    snprintf(s->last_id, sizeof(s->last_id), "%s", sid);
            }
        }
    }
    read_next(rd, ac);
}

static void read_next(dk__redis_reader *rd, redisAsyncContext *ac)
{
    rsse *s = dk__redis_reader_user(rd);
    if (redisAsyncCommand(ac, on_xread, rd, "XREAD COUNT %d BLOCK %d STREAMS %s %s", READ_COUNT,
                          BLOCK_MS, STREAM, s->last_id) != REDIS_OK) {
        dk__redis_reader_fail(rd, "cannot send XREAD");
        return;
    }
    dk__redis_reader_expect(rd, WATCHDOG_MS);
}

/* First connection: fill the replay windows from the newest entries. */
static void on_prefill(redisAsyncContext *ac, void *reply, void *privdata)
{
    redisReply *rep = reply;
    dk__redis_reader *rd = privdata;
    if (rep == NULL || dk__redis_reader_stopping(rd))
        return;
    rsse *s = dk__redis_reader_user(rd);
    dk__redis_reader_expect(rd, 0);
    if (rep->type == REDIS_REPLY_ERROR) {
        dk__redis_reader_fail(rd, rep->str);
        return;
    }
    snprintf(s->last_id, sizeof(s->last_id), "0-0");
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements > 0) {
        const redisReply *newest = rep->element[0];
        if (newest->type == REDIS_REPLY_ARRAY && newest->elements == 2 &&
            newest->element[0]->type == REDIS_REPLY_STRING)
            snprintf(s->last_id, sizeof(s->last_id), "%s", newest->element[0]->str);
        for (size_t i = rep->elements; i-- > 0;)
            deliver_entry(s, rep->element[i], true);
    }
    read_next(rd, ac);
}

static void on_ready(dk__redis_reader *rd, redisAsyncContext *ac, void *user)
{
    rsse *s = user;
    if (s->last_id[0] != '\0') {
        read_next(rd, ac); /* resume after the last entry seen */
        return;
    }
    if (redisAsyncCommand(ac, on_prefill, rd, "XREVRANGE %s + - COUNT %llu", STREAM,
                          (unsigned long long)s->stream_max) != REDIS_OK) {
        dk__redis_reader_fail(rd, "cannot send XREVRANGE");
        return;
    }
    dk__redis_reader_expect(rd, WATCHDOG_MS);
}

static void rs_destroy(void *user)
{
    free(user);
}

int dk__redis_sse_backend(dk__redis *r, dk_sse **sse_slot, size_t stream_max,
                          uint64_t replay_max_age_ms, dk_sse_backend *out)
{
    rsse *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return DK_ENOMEM;
    s->r = r;
    s->sse = sse_slot;
    s->stream_max = stream_max > 0 ? stream_max : 1;
    s->max_age_ms = replay_max_age_ms;
    memset(out, 0, sizeof(*out));
    out->publish_ordered = rs_publish;
    out->destroy = rs_destroy;
    out->user = s;
    return 0;
}

int dk__redis_sse_start(dk__redis *r, dk_sse_backend *b)
{
    return dk__redis_reader_start(r, "sse", on_ready, b->user) != NULL ? 0 : DK_ENOMEM;
}

#else
int dk__redis_sse_backend(dk__redis *r, dk_sse **sse_slot, size_t stream_max,
                          uint64_t replay_max_age_ms, dk_sse_backend *out)
{
    return DK_ESTATE;
}
int dk__redis_sse_start(dk__redis *r, dk_sse_backend *b) { return DK_ESTATE; }
#endif
