/* donkey: Server-Sent Events, a registry of open event-stream connections
 * ("clients") subscribed to channels, with channel, global and targeted sends,
 * a periodic heartbeat, a per-channel replay window for Last-Event-ID resume
 * and a bounded send buffer per client.
 *
 * There is no built-in SSE route: a raw route (GET and/or POST) calls
 * dk_sse_accept(), which turns the response into an event stream.
 *
 * Wire format (text/event-stream): the first bytes are "retry: <ms>\n\n";
 * each event is "id: <id>\n" (when there is an id), "event: <name>\n", one
 * "data: <line>\n" per line of the payload (split on CRLF, CR and LF), then a
 * blank line; the heartbeat is the comment ": heartbeat <epoch ms>\n\n".
 *
 * Threads: every function here may be called from any thread unless stated
 * otherwise. A broadcast serialises its frame once and queues the same bytes
 * to every subscriber; writes never block (a client whose queued bytes would
 * exceed its send limit is disconnected). No user callback runs while the
 * service holds one of its locks. */
#ifndef DONKEY_SSE_H
#define DONKEY_SSE_H

#include "app.h"
#include "common.h"
#include "log.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dk_sse dk_sse; /* also declared in app.h */
typedef struct dk_loop dk_loop;

/** Size of a buffer that holds any client id ("sse_<n>_<epoch ms>") and its NUL. */
#define DK_SSE_ID_LEN 48

/** Distributed back end (e.g. Redis pub/sub) so broadcasts reach clients
 *  connected to other instances. Optional; every member may be NULL. */
typedef struct dk_sse_backend {
    /** Called once per local dk_sse_broadcast*() after local delivery, with no
     *  lock held, on the broadcasting thread. `channel` is NULL for
     *  dk_sse_broadcast_all(). `id` is the event id actually sent (the
     *  caller's, or the generated one). All arguments are borrowed for the
     *  call. The other instances should call dk_sse_deliver_remote() with the
     *  same values. A negative return is logged; local delivery already
     *  happened. Not called for dk_sse_send() nor for dk_sse_deliver_remote(). */
    int (*publish)(void *user, const char *channel, const char *event, const char *data,
                   size_t len, const char *id);
    /** Runs once at dk_sse_free(), or right away if dk_sse_new() fails. */
    void (*destroy)(void *user);
    void *user;
    /** Optional; when set it replaces `publish` and makes the back end the
     *  cluster's sequencer. Called once per local dk_sse_broadcast*() before
     *  local delivery, on the broadcasting thread, while the service holds
     *  its send lock, so the order in which broadcasts are published is the
     *  order in which this instance's clients get them. It must be quick and
     *  bounded in time (it delays every broadcast of this instance). `id` is
     *  the caller's id (NULL or "" when none). On 0 the back end may write a
     *  cluster-wide id (unique and increasing, at most `out_len` - 1
     *  characters, no CR/LF) into `out_id`, used when the caller gave none
     *  (leave it "" to let the service generate one); other instances should
     *  call dk_sse_deliver_remote() with that id. A negative return fails the
     *  broadcast with that code (nothing is delivered), e.g. DK_EUNAVAILABLE
     *  when the shared store cannot be reached. */
    int (*publish_ordered)(void *user, const char *channel, const char *event, const char *data,
                           size_t len, const char *id, char *out_id, size_t out_len);
} dk_sse_backend;

typedef struct dk_sse_options {
    uint64_t heartbeat_ms;      /* heartbeat comment period; default 30000, 0 = none */
    uint64_t retry_ms;          /* "retry:" advertised in the first frame; default 3000 */
    size_t replay_max_events;   /* events kept per channel for resume; default 1000, 0 = none */
    uint64_t replay_max_age_ms; /* and not older than this; default 300000 (5 min) */
    size_t send_limit;          /* bytes queued per client before it is cut off; default 256 KiB */
    size_t max_clients;         /* clients per service; default 10000, 0 = unlimited */
    size_t max_clients_per_channel; /* default 10000, 0 = unlimited */
    size_t max_channels_per_client; /* default 64 */
    bool auto_ids;              /* give broadcasts without an id an increasing numeric id;
                                   default true */
    dk_loop *loop;              /* borrowed; runs the heartbeat timer. NULL = no heartbeat */
    dk_logger *logger;          /* borrowed, may be NULL */
    const dk_sse_backend *backend; /* copied; NULL = this process only */
    /* Added by the security review (docs/sse.md, "Limits"). */
    size_t replay_max_bytes;    /* frame bytes kept per channel window; default 1 MiB, 0 = no cap */
    size_t replay_max_total_bytes; /* bytes of all windows together; default 64 MiB, 0 = no cap;
                                      beyond, the oldest frames of any window go first */
    bool replay_idle_channels;  /* a broadcast to a channel without subscribers (and without a
                                   window) creates a window; default false: it is not kept */
    size_t max_per_identity;    /* streams per identity (dk_sse_accept_ex()) when the accept
                                   gives no cap; default 0 = no cap */
} dk_sse_options;

