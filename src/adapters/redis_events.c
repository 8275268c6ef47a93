/* Events back end on Redis.
 *
 * emit: one script PUBLISHes {"o": instance, "e": name, "d": data, "t": ms}
 * on channel "donkey:events" and pushes the same record on the capped list
 * "donkey:events:history" (newest first), so dk_events_history() is the
 * cluster's history. Every instance SUBSCRIBEs (asynchronous reader on the
 * service loop) and hands other instances' events to
 * dk_events_deliver_remote(); its own are skipped. Pub/sub is at most once:
 * an instance that is disconnected from Redis misses what is emitted
 * meanwhile (the history still has it). */
#include "adapters/redis.h"
#include "base/internal.h"

#ifdef DK_HAVE_HIREDIS

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHANNEL "donkey:events"
#define HISTORY "donkey:events:history"

static const char PUBLISH_SCRIPT[] =
    "redis.call('PUBLISH', ARGV[1], ARGV[2])\n"
    "local n = tonumber(ARGV[3])\n"
    "if n > 0 then\n"
    "  redis.call('LPUSH', KEYS[1], ARGV[2])\n"
    "  redis.call('LTRIM', KEYS[1], 0, n - 1)\n"
    "end\n"
    "return 1\n";

typedef struct revents {
    dk__redis *r;
    dk_events **bus;
    size_t history_size;
    dk__redis_script script;
} revents;

static int re_publish(void *user, const char *event, const json_t *data, int64_t wall_ms)
{
    revents *e = user;
    json_t *msg = json_pack("{s:s, s:s, s:O, s:I}", "o", dk__redis_instance(e->r), "e", event,
                            "d", data != NULL ? data : json_null(), "t", (json_int_t)wall_ms);
    char *text = msg != NULL ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    if (text == NULL)
        return DK_ENOMEM;
    char n[24];
    snprintf(n, sizeof(n), "%zu", e->history_size);
    const char *argv[] = {HISTORY, CHANNEL, text, n};
    size_t len[] = {sizeof(HISTORY) - 1, sizeof(CHANNEL) - 1, strlen(text), strlen(n)};
    redisReply *rep = NULL;
    int rc = dk__redis_eval(e->r, &e->script, 1, 4, argv, len, &rep);
    freeReplyObject(rep);
    free(text);
    return rc;
}

static int re_history(void *user, const char *pattern, size_t limit, json_t **out)
{
    revents *e = user;
    *out = NULL;
    json_t *list = json_array();
    if (list == NULL)
        return DK_ENOMEM;
    if (limit == 0 || e->history_size == 0) {
        *out = list;
        return 0;
    }
    char stop[24];
    snprintf(stop, sizeof(stop), "%zu", e->history_size - 1);
    const char *argv[] = {"LRANGE", HISTORY, "0", stop};
    size_t len[] = {6, sizeof(HISTORY) - 1, 1, strlen(stop)};
    redisReply *rep = NULL;
    int rc = dk__redis_cmd(e->r, &rep, 4, argv, len);
    if (rc < 0) {
        json_decref(list);
        return rc;
    }
    /* Newest first in Redis; the result is oldest first. */
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
        if (json_array_size(list) >= limit)
            break;
        redisReply *el = rep->element[i];
        if (el->type != REDIS_REPLY_STRING)
            continue;
        json_t *msg = json_loadb(el->str, el->len, 0, NULL);
        const char *name = json_string_value(json_object_get(msg, "e"));
        if (name != NULL && dk__event_match(pattern, name)) {
            char ts[32];
            json_t *rec = json_pack("{s:s, s:O, s:s}", "event", name, "data",
                                    json_object_get(msg, "d") ? json_object_get(msg, "d")
                                                              : json_null(),
                                    "timestamp",
                                    dk_iso8601(json_integer_value(json_object_get(msg, "t")), ts,
                                               sizeof(ts)));
            if (rec == NULL || json_array_insert_new(list, 0, rec) != 0)
                rc = DK_ENOMEM;
        }
        json_decref(msg);
        if (rc < 0)
            break;
    }
    freeReplyObject(rep);
    if (rc < 0) {
        json_decref(list);
        return rc;
    }
    *out = list;
    return 0;
}

static void on_message(redisAsyncContext *ac, void *reply, void *privdata)
{
    redisReply *rep = reply;
    dk__redis_reader *rd = privdata;
    if (rep == NULL || dk__redis_reader_stopping(rd))
        return;
    revents *e = dk__redis_reader_user(rd);
    if (rep->type == REDIS_REPLY_ERROR) {
        dk__redis_reader_fail(rd, rep->str);
        return;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
        rep->element[0]->type != REDIS_REPLY_STRING ||
        strcmp(rep->element[0]->str, "message") != 0 ||
        rep->element[2]->type != REDIS_REPLY_STRING)
        return;
    json_t *msg = json_loadb(rep->element[2]->str, rep->element[2]->len, 0, NULL);
    const char *origin = json_string_value(json_object_get(msg, "o"));
    const char *name = json_string_value(json_object_get(msg, "e"));
    dk_events *bus = *e->bus;
    if (name != NULL && bus != NULL &&
        (origin == NULL || strcmp(origin, dk__redis_instance(e->r)) != 0))
        dk_events_deliver_remote(bus, name, json_object_get(msg, "d"));
    json_decref(msg);
}

static void on_ready(dk__redis_reader *rd, redisAsyncContext *ac, void *user)
{
    redisAsyncCommand(ac, on_message, rd, "SUBSCRIBE %s", CHANNEL);
}

static void re_destroy(void *user)
{
    free(user);
}

int dk__redis_events_backend(dk__redis *r, dk_events **bus_slot, size_t history_size,
                             dk_events_backend *out)
{
    revents *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return DK_ENOMEM;
    e->r = r;
    e->bus = bus_slot;
    e->history_size = history_size;
    dk__redis_script_init(&e->script, PUBLISH_SCRIPT);
    memset(out, 0, sizeof(*out));
    out->publish = re_publish;
    out->history = re_history;
    out->destroy = re_destroy;
    out->user = e;
    return 0;
}

int dk__redis_events_start(dk__redis *r, dk_events_backend *b)
{
    return dk__redis_reader_start(r, "events", on_ready, b->user) != NULL ? 0 : DK_ENOMEM;
}

#else
int dk__redis_events_backend(dk__redis *r, dk_events **bus_slot, size_t history_size,
                             dk_events_backend *out)
{
    return DK_ESTATE;
}
int dk__redis_events_start(dk__redis *r, dk_events_backend *b) { return DK_ESTATE; }
#endif
