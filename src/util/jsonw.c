/* Compact JSON serialisation of a json_t into a growable buffer: the same
 * bytes as json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY), without jansson's
 * printf-based path (it showed as the largest user-space cost per request). */
#include "donkey/common.h"
#include "internal.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static int put_string(dk__buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF"; /* as jansson */
    if (dk__buf_append(b, "\"", 1) < 0)
        return -1;
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        if (i > start && dk__buf_append(b, s + start, i - start) < 0)
            return -1;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t n = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        if (dk__buf_append(b, esc, n) < 0)
            return -1;
        start = i + 1;
    }
    if (len > start && dk__buf_append(b, s + start, len - start) < 0)
        return -1;
    return dk__buf_append(b, "\"", 1);
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
    return dk__buf_append(b, p, (size_t)(tmp + sizeof(tmp) - p));
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
    return dk__buf_append(b, tmp, (size_t)n);
}

static int put(dk__buf *b, const json_t *v, int depth)
{
    if (depth > 2048)
        return -1;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (dk__buf_append(b, "{", 1) < 0)
            return -1;
        const char *k;
        json_t *e;
        bool first = true;
        json_object_foreach((json_t *)v, k, e)
        {
            if (!first && dk__buf_append(b, ",", 1) < 0)
                return -1;
            first = false;
            if (put_string(b, k, strlen(k)) < 0 || dk__buf_append(b, ":", 1) < 0 ||
                put(b, e, depth + 1) < 0)
                return -1;
        }
        return dk__buf_append(b, "}", 1);
    }
    case JSON_ARRAY: {
        if (dk__buf_append(b, "[", 1) < 0)
            return -1;
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i && dk__buf_append(b, ",", 1) < 0)
                return -1;
            if (put(b, json_array_get(v, i), depth + 1) < 0)
                return -1;
        }
        return dk__buf_append(b, "]", 1);
    }
    case JSON_STRING:
        return put_string(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return put_int(b, json_integer_value(v));
    case JSON_REAL:
        return put_real(b, json_real_value(v));
    case JSON_TRUE:
        return dk__buf_append(b, "true", 4);
    case JSON_FALSE:
        return dk__buf_append(b, "false", 5);
    case JSON_NULL:
        return dk__buf_append(b, "null", 4);
    }
    return -1;
}

int dk__json_write(dk__buf *b, const json_t *v)
{
    size_t mark = b->len;
    if (put(b, v, 0) < 0) {
        b->len = mark;
        return DK_ENOMEM;
    }
    return 0;
}
