/* Server-Sent Events: client registry, channels, replay windows, heartbeat.
 *
 * Locking. `send_lock` serialises everything that queues event frames
 * (broadcasts, targeted sends, heartbeats, the first frames of a new client),
 * so every client receives frames in the order of their sequence numbers and a
 * reconnecting client gets its replay before any newer event. `lock` guards
 * the registry and is only held for lookups and snapshots; stream writes
 * happen outside it. Order: send_lock, then lock. Stream close callbacks run
 * on the HTTP threads and take `lock` only. No user code (back end,
 * logger transports) runs under either lock. */
#include "donkey/sse.h"

#include <uv.h>

#include "donkey/loop.h"
#include "base/htab.h"
#include "base/internal.h"
#include "base/offload.h"
#include "base/stats.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHANNEL_MAX_LEN 256
#define PRUNE_EVERY_MS 1000

struct client;
struct channel;

/* A client's membership: the channel and the client's index in its subscriber array. */
struct member {
    struct channel *ch;
    uint32_t pos;
};

/* A channel's subscriber: the client and the index of this channel in its member array. */
struct sub {
    struct client *c;
    uint32_t pos;
};

struct client {
    dk__hnode node; /* first: id table (registered clients), hash = n */
    uint64_t n;
    int64_t created_ms;
    dk_sse *sse;
    dk_stream *stream;          /* one reference, released when the client is freed */
    struct client *prev, *next; /* every client not yet freed */
    struct member *mem;
    uint16_t nmem, capmem;
    bool registered;
    char *last_event_id;
    char *identity; /* dk_sse_accept_ex(): per-identity cap, dk_sse_close_identity() */
    char *session;  /* dk_sse_accept_ex(): dk_sse_close_session() */
};

struct entry {
    uint64_t seq;
    uint64_t t_ms;
    dk_buf *frame;
};

/* Replay window: a ring of frames in sequence order. */
struct ring {
    struct entry *e;
    size_t head, n, cap;
    size_t bytes;         /* frame bytes held */
    size_t *total;        /* the service's byte count over every window */
    uint64_t evicted_seq; /* highest sequence number dropped from the window */
};

struct channel {
    dk__hnode node; /* first: channel table, hash = dk__hash_str(name) */
    char *name;
    struct sub *subs;
    uint32_t nsubs, capsubs;
    struct ring ring;
};

struct snap {
    dk_stream *s;
    uint64_t n;
};

struct heartbeat {
    uv_timer_t timer;
    dk_sse *sse;
};

struct dk_sse {
    dk_sse_options o;
    dk_sse_backend backend;
    pthread_mutex_t send_lock;
    pthread_mutex_t lock;
    /* registry, under lock */
    dk__htab clients;  /* struct client by n (registered) */
    dk__htab channels; /* struct channel by name */
    struct client *all;
    struct ring global;
    uint64_t next_client;
    uint64_t dropped_seq; /* highest sequence number of freed channels, and of
                             events sent to channels that had no window */
    size_t replay_bytes;  /* frame bytes in every window together */
    uint64_t last_prune;
    /* under send_lock */
    uint64_t seq;
    uint64_t id_base; /* generated id = id_base + seq; set once in dk_sse_new() */
    struct snap *scratch;
    size_t scap;
    struct heartbeat *hb; /* owned by the service thread once started */
};

/* ------------------------------------------------------------------ */
/* Framing                                                             */

int dk_sse_check_field(const char *text)
{
    if (text != NULL && strpbrk(text, "\r\n") != NULL)
        return DK_EINVAL;
    return 0;
}

int dk_sse_format(const char *id, const char *event, const char *data, size_t len, dk_buf **out)
{
    *out = NULL;
    if (dk_sse_check_field(id) < 0 || dk_sse_check_field(event) < 0)
        return DK_EINVAL;
    if (data == NULL)
        len = 0;
    dk__buf b = {0};
    int rc = 0;
    if (id != NULL && id[0] != '\0') {
        rc |= dk__buf_appends(&b, "id: ");
        rc |= dk__buf_appends(&b, id);
        rc |= dk__buf_append(&b, "\n", 1);
    }
    rc |= dk__buf_appends(&b, "event: ");
    rc |= dk__buf_appends(&b, event != NULL ? event : "message");
    rc |= dk__buf_append(&b, "\n", 1);
    size_t start = 0;
    for (;;) {
        size_t j = start;
        while (j < len && data[j] != '\r' && data[j] != '\n')
            j++;
        rc |= dk__buf_append(&b, "data: ", 6);
        if (j > start) /* data may be NULL when len is 0 */
            rc |= dk__buf_append(&b, data + start, j - start);
        rc |= dk__buf_append(&b, "\n", 1);
        if (j == len)
            break;
        if (data[j] == '\r' && j + 1 < len && data[j + 1] == '\n')
            j++;
        start = j + 1;
    }
    rc |= dk__buf_append(&b, "\n", 1);
    if (rc == 0)
        *out = dk_buf_new(b.data, b.len);
    dk__buf_free(&b);
    return *out != NULL ? 0 : DK_ENOMEM;
}

/* The payload text of a JSON value: strings verbatim, anything else compact JSON. */
static char *payload_text(const json_t *data, size_t *len, bool *owned)
{
    if (data != NULL && json_is_string(data)) {
        *owned = false;
        *len = json_string_length(data);
        return (char *)json_string_value(data);
    }
    *owned = true;
    char *s = data != NULL ? json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("null");
    *len = s != NULL ? strlen(s) : 0;
    return s;
}

/* ------------------------------------------------------------------ */
/* Replay windows                                                      */

static size_t frame_len(const dk_buf *frame)
{
    size_t len;
    dk_buf_data(frame, &len);
    return len;
}

static void ring_evict(struct ring *r)
{
    struct entry *e = &r->e[r->head];
    size_t len = frame_len(e->frame);
    r->bytes -= len;
    if (r->total != NULL)
        *r->total -= len;
    r->evicted_seq = e->seq;
    dk_buf_unref(e->frame);
    r->head = (r->head + 1) % r->cap;
    r->n--;
}

static void ring_prune(struct ring *r, uint64_t now, uint64_t max_age)
{
    while (r->n > 0 && r->e[r->head].t_ms + max_age < now)
        ring_evict(r);
}

/* The window whose oldest frame is the oldest of all (NULL when all are
 * empty). Registry lock held. O(channels): only run over the total cap. */
