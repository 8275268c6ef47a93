/* W3C Trace Context (https://www.w3.org/TR/trace-context/): the trace and
 * span ids of the work a thread is doing, for logs, outbound requests and
 * jobs (docs/observability.md "Trace context").
 *
 * Each request has a dk__trace in its context: the trace id and parent span
 * of a valid incoming `traceparent` header, or a new random trace; and a new
 * span id of its own. While the request's fiber runs (and while a pool thread
 * runs a call of it), the trace is "current" on that thread, so every log
 * line, job enqueue and outbound fetch made on its behalf picks it up. */
#ifndef DK_UTIL_TRACE_H
#define DK_UTIL_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct dk__trace {
    char trace_id[33];  /* 32 lowercase hex digits */
    char span_id[17];   /* this unit of work's span (16 hex) */
    char parent_id[17]; /* the caller's span, "" when the trace started here */
    uint8_t flags;      /* trace-flags (bit 0: sampled) */
    const char *state;  /* tracestate as received (borrowed), NULL when none */
    /* Lazily started (dk__trace_defer): the ids above are filled by the
     * first dk__trace_get(), so a request that never logs, fetches or
     * enqueues pays for no random ids. */
    bool ready;
    const char *pending_parent, *pending_state; /* borrowed until then */
} dk__trace;

/* Parses a traceparent value "00-<32 hex>-<16 hex>-<2 hex>" (version 00,
 * lowercase hex, neither id all zeros).
 * Fills trace_id/parent_id/flags; false when invalid. */
bool dk__traceparent_parse(const char *s, char trace_id[33], char parent_id[17], uint8_t *flags);

/* Starts the trace of a unit of work: continues `traceparent` (may be NULL or
 * invalid: a new trace, sampled) with a new span id. `state` is kept as given
 * (borrowed) when the traceparent was valid. */
void dk__trace_begin(dk__trace *t, const char *traceparent, const char *state);

/* As dk__trace_begin(), deferred until the first dk__trace_get(): the
 * strings must stay valid until then (the request's headers). */
void dk__trace_defer(dk__trace *t, const char *traceparent, const char *state);

/* The trace with its ids filled in (starting it now when deferred). Only the
 * thread working for the trace's owner calls it (as with the rest of a
 * request's state). */
const dk__trace *dk__trace_get(const dk__trace *t);

/* Continues trace `trace_id` (may be NULL/invalid: new trace) with a new span. */
void dk__trace_child(dk__trace *t, const char *trace_id);

/* Writes "00-<trace>-<span>-<flags>" (56 characters + NUL) into out. */
void dk__trace_format(const dk__trace *t, const char *span_id, char out[56]);

/* A new random span id (16 hex, not all zeros). */
void dk__trace_new_span(char out[17]);

/* The trace current on this thread (borrowed, ids filled in), or NULL. */
const dk__trace *dk__trace_current(void);
/* Sets (NULL: clears) the current trace of this thread; returns the previous. */
const dk__trace *dk__trace_enter(const dk__trace *t);

#endif