/** Fills `o` with the defaults above. */
DK_API void dk_sse_options_init(dk_sse_options *o);

/** New service; `opts` copied (NULL = defaults). The heartbeat starts now (on
 *  `opts->loop`). The loop and logger must outlive the service. Returns NULL
 *  when out of memory. Caller frees with dk_sse_free(). */
DK_API dk_sse *dk_sse_new(const dk_sse_options *opts);

/** Shuts down (see dk_sse_shutdown()), runs the back end's destroy and frees
 *  the service. Call it only after the HTTP server has stopped: the streams'
 *  close callbacks refer to the service. NULL is ignored. */
DK_API void dk_sse_free(dk_sse *sse);

/** Stops the heartbeat, closes every client's stream after its queued bytes
 *  are flushed and empties the registry. dk_sse_accept() still works
 *  afterwards, without heartbeat. Idempotent. Any thread except the HTTP loop
 *  threads being waited for. */
DK_API void dk_sse_shutdown(dk_sse *sse);

/** Turns `res` into an event stream and registers a client subscribed to
 *  `channels` (n names, borrowed; duplicates ignored). Reads the request's
 *  Last-Event-ID header: when present, the events the client missed on its
 *  channels (and global broadcasts) are queued, in order, after the retry
 *  frame and before any new event; when they are no longer all in the replay
 *  window, a single "event: reset" frame is queued instead so the client
 *  reloads its state. Sets status 200 and the headers Content-Type,
 *  Cache-Control, X-SSE-Client-Id and X-Accel-Buffering. Writes the client id
 *  into `out_id` (may be NULL). Returns 0; dk_fail() results (return them from
 *  the handler): 400 for an empty or too long channel name or too many
 *  channels, 503 SERVICE_UNAVAILABLE beyond max_clients or
 *  max_clients_per_channel; or DK_ENOMEM. HTTP thread (inside a raw route). */
DK_API int dk_sse_accept(dk_sse *sse, dk_ctx *ctx, dk_request *req, dk_response *res,
                         const char *const *channels, size_t n, char out_id[DK_SSE_ID_LEN]);

/** Per-stream options of dk_sse_accept_ex(). Zero-initialise. */
typedef struct dk_sse_accept_options {
    const char *identity;    /* who opens the stream, e.g. "user:42" (copied); NULL = nobody */
    size_t max_per_identity; /* open streams allowed per identity; 0 = the service's
                                max_per_identity (0 there too: no cap) */
    const char *session;     /* copied; dk_sse_close_session() ends the streams carrying it */
} dk_sse_accept_options;

/** dk_sse_accept() with an identity and a session. When the identity already
 *  has `max_per_identity` open streams, the new one is refused with 429
 *  TOO_MANY_REQUESTS (details {"limit": n}); the open ones are not touched.
 *  `ao` may be NULL. HTTP thread (inside a raw route). */
DK_API int dk_sse_accept_ex(dk_sse *sse, dk_ctx *ctx, dk_request *req, dk_response *res,
                            const char *const *channels, size_t n,
                            const dk_sse_accept_options *ao, char out_id[DK_SSE_ID_LEN]);

/** Closes every stream opened with this identity / session (e.g. at log-out)
 *  after its queued bytes are flushed. Returns how many were closed (>= 0),
 *  DK_EINVAL for NULL or DK_ENOMEM. */
DK_API int dk_sse_close_identity(dk_sse *sse, const char *identity);
DK_API int dk_sse_close_session(dk_sse *sse, const char *session);

/** Bytes held by all replay windows together (frames shared with client
 *  queues are counted once). */
DK_API size_t dk_sse_replay_bytes(dk_sse *sse);