static struct ring *oldest_ring(dk_sse *sse)
{
    struct ring *best = sse->global.n > 0 ? &sse->global : NULL;
    for (size_t i = 0; i < dk__htab_nbuckets(&sse->channels); i++) {
        for (dk__hnode *n = *dk__htab_bucket(&sse->channels, i); n != NULL; n = n->next) {
            struct ring *r = &((struct channel *)(void *)n)->ring;
            if (r->n > 0 && (best == NULL || r->e[r->head].seq < best->e[best->head].seq))
                best = r;
        }
    }
    return best;
}

/* Keeps `frame` in `r` within the count, per-window bytes and total bytes
 * caps, evicting the oldest frames (of this window, then of all windows for
 * the total). A frame that cannot fit is not kept: the window records the
 * gap, so a client resuming across it gets a reset. Registry lock held. */
static void ring_push(dk_sse *sse, struct ring *r, uint64_t seq, uint64_t now, dk_buf *frame)
{
    size_t max = sse->o.replay_max_events, len = frame_len(frame);
    size_t max_bytes = sse->o.replay_max_bytes, max_total = sse->o.replay_max_total_bytes;
    if (max == 0)
        return;
    if ((max_bytes > 0 && len > max_bytes) || (max_total > 0 && len > max_total)) {
        r->evicted_seq = seq;
        return;
    }
    while (r->n > 0 && (r->n >= max || (max_bytes > 0 && r->bytes + len > max_bytes)))
        ring_evict(r);
    while (max_total > 0 && sse->replay_bytes + len > max_total) {
        struct ring *old = oldest_ring(sse);
        if (old == NULL)
            break;
        ring_evict(old);
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        if (cap > max)
            cap = max;
        struct entry *e = malloc(cap * sizeof(*e));
        if (e == NULL) {
            /* Keep the window consistent: the event is simply not replayable. */
            r->evicted_seq = seq;
            return;
        }
        for (size_t i = 0; i < r->n; i++)
            e[i] = r->e[(r->head + i) % r->cap];
        free(r->e);
        r->e = e;
        r->cap = cap;
        r->head = 0;
    }
    r->e[(r->head + r->n) % r->cap] = (struct entry){seq, now, dk_buf_ref(frame)};
    r->n++;
    r->bytes += len;
    r->total = &sse->replay_bytes;
    sse->replay_bytes += len;
}

static void ring_free(struct ring *r)
{
    while (r->n > 0)
        ring_evict(r);
    free(r->e);
    memset(r, 0, sizeof(*r));
}

/* Whether `frame` starts with "id: <id>\n". */
static bool frame_has_id(const dk_buf *frame, const char *id, size_t idlen)
{
    size_t len;
    const char *p = dk_buf_data(frame, &len);
    return len > idlen + 4 && memcmp(p, "id: ", 4) == 0 && memcmp(p + 4, id, idlen) == 0 &&
           p[4 + idlen] == '\n';
}

