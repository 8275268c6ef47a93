/* Compact JSON serialisation of a json_t into a growable buffer: the same
 * bytes as json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY), without jansson's
 * printf-based path (it showed as the largest user-space cost per request). */
#include "donkey/common.h"
#include "base/internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Makes room for `extra` more bytes and the terminating NUL. */
static int reserve(dk__buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *n = dk__realloc(b->data, cap);
    if (n == NULL)
        return -1;
    b->data = n;
    b->cap = cap;
    return 0;
}

/* Appends bytes for which room was reserved. */
static inline void raw(dk__buf *b, const char *s, size_t n)
{
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

static inline int put_bytes(dk__buf *b, const char *s, size_t n)
{
    if (reserve(b, n) < 0)
        return -1;
    raw(b, s, n);
    return 0;
}

static inline int put_char(dk__buf *b, char c)
{
    if (reserve(b, 1) < 0)
        return -1;
    b->data[b->len++] = c;
    return 0;
}

static int put_string(dk__buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF"; /* as jansson */
    /* Room for the text as it is; each escape reserves its own extra bytes. */
    if (reserve(b, len + 2) < 0)
        return -1;
    b->data[b->len++] = '"';
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        raw(b, s + start, i - start);
        if (reserve(b, 6 + (len - i) + 1) < 0)
            return -1;
        char *o = b->data + b->len;
        o[0] = '\\';
        size_t n = 2;
        switch (c) {
        case '"': o[1] = '"'; break;
        case '\\': o[1] = '\\'; break;
        case '\b': o[1] = 'b'; break;
        case '\f': o[1] = 'f'; break;
        case '\n': o[1] = 'n'; break;
        case '\r': o[1] = 'r'; break;
        case '\t': o[1] = 't'; break;
        default:
            o[1] = 'u';
            o[2] = '0';
            o[3] = '0';
            o[4] = hex[c >> 4];
            o[5] = hex[c & 15];
            n = 6;
        }
        b->len += n;
        start = i + 1;
    }
    raw(b, s + start, len - start);
    b->data[b->len++] = '"';
    return 0;
}

static int put_int(dk__buf *b, json_int_t v)
{
    char tmp[24];
    char *p = tmp + sizeof(tmp);
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    return put_bytes(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

static int put_real(dk__buf *b, double d)
{
    /* jansson's format: %.17g, and a ".0" when the text looks like an integer. */
    char tmp[40];
    int n = snprintf(tmp, sizeof(tmp), "%.17g", d);
    if (n < 0 || (size_t)n >= sizeof(tmp) - 3)
        return -1;
    char *e = strchr(tmp, 'e');
    if (e != NULL) {
        /* Exponent without '+' and without leading zeros ("1e+07" -> "1e7"). */
        char *src = e + 1, *dst = e + 1;
        if (*src == '-')
            *dst++ = *src++;
        else if (*src == '+')
            src++;
        while (*src == '0' && src[1] != '\0')
            src++;
        while (*src)
            *dst++ = *src++;
        *dst = '\0';
        n = (int)(dst - tmp);
    } else if (strpbrk(tmp, ".in") == NULL) {
        tmp[n++] = '.';
        tmp[n++] = '0';
        tmp[n] = '\0';
    }
    return put_bytes(b, tmp, (size_t)n);
}

static int put(dk__buf *b, const json_t *v, int depth)
{
    if (depth > 2048)
        return -1;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (put_char(b, '{') < 0)
            return -1;
        /* Insertion order, as json_object_foreach (one call fewer per member). */
        bool first = true;
        for (void *it = json_object_iter((json_t *)v); it != NULL;
             it = json_object_iter_next((json_t *)v, it)) {
            if (!first && put_char(b, ',') < 0)
                return -1;
            first = false;
            const char *k = json_object_iter_key(it);
            if (put_string(b, k, strlen(k)) < 0 || put_char(b, ':') < 0 ||
                put(b, json_object_iter_value(it), depth + 1) < 0)
                return -1;
        }
        return put_char(b, '}');
    }
    case JSON_ARRAY: {
        if (put_char(b, '[') < 0)
            return -1;
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n; i++) {
            if (i && put_char(b, ',') < 0)
                return -1;
            if (put(b, json_array_get(v, i), depth + 1) < 0)
                return -1;
        }
        return put_char(b, ']');
    }
    case JSON_STRING: return put_string(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER: return put_int(b, json_integer_value(v));
    case JSON_REAL: return put_real(b, json_real_value(v));
    case JSON_TRUE: return put_bytes(b, "true", 4);
    case JSON_FALSE: return put_bytes(b, "false", 5);
    case JSON_NULL: return put_bytes(b, "null", 4);
    }
    return -1;
}

int dk__json_write(dk__buf *b, const json_t *v)
{
    size_t mark = b->len;
    if (put(b, v, 0) < 0) {
        b->len = mark;
        if (b->data != NULL)
            b->data[mark] = '\0';
        return DK_ENOMEM;
    }
    b->data[b->len] = '\0'; /* reserve() always leaves room for it */
    return 0;
}

int dk__json_write_string(dk__buf *b, const char *s, size_t len)
{
    size_t mark = b->len;
    if (put_string(b, s, len) < 0) {
        b->len = mark;
        if (b->data != NULL)
            b->data[mark] = '\0';
        return DK_ENOMEM;
    }
    b->data[b->len] = '\0';
    return 0;
}