/** Closes the client's stream and forgets it. Returns 0 or DK_ENOTFOUND. */
DK_API int dk_sse_remove(dk_sse *sse, const char *client_id);

/** The client as {"id", "channels": [...], "createdAt": ISO-8601,
 *  "lastEventId": string or null}. On 0, `*out` is a new reference. Returns
 *  DK_ENOTFOUND (then `*out` is NULL) or DK_ENOMEM. */
DK_API int dk_sse_get(dk_sse *sse, const char *client_id, json_t **out);

/** Adds `channel` (copied) to the client's channels; idempotent. Returns 0,
 *  DK_ENOTFOUND (unknown client), DK_EINVAL (bad name), DK_ELIMIT (too many
 *  channels for the client or clients for the channel) or DK_ENOMEM. */
DK_API int dk_sse_subscribe(dk_sse *sse, const char *client_id, const char *channel);

/** Removes `channel` from the client's channels. Returns 1 when it was
 *  there, 0 when the client was not subscribed to it, DK_ENOTFOUND for an
 *  unknown client. */
DK_API int dk_sse_unsubscribe(dk_sse *sse, const char *client_id, const char *channel);

/** Sends an event to every client subscribed to `channel` (copied) and keeps
 *  it in the channel's replay window. `event` NULL means "message". `data`
 *  (borrowed; NULL means JSON null) is sent verbatim when it is a string and
 *  as compact JSON otherwise. `id` NULL or "" takes a generated id when
 *  auto_ids is on. Returns the number of clients the frame was queued to
 *  (clients whose send buffer overflowed are disconnected and not counted),
 *  or DK_EINVAL (empty channel; CR, LF in `event` or `id`) or DK_ENOMEM. */
DK_API int dk_sse_broadcast(dk_sse *sse, const char *channel, const char *event,
                            const json_t *data, const char *id);

/** As dk_sse_broadcast() with a text payload of `len` bytes (borrowed). */
DK_API int dk_sse_broadcast_text(dk_sse *sse, const char *channel, const char *event,
                                 const char *data, size_t len, const char *id);

/** Sends an event to every client, whatever its channels, and keeps it in the
 *  global replay window. Arguments and result as dk_sse_broadcast(). */
DK_API int dk_sse_broadcast_all(dk_sse *sse, const char *event, const json_t *data,
                                const char *id);

/** Sends an event to one client (not kept for replay, no generated id).
 *  Returns 0, DK_ENOTFOUND (unknown client), DK_ESTATE (the write failed: the
 *  client is removed), DK_EINVAL or DK_ENOMEM. */
DK_API int dk_sse_send(dk_sse *sse, const char *client_id, const char *event,
                       const json_t *data, const char *id);

/** Injects a broadcast received from another instance through the back end:
 *  delivered and kept for replay like dk_sse_broadcast_text() (`channel` NULL
 *  = every client), but not published again. `id` should be the one the
 *  origin sent (NULL or "": generated locally when auto_ids is on). Result as
 *  dk_sse_broadcast(). */
DK_API int dk_sse_deliver_remote(dk_sse *sse, const char *channel, const char *event,
                                 const char *data, size_t len, const char *id);

/** The connected clients (all when `channel` is NULL, else those subscribed
 *  to it) as a JSON array of objects like dk_sse_get(). New reference; NULL
 *  when out of memory. */
DK_API json_t *dk_sse_clients(dk_sse *sse, const char *channel);

/** Number of connected clients (all when `channel` is NULL). */
DK_API size_t dk_sse_count(dk_sse *sse, const char *channel);

/** Serialises one event frame into a new buffer (`*out`, release with
 *  dk_buf_unref()): "id: <id>\n" when `id` is neither NULL nor "", then
 *  "event: <event>\n" (NULL means "message"), one "data: <line>\n" per line
 *  of the `len` bytes at `data` (lines end at CRLF, CR or LF; an empty payload
 *  is one empty data line), and "\n". Returns 0, DK_EINVAL when `event` or
 *  `id` contains CR or LF, or DK_ENOMEM. Any thread. */
DK_API int dk_sse_format(const char *id, const char *event, const char *data, size_t len,
                         dk_buf **out);

/** Checks an event name or id: DK_EINVAL when it contains CR or LF, else 0.
 *  NULL is accepted. */
DK_API int dk_sse_check_field(const char *text);

#ifdef __cplusplus
}
#endif
#endif