static bool ring_find(const struct ring *r, const char *id, size_t idlen, uint64_t *seq)
{
    for (size_t i = r->n; i-- > 0;) {
        const struct entry *e = &r->e[(r->head + i) % r->cap];
        if (frame_has_id(e->frame, id, idlen)) {
            *seq = e->seq;
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------------ */
/* Registry                                                            */

/* The table node is each struct's first member. */
#define CLIENT(n) ((struct client *)(void *)(n))
#define CHANNEL(n) ((struct channel *)(void *)(n))

static struct channel *channel_find(dk_sse *sse, const char *name, uint64_t h)
{
    for (dk__hnode *n = *dk__htab_chain(&sse->channels, h); n != NULL; n = n->next)
        if (n->hash == h && strcmp(CHANNEL(n)->name, name) == 0)
            return CHANNEL(n);
    return NULL;
}

static struct channel *channel_get(dk_sse *sse, const char *name)
{
    uint64_t h = dk__hash_str(name);
    struct channel *ch = channel_find(sse, name, h);
    if (ch != NULL)
        return ch;
    ch = calloc(1, sizeof(*ch));
    if (ch == NULL)
        return NULL;
    ch->name = strdup(name);
    if (ch->name == NULL) {
        free(ch);
        return NULL;
    }
    dk__htab_add(&sse->channels, &ch->node, h);
    return ch;
}

static void channel_destroy(struct channel *ch)
{
    ring_free(&ch->ring);
    free(ch->subs);
    free(ch->name);
    free(ch);
}

/* Frees a channel nobody listens to and that has nothing left to replay. */
static void channel_release_if_idle(dk_sse *sse, struct channel *ch)
{
    if (ch->nsubs > 0 || ch->ring.n > 0)
        return;
    dk__htab_remove(&sse->channels, &ch->node);
    if (ch->ring.evicted_seq > sse->dropped_seq)
        sse->dropped_seq = ch->ring.evicted_seq;
    channel_destroy(ch);
}

static void prune_all(dk_sse *sse, uint64_t now)
{
    sse->last_prune = now;
    ring_prune(&sse->global, now, sse->o.replay_max_age_ms);
    for (size_t i = 0; i < dk__htab_nbuckets(&sse->channels); i++) {
        dk__hnode *n = *dk__htab_bucket(&sse->channels, i);
        while (n != NULL) {
            dk__hnode *next = n->next;
            ring_prune(&CHANNEL(n)->ring, now, sse->o.replay_max_age_ms);
            channel_release_if_idle(sse, CHANNEL(n));
            n = next;
        }
    }
}

static void maybe_prune(dk_sse *sse, uint64_t now)
{
    if (now - sse->last_prune >= PRUNE_EVERY_MS)
        prune_all(sse, now);
}

static int client_add_member(struct client *c, struct channel *ch)
{
    for (uint16_t i = 0; i < c->nmem; i++)
        if (c->mem[i].ch == ch)
            return 0;
    if (c->nmem == c->capmem) {
        uint16_t cap = c->capmem ? (uint16_t)(c->capmem * 2) : 4;
        struct member *m = realloc(c->mem, cap * sizeof(*m));
        if (m == NULL)
            return DK_ENOMEM;
        c->mem = m;
        c->capmem = cap;
    }
    if (ch->nsubs == ch->capsubs) {
        uint32_t cap = ch->capsubs ? ch->capsubs * 2 : 4;
        struct sub *s = realloc(ch->subs, cap * sizeof(*s));
        if (s == NULL)
            return DK_ENOMEM;
        ch->subs = s;
        ch->capsubs = cap;
    }
    ch->subs[ch->nsubs] = (struct sub){c, c->nmem};
    c->mem[c->nmem] = (struct member){ch, ch->nsubs};
    ch->nsubs++;
    c->nmem++;
    return 1;
}

static void client_drop_member(dk_sse *sse, struct client *c, uint16_t i)
{
    struct channel *ch = c->mem[i].ch;
    uint32_t pos = c->mem[i].pos;
    uint32_t last = --ch->nsubs;
    if (pos != last) {
        ch->subs[pos] = ch->subs[last];
        ch->subs[pos].c->mem[ch->subs[pos].pos].pos = pos;
    }
    uint16_t mlast = --c->nmem;
    if (i != mlast) {
        c->mem[i] = c->mem[mlast];
        c->mem[i].ch->subs[c->mem[i].pos].pos = i;
    }
    channel_release_if_idle(sse, ch);
}

static void client_insert(dk_sse *sse, struct client *c)
{
    dk__htab_add(&sse->clients, &c->node, c->n);
    c->registered = true;
}

/* Removes a registered client from the id table and its channels. The
 * struct stays (on the `all` list) until its stream's close callback. */
static void client_detach(dk_sse *sse, struct client *c)
{
    dk__htab_remove(&sse->clients, &c->node);
    while (c->nmem > 0)
        client_drop_member(sse, c, (uint16_t)(c->nmem - 1));
    c->registered = false;
}

static void client_free(struct client *c)
{
    dk_stream_unref(c->stream);
    free(c->mem);
    free(c->last_event_id);
    free(c->identity);
    free(c->session);
    free(c);
}

static void list_unlink(dk_sse *sse, struct client *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        sse->all = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
}

static void format_id(const struct client *c, char out[DK_SSE_ID_LEN])
{
    snprintf(out, DK_SSE_ID_LEN, "sse_%" PRIu64 "_%" PRId64, c->n, c->created_ms);
}

static bool parse_u64(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (*s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *p = s;
    *out = v;
    return true;
}

static struct client *client_find(dk_sse *sse, const char *id)
{
    if (id == NULL || strncmp(id, "sse_", 4) != 0)
        return NULL;
    const char *p = id + 4;
    uint64_t n, ms;
    if (!parse_u64(&p, &n) || *p++ != '_' || !parse_u64(&p, &ms) || *p != '\0')
        return NULL;
    for (dk__hnode *h = *dk__htab_chain(&sse->clients, n); h != NULL; h = h->next)
        if (CLIENT(h)->n == n && (uint64_t)CLIENT(h)->created_ms == ms)
            return CLIENT(h);
    return NULL;
}

static json_t *client_json(const struct client *c)
{
    char id[DK_SSE_ID_LEN], when[32];
    format_id(c, id);
    dk_iso8601(c->created_ms, when, sizeof(when));
    json_t *chans = json_array();
    for (uint16_t i = 0; chans != NULL && i < c->nmem; i++)
        json_array_append_new(chans, json_string(c->mem[i].ch->name));
    json_t *last = c->last_event_id ? json_string(c->last_event_id) : json_null();
    return json_pack("{s:s, s:o*, s:s, s:o*}", "id", id, "channels", chans, "createdAt", when,
                     "lastEventId", last);
}

/* ------------------------------------------------------------------ */
/* Delivery                                                            */

static int scratch_reserve(dk_sse *sse, size_t n)
{
    if (n <= sse->scap)
        return 0;
    size_t cap = sse->scap ? sse->scap : 64;
    while (cap < n)
        cap *= 2;
    struct snap *s = realloc(sse->scratch, cap * sizeof(*s));
    if (s == NULL)
        return DK_ENOMEM;
    sse->scratch = s;
    sse->scap = cap;
    return 0;
}

static size_t snapshot_add(dk_sse *sse, size_t k, struct client *c)
{
    sse->scratch[k].s = dk_stream_ref(c->stream);
    sse->scratch[k].n = c->n;
    return k + 1;
}

/* Snapshot of every registered client, or of `ch`'s subscribers. Lock held. */
static int snapshot(dk_sse *sse, struct channel *ch, bool everyone, size_t *out_n)
{
    size_t k = 0;
    *out_n = 0;
    if (ch != NULL) {
        if (scratch_reserve(sse, ch->nsubs) < 0)
            return DK_ENOMEM;
        for (uint32_t i = 0; i < ch->nsubs; i++)
            k = snapshot_add(sse, k, ch->subs[i].c);
    } else if (everyone) {
        if (scratch_reserve(sse, sse->clients.count) < 0)
            return DK_ENOMEM;
        for (size_t i = 0; i < dk__htab_nbuckets(&sse->clients); i++)
            for (dk__hnode *h = *dk__htab_bucket(&sse->clients, i); h != NULL; h = h->next)
                k = snapshot_add(sse, k, CLIENT(h));
    }
    *out_n = k;
    return 0;
}

/* Failed writes collected while send_lock is held, handled after it. */
struct failures {
    uint64_t *n;
    size_t len, cap;
    size_t overflowed;
};

static void failures_add(struct failures *f, uint64_t n, int rc)
{
    if (rc == DK_ELIMIT)
        f->overflowed++;
    if (f->len == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        uint64_t *p = realloc(f->n, cap * sizeof(*p));
        if (p == NULL)
            return; /* the stream's close callback removes the client anyway */
        f->n = p;
        f->cap = cap;
    }
    f->n[f->len++] = n;
}

/* Writes `frame` to the `k` snapshotted streams and releases them. send_lock held. */
static size_t write_snapshot(dk_sse *sse, size_t k, dk_buf *frame, struct failures *f)
{
    size_t sent = 0;
    for (size_t i = 0; i < k; i++) {
        int rc = dk_stream_write_buf(sse->scratch[i].s, frame);
        if (rc == 0)
            sent++;
        else
            failures_add(f, sse->scratch[i].n, rc);
        dk_stream_unref(sse->scratch[i].s);
    }
    return sent;
}

static void remove_by_n(dk_sse *sse, uint64_t n)
{
    dk_stream *s = NULL;
    pthread_mutex_lock(&sse->lock);
    for (dk__hnode *h = *dk__htab_chain(&sse->clients, n); h != NULL; h = h->next) {
        struct client *c = CLIENT(h);
        if (c->n == n) {
            client_detach(sse, c);
            s = dk_stream_ref(c->stream);
            break;
        }
    }
    pthread_mutex_unlock(&sse->lock);
    if (s != NULL) {
        dk_stream_close(s);
        dk_stream_unref(s);
    }
}

/* After send_lock is released: forget clients whose write failed, then log. */
static void failures_finish(dk_sse *sse, struct failures *f)
{
    for (size_t i = 0; i < f->len; i++)
        remove_by_n(sse, f->n[i]);
    if (f->overflowed > 0 && sse->o.logger != NULL)
        dk_logf(sse->o.logger, DK_LOG_WARN,
                "SSE: %zu slow client(s) disconnected (send buffer over %zu bytes)", f->overflowed,
                sse->o.send_limit);
    free(f->n);
}

static bool valid_channel(const char *name)
{
    if (name == NULL || name[0] == '\0')
        return false;
    return strnlen(name, CHANNEL_MAX_LEN + 1) <= CHANNEL_MAX_LEN;
}

/* Broadcast core: `channel` NULL means every client (global window). */
static int deliver_now(dk_sse *sse, const char *channel, const char *event, const char *data,
                       size_t len, const char *id, bool publish)
{
    if (channel != NULL && !valid_channel(channel))
        return DK_EINVAL;
    if (dk_sse_check_field(event) < 0 || dk_sse_check_field(id) < 0)
        return DK_EINVAL;
    struct failures f = {0};
    char idbuf[24];
    dk_buf *frame = NULL;

    pthread_mutex_lock(&sse->send_lock);
    uint64_t seq = sse->seq + 1;
    const char *use_id = id;
    char cluster_id[DK_SSE_ID_LEN];
    cluster_id[0] = '\0';
    if (publish && sse->backend.publish_ordered != NULL) {
        /* The shared store orders broadcasts (and may name them) before
         * anyone sees them; see dk_sse_backend.publish_ordered. */
        int prc = sse->backend.publish_ordered(sse->backend.user, channel, event, data, len, id,
                                               cluster_id, sizeof(cluster_id));
        if (prc < 0) {
            pthread_mutex_unlock(&sse->send_lock);
            if (sse->o.logger != NULL)
                dk_logf(sse->o.logger, DK_LOG_WARN, "SSE: back end publish failed: %s",
                        dk_strerror(prc));
            return prc;
        }
        cluster_id[sizeof(cluster_id) - 1] = '\0';
        if ((id == NULL || id[0] == '\0') && cluster_id[0] != '\0' &&
            dk_sse_check_field(cluster_id) == 0)
            use_id = cluster_id;
    }
    if ((use_id == NULL || use_id[0] == '\0') && sse->o.auto_ids) {
        snprintf(idbuf, sizeof(idbuf), "%" PRIu64, sse->id_base + seq);
        use_id = idbuf;
    }
    int rc = dk_sse_format(use_id, event, data, len, &frame);
    if (rc < 0) {
        pthread_mutex_unlock(&sse->send_lock);
        return rc;
    }
    sse->seq = seq;
    uint64_t now = dk_now_ms();
    size_t k = 0;
    pthread_mutex_lock(&sse->lock);
    maybe_prune(sse, now);
    struct channel *ch = NULL;
    struct ring *ring = &sse->global;
    if (channel != NULL) {
        uint64_t h = dk__hash_str(channel);
        ch = channel_find(sse, channel, h);
        /* A channel nobody listens to gets no window unless asked: arbitrary
         * channel names must not cost memory. Clients that resume across
         * this event get a reset (dropped_seq). */
        if (ch == NULL && sse->o.replay_max_events > 0 && sse->o.replay_idle_channels)
            ch = channel_get(sse, channel);
        else if (ch == NULL && seq > sse->dropped_seq)
            sse->dropped_seq = seq;
        ring = ch != NULL ? &ch->ring : NULL;
    }
    if (ring != NULL) {
        ring_prune(ring, now, sse->o.replay_max_age_ms);
        ring_push(sse, ring, seq, now, frame);
    }
    if (channel == NULL || ch != NULL)
        rc = snapshot(sse, ch, channel == NULL, &k);
    pthread_mutex_unlock(&sse->lock);
    size_t sent = write_snapshot(sse, k, frame, &f);
    pthread_mutex_unlock(&sse->send_lock);

    dk_buf_unref(frame);
    failures_finish(sse, &f);
    if (rc < 0)
        return rc;
    if (publish && sse->backend.publish != NULL && sse->backend.publish_ordered == NULL) {
        int prc = sse->backend.publish(sse->backend.user, channel, event, data, len, use_id);
        if (prc < 0 && sse->o.logger != NULL)
            dk_logf(sse->o.logger, DK_LOG_ERROR, "SSE: back end publish failed: %s",
                    dk_strerror(prc));
    }
    return sent > INT32_MAX ? INT32_MAX : (int)sent;
}

/* Publishing to a shared back end (Redis) waits for it while holding
 * send_lock, so from a request's fiber the whole broadcast runs on an I/O
 * thread (src/base/offload.h): a suspended fiber never holds the lock. */
typedef struct deliver_call {
    dk_sse *sse;
    const char *channel, *event, *data, *id;
    size_t len;
    bool publish;
} deliver_call;

static int deliver_run(void *arg)
{
    deliver_call *c = arg;
    return deliver_now(c->sse, c->channel, c->event, c->data, c->len, c->id, c->publish);
}

static int deliver(dk_sse *sse, const char *channel, const char *event, const char *data,
                   size_t len, const char *id, bool publish)
{
    if (publish && (sse->backend.publish_ordered != NULL || sse->backend.publish != NULL)) {
        deliver_call c = {sse, channel, event, data, id, len, publish};
        return dk__offload(DK__POOL_IO, deliver_run, &c);
    }
    return deliver_now(sse, channel, event, data, len, id, publish);
}

static int deliver_json(dk_sse *sse, const char *channel, const char *event, const json_t *data,
                        const char *id)
{
    size_t len;
    bool owned;
    char *text = payload_text(data, &len, &owned);
    if (text == NULL)
        return DK_ENOMEM;
    int rc = deliver(sse, channel, event, text, len, id, true);
    if (owned)
        free(text);
    return rc;
}

int dk_sse_broadcast(dk_sse *sse, const char *channel, const char *event, const json_t *data,
                     const char *id)
{
    if (channel == NULL)
        return DK_EINVAL;
    return deliver_json(sse, channel, event, data, id);
}

int dk_sse_broadcast_text(dk_sse *sse, const char *channel, const char *event, const char *data,
                          size_t len, const char *id)
{
    if (channel == NULL)
        return DK_EINVAL;
    return deliver(sse, channel, event, data, len, id, true);
}

int dk_sse_broadcast_all(dk_sse *sse, const char *event, const json_t *data, const char *id)
{
    return deliver_json(sse, NULL, event, data, id);
}

int dk_sse_deliver_remote(dk_sse *sse, const char *channel, const char *event, const char *data,
                          size_t len, const char *id)
{
    return deliver(sse, channel, event, data, len, id, false);
}

int dk_sse_send(dk_sse *sse, const char *client_id, const char *event, const json_t *data,
                const char *id)
{
    if (dk_sse_check_field(event) < 0 || dk_sse_check_field(id) < 0)
        return DK_EINVAL;
    size_t len;
    bool owned;
    char *text = payload_text(data, &len, &owned);
    if (text == NULL)
        return DK_ENOMEM;
    dk_buf *frame = NULL;
    int rc = dk_sse_format(id, event, text, len, &frame);
    if (owned)
        free(text);
    if (rc < 0)
        return rc;

    pthread_mutex_lock(&sse->send_lock);
    pthread_mutex_lock(&sse->lock);
    struct client *c = client_find(sse, client_id);
    dk_stream *s = c != NULL ? dk_stream_ref(c->stream) : NULL;
    uint64_t n = c != NULL ? c->n : 0;
    pthread_mutex_unlock(&sse->lock);
    if (s != NULL) {
        rc = dk_stream_write_buf(s, frame);
        dk_stream_unref(s);
    }
    pthread_mutex_unlock(&sse->send_lock);
    dk_buf_unref(frame);
    if (s == NULL)
        return DK_ENOTFOUND;
    if (rc < 0) {
        remove_by_n(sse, n);
        return DK_ESTATE;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Heartbeat                                                           */

static void heartbeat_tick(uv_timer_t *t)
{
    struct heartbeat *hb = t->data;
    dk_sse *sse = hb->sse;
    char text[64];
    int len = snprintf(text, sizeof(text), ": heartbeat %" PRId64 "\n\n", dk_wall_ms());
    dk_buf *frame = dk_buf_new(text, (size_t)len);
    if (frame == NULL)
        return;
    struct failures f = {0};
    size_t k = 0;
    pthread_mutex_lock(&sse->send_lock);
    pthread_mutex_lock(&sse->lock);
    prune_all(sse, dk_now_ms());
    snapshot(sse, NULL, true, &k);
    pthread_mutex_unlock(&sse->lock);
    write_snapshot(sse, k, frame, &f);
    pthread_mutex_unlock(&sse->send_lock);
    dk_buf_unref(frame);
    failures_finish(sse, &f);
}

static void heartbeat_start(void *arg)
{
    struct heartbeat *hb = arg;
    uv_timer_init(dk_loop_uv(hb->sse->o.loop), &hb->timer);
    hb->timer.data = hb;
    uv_timer_start(&hb->timer, heartbeat_tick, hb->sse->o.heartbeat_ms, hb->sse->o.heartbeat_ms);
}

static void heartbeat_closed(uv_handle_t *h) { free(h->data); }

static void heartbeat_stop(void *arg)
{
    struct heartbeat *hb = arg;
    uv_timer_stop(&hb->timer);
    uv_close((uv_handle_t *)&hb->timer, heartbeat_closed);
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                          */

void dk_sse_options_init(dk_sse_options *o)
{
    memset(o, 0, sizeof(*o));
    o->heartbeat_ms = 30000;
    o->retry_ms = 3000;
    o->replay_max_events = 1000;
    o->replay_max_age_ms = 5 * 60 * 1000;
    o->send_limit = 256 * 1024;
    o->max_clients = 10000;
    o->max_clients_per_channel = 10000;
    o->max_channels_per_client = 64;
    o->auto_ids = true;
    o->replay_max_bytes = 1024 * 1024;
    o->replay_max_total_bytes = 64 * 1024 * 1024;
}

dk_sse *dk_sse_new(const dk_sse_options *opts)
{
    dk_sse *sse = calloc(1, sizeof(*sse));
    if (sse == NULL)
        goto fail;
    if (opts != NULL)
        sse->o = *opts;
    else
        dk_sse_options_init(&sse->o);
    if (sse->o.backend != NULL)
        sse->backend = *sse->o.backend;
    sse->o.backend = NULL;
    if (sse->o.max_channels_per_client == 0 || sse->o.max_channels_per_client > UINT16_MAX / 2)
        sse->o.max_channels_per_client = UINT16_MAX / 2;
    if (dk__htab_init(&sse->clients, 64) < 0 || dk__htab_init(&sse->channels, 64) < 0)
        goto fail_tables;
    if (pthread_mutex_init(&sse->lock, NULL) != 0)
        goto fail_tables;
    if (pthread_mutex_init(&sse->send_lock, NULL) != 0)
        goto fail_lock;
    sse->last_prune = dk_now_ms();
    /* Generated ids start above the boot time in microsecond-sized steps
     * (about 1.8e15 today, below 2^53 until 2255), so they keep increasing
     * across restarts and an id from an earlier run (lower than every id of
     * this one) gets a reset instead of a replay that would skip events. */
    int64_t boot_ms = dk_wall_ms();
    sse->id_base = boot_ms > 0 ? (uint64_t)boot_ms * 1000 : 0;
    if (sse->o.loop != NULL && sse->o.heartbeat_ms > 0) {
        struct heartbeat *hb = calloc(1, sizeof(*hb));
        if (hb == NULL)
            goto fail_send_lock;
        hb->sse = sse;
        if (dk_loop_post(sse->o.loop, heartbeat_start, hb) < 0) {
            free(hb);
            goto fail_send_lock;
        }
        sse->hb = hb;
    }
    return sse;

fail_send_lock:
    pthread_mutex_destroy(&sse->send_lock);
fail_lock:
    pthread_mutex_destroy(&sse->lock);
fail_tables:
    dk__htab_free(&sse->clients);
    dk__htab_free(&sse->channels);
    if (sse->backend.destroy != NULL)
        sse->backend.destroy(sse->backend.user);
    free(sse);
    return NULL;
fail:
    if (opts != NULL && opts->backend != NULL && opts->backend->destroy != NULL)
        opts->backend->destroy(opts->backend->user);
    return NULL;
}

void dk_sse_shutdown(dk_sse *sse)
{
    if (sse == NULL)
        return;
    /* Stop the timer first and without locks: a tick may be waiting for them. */
    pthread_mutex_lock(&sse->lock);
    struct heartbeat *hb = sse->hb;
    sse->hb = NULL;
    pthread_mutex_unlock(&sse->lock);
    if (hb != NULL)
        dk_loop_call(sse->o.loop, heartbeat_stop, hb);

    pthread_mutex_lock(&sse->send_lock);
    pthread_mutex_lock(&sse->lock);
    size_t k = 0;
    snapshot(sse, NULL, true, &k);
    /* If the snapshot failed for memory, closing the registered clients one by
     * one still ends every stream. */
    for (struct client *c = sse->all; c != NULL; c = c->next) {
        if (c->registered) {
            client_detach(sse, c);
            if (k == 0)
                dk_stream_close(c->stream);
        }
    }
    pthread_mutex_unlock(&sse->lock);
    for (size_t i = 0; i < k; i++) {
        dk_stream_close(sse->scratch[i].s);
        dk_stream_unref(sse->scratch[i].s);
    }
    pthread_mutex_unlock(&sse->send_lock);
}

void dk_sse_free(dk_sse *sse)
{
    if (sse == NULL)
        return;
    dk_sse_shutdown(sse);
    struct client *c = sse->all;
    while (c != NULL) {
        struct client *next = c->next;
        client_free(c);
        c = next;
    }
    for (size_t i = 0; i < dk__htab_nbuckets(&sse->channels); i++) {
        dk__hnode *n = *dk__htab_bucket(&sse->channels, i);
        while (n != NULL) {
            dk__hnode *next = n->next;
            channel_destroy(CHANNEL(n));
            n = next;
        }
    }
    ring_free(&sse->global);
    dk__htab_free(&sse->channels);
    dk__htab_free(&sse->clients);
    free(sse->scratch);
    pthread_mutex_destroy(&sse->send_lock);
    pthread_mutex_destroy(&sse->lock);
    if (sse->backend.destroy != NULL)
        sse->backend.destroy(sse->backend.user);
    free(sse);
}

/* ------------------------------------------------------------------ */
/* Clients                                                             */

static void on_stream_close(dk_stream *stream, void *user)
{
    struct client *c = user;
    dk_sse *sse = c->sse;
    pthread_mutex_lock(&sse->lock);
    if (c->registered)
        client_detach(sse, c);
    list_unlink(sse, c);
    pthread_mutex_unlock(&sse->lock);
    client_free(c);
}

static int entry_cmp(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void collect_ring(const struct ring *r, uint64_t after, struct entry *out, size_t *k)
{
    for (size_t i = 0; i < r->n; i++) {
        const struct entry *e = &r->e[(r->head + i) % r->cap];
        if (e->seq > after)
            out[(*k)++] = (struct entry){e->seq, e->t_ms, dk_buf_ref(e->frame)};
    }
}

/* The frames a client resuming after `last` missed on its channels and on the
 * global window, in order. Sets *reset when some of them are gone. Registry
 * lock and send_lock held. */
static int replay_collect(dk_sse *sse, const struct client *c, const char *last, struct entry **out,
                          size_t *nout, bool *reset)
{
    uint64_t now = dk_now_ms(), after = 0;
    size_t idlen = strlen(last), total = sse->global.n;
    bool found = false;
    *out = NULL;
    *nout = 0;
    *reset = false;
    ring_prune(&sse->global, now, sse->o.replay_max_age_ms);
    found = ring_find(&sse->global, last, idlen, &after);
    for (uint16_t i = 0; i < c->nmem; i++) {
        struct ring *r = &c->mem[i].ch->ring;
        ring_prune(r, now, sse->o.replay_max_age_ms);
        total += r->n;
        uint64_t s;
        if (!found && ring_find(r, last, idlen, &s)) {
            after = s;
            found = true;
        }
    }
    if (!found) {
        const char *p = last;
        uint64_t v;
        /* A generated id of this run; one from an earlier run is below id_base. */
        if (sse->o.auto_ids && parse_u64(&p, &v) && *p == '\0' && v > sse->id_base &&
            v - sse->id_base <= sse->seq) {
            after = v - sse->id_base;
        } else {
            *reset = true;
            return 0;
        }
    }
    bool gap = sse->global.evicted_seq > after;
    for (uint16_t i = 0; i < c->nmem && !gap; i++) {
        const struct ring *r = &c->mem[i].ch->ring;
        gap = r->evicted_seq > after || (r->n == 0 && sse->dropped_seq > after);
    }
    if (gap) {
        *reset = true;
        return 0;
    }
    if (total == 0)
        return 0;
    struct entry *e = malloc(total * sizeof(*e));
    if (e == NULL)
        return DK_ENOMEM;
    size_t k = 0;
    collect_ring(&sse->global, after, e, &k);
    for (uint16_t i = 0; i < c->nmem; i++)
        collect_ring(&c->mem[i].ch->ring, after, e, &k);
    qsort(e, k, sizeof(*e), entry_cmp);
    *out = e;
    *nout = k;
    return 0;
}

static const char reset_frame[] = "event: reset\ndata: {\"reason\":\"replay_unavailable\"}\n\n";

/* Registered clients opened by `identity`. Registry lock held. O(clients). */
static size_t identity_count(dk_sse *sse, const char *identity)
{
    size_t k = 0;
    for (struct client *c = sse->all; c != NULL; c = c->next)
        if (c->registered && c->identity != NULL && strcmp(c->identity, identity) == 0)
            k++;
    return k;
}

int dk_sse_accept(dk_sse *sse, dk_ctx *ctx, dk_request *req, dk_response *res,
                  const char *const *channels, size_t n, char out_id[DK_SSE_ID_LEN])
{
    return dk_sse_accept_ex(sse, ctx, req, res, channels, n, NULL, out_id);
}

int dk_sse_accept_ex(dk_sse *sse, dk_ctx *ctx, dk_request *req, dk_response *res,
                     const char *const *channels, size_t n, const dk_sse_accept_options *ao,
                     char out_id[DK_SSE_ID_LEN])
{
    if (n > 0 && channels == NULL)
        return DK_EINVAL;
    const char *identity = ao != NULL ? ao->identity : NULL;
    size_t per_identity =
        ao != NULL && ao->max_per_identity > 0 ? ao->max_per_identity : sse->o.max_per_identity;
    for (size_t i = 0; i < n; i++)
        if (!valid_channel(channels[i]))
            return dk_fail(ctx, DK_HTTP_BAD_REQUEST, "Invalid channel name");
    if (n > sse->o.max_channels_per_client)
        return dk_fail(ctx, DK_HTTP_BAD_REQUEST, "Too many channels (at most %zu)",
                       sse->o.max_channels_per_client);
    const char *last = req != NULL ? dk_request_header(req, "last-event-id") : NULL;
    if (last != NULL && last[0] == '\0')
        last = NULL;

    struct client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return DK_ENOMEM;
    c->sse = sse;
    if (n > 0) {
        c->mem = malloc(n * sizeof(*c->mem));
        c->capmem = (uint16_t)n;
    }
    if (last != NULL)
        c->last_event_id = strdup(last);
    if (identity != NULL)
        c->identity = strdup(identity);
    if (ao != NULL && ao->session != NULL)
        c->session = strdup(ao->session);
    if ((n > 0 && c->mem == NULL) || (last != NULL && c->last_event_id == NULL) ||
        (identity != NULL && c->identity == NULL) ||
        (ao != NULL && ao->session != NULL && c->session == NULL)) {
        client_free(c);
        return DK_ENOMEM;
    }

    /* send_lock keeps broadcasts out until the retry frame and the replay are
     * queued, and serialises accepts so the limits checked here still hold. */
    pthread_mutex_lock(&sse->send_lock);
    pthread_mutex_lock(&sse->lock);
    const char *full = NULL;
    if (sse->o.max_clients > 0 && sse->clients.count >= sse->o.max_clients)
        full = "Too many SSE clients";
    for (size_t i = 0; i < n && full == NULL; i++) {
        struct channel *ch = channel_find(sse, channels[i], dk__hash_str(channels[i]));
        if (ch != NULL && sse->o.max_clients_per_channel > 0 &&
            ch->nsubs >= sse->o.max_clients_per_channel)
            full = "Too many SSE clients on this channel";
    }
    /* Over its own cap, the new stream is refused (the open ones keep
     * working): an EventSource does not retry a 429, so tabs do not evict
     * each other in a loop. */
    bool mine = full == NULL && identity != NULL && per_identity > 0 &&
                identity_count(sse, identity) >= per_identity;
    pthread_mutex_unlock(&sse->lock);
    if (mine) {
        pthread_mutex_unlock(&sse->send_lock);
        client_free(c);
        return dk_fail_details(
            ctx, DK_HTTP_TOO_MANY_REQUESTS,
            dk_ctx_printf(ctx, "Too many open event streams (at most %zu)", per_identity),
            json_pack("{s:I}", "limit", (json_int_t)per_identity));
    }
    if (full != NULL) {
        pthread_mutex_unlock(&sse->send_lock);
        client_free(c);
        return dk_fail(ctx, DK_HTTP_SERVICE_UNAVAILABLE, "%s", full);
    }
    c->stream = dk_response_stream(res);
    if (c->stream == NULL) {
        pthread_mutex_unlock(&sse->send_lock);
        client_free(c);
        return DK_ENOMEM;
    }
    dk_stream_set_limit(c->stream, sse->o.send_limit);
    dk_stream_set_long_lived(c->stream, true);

    struct entry *replay = NULL;
    size_t nreplay = 0;
    bool reset = false;
    int rc = 0;
    pthread_mutex_lock(&sse->lock);
    c->n = ++sse->next_client;
    c->created_ms = dk_wall_ms();
    client_insert(sse, c);
    c->next = sse->all;
    if (sse->all != NULL)
        sse->all->prev = c;
    sse->all = c;
    for (size_t i = 0; i < n && rc >= 0; i++) {
        struct channel *ch = channel_get(sse, channels[i]);
        rc = ch != NULL ? client_add_member(c, ch) : DK_ENOMEM;
        if (ch != NULL && rc < 0)
            channel_release_if_idle(sse, ch);
    }
    if (rc >= 0 && last != NULL)
        rc = replay_collect(sse, c, last, &replay, &nreplay, &reset);
    if (rc < 0) {
        client_detach(sse, c);
        list_unlink(sse, c);
    }
    pthread_mutex_unlock(&sse->lock);
    if (rc < 0) {
        pthread_mutex_unlock(&sse->send_lock);
        dk_stream_close(c->stream);
        client_free(c);
        return rc;
    }
    dk_stream_on_close(c->stream, on_stream_close, c);

    char id[DK_SSE_ID_LEN];
    format_id(c, id);
    dk_response_set_status(res, 200);
    dk_response_set_header(res, "Content-Type", "text/event-stream");
    dk_response_set_header(res, "Cache-Control", "no-cache");
    dk_response_set_header(res, "X-SSE-Client-Id", id);
    dk_response_set_header(res, "X-Accel-Buffering", "no");

    /* The replay is queued before anything can be flushed; the frames are
     * shared with the windows, so allow for them on top of the send limit
     * rather than cutting off a client that is catching up. */
    size_t replay_bytes = 0;
    for (size_t i = 0; i < nreplay; i++) {
        size_t len;
        dk_buf_data(replay[i].frame, &len);
        replay_bytes += len;
    }
    if (replay_bytes > 0)
        dk_stream_set_limit(c->stream, sse->o.send_limit + replay_bytes);

    char retry[48];
    int rlen = snprintf(retry, sizeof(retry), "retry: %" PRIu64 "\n\n", sse->o.retry_ms);
    dk_stream_write(c->stream, retry, (size_t)rlen);
    if (reset)
        dk_stream_write(c->stream, reset_frame, sizeof(reset_frame) - 1);
    for (size_t i = 0; i < nreplay; i++)
        dk_stream_write_buf(c->stream, replay[i].frame);
    pthread_mutex_unlock(&sse->send_lock);

    for (size_t i = 0; i < nreplay; i++)
        dk_buf_unref(replay[i].frame);
    free(replay);
    if (out_id != NULL)
        memcpy(out_id, id, sizeof(id));
    return 0;
}

int dk_sse_remove(dk_sse *sse, const char *client_id)
{
    pthread_mutex_lock(&sse->lock);
    struct client *c = client_find(sse, client_id);
    dk_stream *s = NULL;
    if (c != NULL) {
        client_detach(sse, c);
        s = dk_stream_ref(c->stream);
    }
    pthread_mutex_unlock(&sse->lock);
    if (s == NULL)
        return DK_ENOTFOUND;
    dk_stream_close(s);
    dk_stream_unref(s);
    return 0;
}

/* Closes every registered client whose identity (or session) is `key`. */
static int close_where(dk_sse *sse, const char *key, bool by_session)
{
    if (key == NULL)
        return DK_EINVAL;
    dk_stream **s = NULL;
    size_t k = 0, cap = 0;
    int rc = 0;
    pthread_mutex_lock(&sse->lock);
    for (struct client *c = sse->all; c != NULL; c = c->next) {
        const char *v = by_session ? c->session : c->identity;
        if (!c->registered || v == NULL || strcmp(v, key) != 0)
            continue;
        if (k == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            dk_stream **p = realloc(s, ncap * sizeof(*p));
            if (p == NULL) {
                rc = DK_ENOMEM; /* the ones collected so far are still closed */
                break;
            }
            s = p;
            cap = ncap;
        }
        client_detach(sse, c);
        s[k++] = dk_stream_ref(c->stream);
    }
    pthread_mutex_unlock(&sse->lock);
    for (size_t i = 0; i < k; i++) {
        dk_stream_close(s[i]);
        dk_stream_unref(s[i]);
    }
    free(s);
    return rc < 0 ? rc : (k > INT32_MAX ? INT32_MAX : (int)k);
}

int dk_sse_close_identity(dk_sse *sse, const char *identity)
{
    return close_where(sse, identity, false);
}

int dk_sse_close_session(dk_sse *sse, const char *session)
{
    return close_where(sse, session, true);
}

size_t dk_sse_replay_bytes(dk_sse *sse)
{
    pthread_mutex_lock(&sse->lock);
    size_t n = sse->replay_bytes;
    pthread_mutex_unlock(&sse->lock);
    return n;
}

int dk_sse_get(dk_sse *sse, const char *client_id, json_t **out)
{
    *out = NULL;
    pthread_mutex_lock(&sse->lock);
    struct client *c = client_find(sse, client_id);
    if (c != NULL)
        *out = client_json(c);
    pthread_mutex_unlock(&sse->lock);
    if (c == NULL)
        return DK_ENOTFOUND;
    return *out != NULL ? 0 : DK_ENOMEM;
}

static int client_member_index(const struct client *c, const struct channel *ch)
{
    for (uint16_t i = 0; i < c->nmem; i++)
        if (c->mem[i].ch == ch)
            return i;
    return -1;
}

int dk_sse_subscribe(dk_sse *sse, const char *client_id, const char *channel)
{
    if (!valid_channel(channel))
        return DK_EINVAL;
    int rc = 0;
    pthread_mutex_lock(&sse->lock);
    struct client *c = client_find(sse, client_id);
    struct channel *ch = channel != NULL ? channel_find(sse, channel, dk__hash_str(channel)) : NULL;
    if (c == NULL) {
        rc = DK_ENOTFOUND;
    } else if (ch != NULL && client_member_index(c, ch) >= 0) {
        rc = 0;
    } else if (c->nmem >= sse->o.max_channels_per_client ||
               (ch != NULL && sse->o.max_clients_per_channel > 0 &&
                ch->nsubs >= sse->o.max_clients_per_channel)) {
        rc = DK_ELIMIT;
    } else {
        ch = channel_get(sse, channel);
        rc = ch != NULL ? client_add_member(c, ch) : DK_ENOMEM;
        if (ch != NULL && rc < 0)
            channel_release_if_idle(sse, ch);
    }
    pthread_mutex_unlock(&sse->lock);
    return rc < 0 ? rc : 0;
}

int dk_sse_unsubscribe(dk_sse *sse, const char *client_id, const char *channel)
{
    int rc = 0;
    pthread_mutex_lock(&sse->lock);
    struct client *c = client_find(sse, client_id);
    struct channel *ch =
        valid_channel(channel) ? channel_find(sse, channel, dk__hash_str(channel)) : NULL;
    if (c == NULL) {
        rc = DK_ENOTFOUND;
    } else if (ch != NULL) {
        int i = client_member_index(c, ch);
        if (i >= 0) {
            client_drop_member(sse, c, (uint16_t)i);
            rc = 1;
        }
    }
    pthread_mutex_unlock(&sse->lock);
    return rc;
}

json_t *dk_sse_clients(dk_sse *sse, const char *channel)
{
    json_t *arr = json_array();
    if (arr == NULL)
        return NULL;
    bool ok = true;
    pthread_mutex_lock(&sse->lock);
    if (channel != NULL) {
        struct channel *ch =
            valid_channel(channel) ? channel_find(sse, channel, dk__hash_str(channel)) : NULL;
        for (uint32_t i = 0; ch != NULL && ok && i < ch->nsubs; i++)
            ok = json_array_append_new(arr, client_json(ch->subs[i].c)) == 0;
    } else {
        /* Oldest first: the `all` list is newest first. */
        struct client *c = sse->all;
        while (c != NULL && c->next != NULL)
            c = c->next;
        for (; c != NULL && ok; c = c->prev)
            if (c->registered)
                ok = json_array_append_new(arr, client_json(c)) == 0;
    }
    pthread_mutex_unlock(&sse->lock);
    if (!ok) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

size_t dk_sse_count(dk_sse *sse, const char *channel)
{
    size_t n = 0;
    pthread_mutex_lock(&sse->lock);
    if (channel == NULL) {
        n = sse->clients.count;
    } else if (valid_channel(channel)) {
        struct channel *ch = channel_find(sse, channel, dk__hash_str(channel));
        n = ch != NULL ? ch->nsubs : 0;
    }
    pthread_mutex_unlock(&sse->lock);
    return n;
}

/* ------------------------------------------------------------------ */
/* Statistics (src/base/stats.h)                                        */

static int by_clients_desc(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "clients"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "clients"));
    return x < y ? 1 : x > y ? -1 : 0;
}

json_t *dk__sse_stats(dk_sse *sse)
{
    json_t *chs = json_array();
    if (chs == NULL)
        return NULL;
    pthread_mutex_lock(&sse->lock);
    size_t nclients = sse->clients.count, replay = sse->replay_bytes;
    for (size_t i = 0; sse->channels.buckets != NULL && i < dk__htab_nbuckets(&sse->channels); i++)
        for (dk__hnode *n = *dk__htab_bucket(&sse->channels, i); n != NULL; n = n->next) {
            struct channel *ch = CHANNEL(n);
            json_array_append_new(chs, json_pack("{s:s, s:I, s:I, s:I}", "name", ch->name,
                                                 "clients", (json_int_t)ch->nsubs, "windowEvents",
                                                 (json_int_t)ch->ring.n, "windowBytes",
                                                 (json_int_t)ch->ring.bytes));
        }
    pthread_mutex_unlock(&sse->lock);
    pthread_mutex_lock(&sse->send_lock);
    uint64_t sent = sse->seq;
    pthread_mutex_unlock(&sse->send_lock);
    size_t n = json_array_size(chs);
    json_t **v = n ? malloc(n * sizeof(*v)) : NULL;
    if (v != NULL) {
        for (size_t i = 0; i < n; i++)
            v[i] = json_incref(json_array_get(chs, i));
        qsort(v, n, sizeof(*v), by_clients_desc);
        json_array_clear(chs);
        for (size_t i = 0; i < n; i++)
            json_array_append_new(chs, v[i]);
        free(v);
    }
    return json_pack("{s:I, s:I, s:I, s:o}", "clients", (json_int_t)nclients, "eventsSent",
                     (json_int_t)sent, "replayBytes", (json_int_t)replay, "channels", chs);
}
