/* donkey: W3C Trace Context of a request (docs/observability.md "Trace context").
 *
 * Every request belongs to a trace: the one named by a valid incoming
 * `traceparent` header ("00-<32 hex trace id>-<16 hex parent span>-<2 hex
 * flags>"), or a new one with random ids when the header is absent or
 * invalid. The request gets a span id of its own. Every log line written
 * while the request runs carries "trace_id" and "span_id"; dk_fetch() from a
 * handler sends a `traceparent` with the same trace id and a new span id
 * (unless the caller set one); jobs enqueued by the request keep the trace id
 * and their log lines carry it.
 *
 * The strings returned are borrowed and valid until the request ends. */
#ifndef DONKEY_TRACE_H
#define DONKEY_TRACE_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dk_ctx dk_ctx;

/** The request's trace id: 32 lowercase hex digits. */
DK_API const char *dk_ctx_trace_id(const dk_ctx *ctx);
/** The request's own span id: 16 lowercase hex digits. */
DK_API const char *dk_ctx_span_id(const dk_ctx *ctx);
/** The caller's span id from the incoming traceparent, or "" when the trace
 *  started here. */
DK_API const char *dk_ctx_parent_span_id(const dk_ctx *ctx);
/** "00-<trace id>-<span id>-<flags>": the traceparent naming this request's
 *  span, to hand to a downstream service. */
DK_API const char *dk_ctx_traceparent(const dk_ctx *ctx);
/** The incoming `tracestate` header (when the traceparent was valid), or NULL. */
DK_API const char *dk_ctx_tracestate(const dk_ctx *ctx);

/** The trace id of the work running on the calling thread (a request's
 *  handler, a call it made on a pool thread, a job started by a request), or
 *  NULL. Copied into `buf` (33 bytes) so it stays valid. */
DK_API const char *dk_trace_current_id(char buf[33]);

#ifdef __cplusplus
}
#endif
#endif
