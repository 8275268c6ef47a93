/* W3C Trace Context helpers; see trace.h. */
#include "base/trace.h"
#include "base/internal.h"

#include <stdio.h>
#include <string.h>

static _Thread_local const dk__trace *tl_trace;

const dk__trace *dk__trace_current(void)
{
    return tl_trace != NULL ? dk__trace_get(tl_trace) : NULL;
}

const dk__trace *dk__trace_enter(const dk__trace *t)
{
    const dk__trace *prev = tl_trace;
    tl_trace = t;
    return prev;
}

static bool lower_hex(const char *s, size_t n, bool *all_zero)
{
    bool zero = true;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
        if (c != '0')
            zero = false;
    }
    if (all_zero)
        *all_zero = zero;
    return true;
}

bool dk__traceparent_parse(const char *s, char trace_id[33], char parent_id[17], uint8_t *flags)
{
    if (s == NULL)
        return false;
    bool zero;
    /* Version 00 only, exactly 55 characters. */
    if (strlen(s) != 55 || s[0] != '0' || s[1] != '0' || s[2] != '-' || s[35] != '-' ||
        s[52] != '-')
        return false;
    if (!lower_hex(s + 3, 32, &zero) || zero)
        return false;
    if (!lower_hex(s + 36, 16, &zero) || zero)
        return false;
    if (!lower_hex(s + 53, 2, NULL))
        return false;
    memcpy(trace_id, s + 3, 32);
    trace_id[32] = '\0';
    memcpy(parent_id, s + 36, 16);
    parent_id[16] = '\0';
    unsigned f = 0;
    for (int i = 53; i < 55; i++)
        f = f * 16 + (unsigned)(s[i] <= '9' ? s[i] - '0' : s[i] - 'a' + 10);
    *flags = (uint8_t)f;
    return true;
}

static void random_hex(char *out, size_t digits)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    size_t nb = digits / 2;
    for (;;) {
        dk__random_bytes(b, nb);
        bool zero = true;
        for (size_t i = 0; i < nb; i++)
            if (b[i] != 0)
                zero = false;
        if (!zero)
            break;
    }
    for (size_t i = 0; i < nb; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[digits] = '\0';
}

void dk__trace_new_span(char out[17]) { random_hex(out, 16); }

void dk__trace_defer(dk__trace *t, const char *traceparent, const char *state)
{
    t->ready = false;
    t->pending_parent = traceparent;
    t->pending_state = state;
}

const dk__trace *dk__trace_get(const dk__trace *t)
{
    if (!t->ready) {
        dk__trace *m = (dk__trace *)t;
        dk__trace_begin(m, m->pending_parent, m->pending_state);
    }
    return t;
}

void dk__trace_begin(dk__trace *t, const char *traceparent, const char *state)
{
    t->ready = true;
    if (traceparent != NULL &&
        dk__traceparent_parse(traceparent, t->trace_id, t->parent_id, &t->flags)) {
        t->state = state != NULL && *state != '\0' ? state : NULL;
    } else {
        random_hex(t->trace_id, 32);
        t->parent_id[0] = '\0';
        t->flags = 1;
        t->state = NULL;
    }
    random_hex(t->span_id, 16);
}

void dk__trace_child(dk__trace *t, const char *trace_id)
{
    bool zero = true;
    if (trace_id != NULL && strlen(trace_id) == 32 && lower_hex(trace_id, 32, &zero) && !zero) {
        memcpy(t->trace_id, trace_id, 33);
        t->ready = true;
        t->parent_id[0] = '\0';
        t->flags = 1;
        t->state = NULL;
        random_hex(t->span_id, 16);
    } else {
        dk__trace_begin(t, NULL, NULL);
    }
}

void dk__trace_format(const dk__trace *t, const char *span_id, char out[56])
{
    t = dk__trace_get(t);
    snprintf(out, 56, "00-%s-%s-%02x", t->trace_id, span_id ? span_id : t->span_id, t->flags);
}
