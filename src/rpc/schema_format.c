/* String formats for the schema validator, hand-written so they cost no regex
 * match and no allocation per request. */
#include <string.h>

#include "schema_internal.h"

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* strchr() would match the terminator, so NUL (legal inside JSON strings) is excluded. */
static bool in_set(char c, const char *set)
{
    return c != '\0' && strchr(set, c) != NULL;
}

size_t dk__utf8_len(const char *s, size_t len)
{
    /* Every code point has exactly one byte that is not a continuation byte. */
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

/* Pragmatic address check (RFC 5321 sizes, dot-atom local part, a host name
 * with a letters-only TLD). Quoted local parts and IP literals are refused,
 * as most web validators do. */
static bool check_email(const char *s, size_t len)
{
    const char *at = memchr(s, '@', len);
    if (len > 254 || at == NULL)
        return false;
    size_t local = (size_t)(at - s);
    const char *d = at + 1;
    size_t dlen = len - local - 1;
    if (local == 0 || local > 64 || s[0] == '.' || s[local - 1] == '.')
        return false;
    for (size_t i = 0; i < local; i++) {
        char c = s[i];
        if (c == '.' && s[i + 1] == '.')
            return false;
        if (!is_alpha(c) && !is_digit(c) && !in_set(c, ".!#$%&'*+/=?^_`{|}~-"))
            return false;
    }
    size_t labels = 0, start = 0;
    for (size_t i = 0; i <= dlen; i++) {
        if (i < dlen && d[i] != '.') {
            if (!is_alpha(d[i]) && !is_digit(d[i]) && d[i] != '-')
                return false;
            continue;
        }
        size_t n = i - start;
        if (n == 0 || n > 63 || d[start] == '-' || d[i - 1] == '-')
            return false;
        labels++;
        if (i == dlen) { /* the TLD */
            if (n < 2)
                return false;
            for (size_t k = start; k < i; k++)
                if (!is_alpha(d[k]))
                    return false;
        }
        start = i + 1;
    }
    return labels >= 2;
}

/* 8-4-4-4-12 hex digits, any version (JSON Schema's "uuid" is RFC 4122 syntax). */
static bool check_uuid(const char *s, size_t len)
{
    if (len != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!is_hex(s[i])) {
            return false;
        }
    }
    return true;
}

static bool digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* RFC 3339 full-date: YYYY-MM-DD with a real calendar day. */
static bool check_full_date(const char *s, size_t len)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, m, d;
    if (len != 10 || s[4] != '-' || s[7] != '-' || !digits(s, 4, &y) || !digits(s + 5, 2, &m) ||
        !digits(s + 8, 2, &d))
        return false;
    if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return !(m == 2 && d == 29 && !leap);
}

/* RFC 3339 date-time: full-date "T" HH:MM:SS[.frac] ("Z" | +HH:MM | -HH:MM).
 * The offset is mandatory; 'T' and 'Z' may be lower case (RFC 3339 §5.6). */
static bool check_date_time(const char *s, size_t len)
{
    int h, mi, sec, oh, om;
    if (len < 20 || !check_full_date(s, 10) || (s[10] != 'T' && s[10] != 't'))
        return false;
    const char *p = s + 11, *end = s + len;
    if (!digits(p, 2, &h) || p[2] != ':' || !digits(p + 3, 2, &mi) || p[5] != ':' ||
        !digits(p + 6, 2, &sec))
        return false;
    if (h > 23 || mi > 59 || sec > 60) /* 60: leap second */
        return false;
    p += 8;
    if (p < end && *p == '.') {
        p++;
        if (p == end || !is_digit(*p))
            return false;
        while (p < end && is_digit(*p))
            p++;
    }
    if (p == end)
        return false;
    if (*p == 'Z' || *p == 'z')
        return p + 1 == end;
    if ((*p != '+' && *p != '-') || end - p != 6 || !digits(p + 1, 2, &oh) || p[3] != ':' ||
        !digits(p + 4, 2, &om))
        return false;
    return oh <= 23 && om <= 59;
}

/* RFC 3986 absolute URI: a scheme, ':', then only URI characters with valid
 * percent escapes and at most one '#'. Non-ASCII needs percent-encoding. */
static bool check_uri(const char *s, size_t len)
{
    size_t i = 0;
    if (len == 0 || !is_alpha(s[0]))
        return false;
    while (i < len && (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '+' || s[i] == '-' ||
                       s[i] == '.'))
        i++;
    if (i == len || s[i] != ':')
        return false;
    bool fragment = false;
    for (i++; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= len || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
                return false;
            i += 2;
        } else if (c == '#') {
            if (fragment)
                return false;
            fragment = true;
        } else if (!is_alpha(c) && !is_digit(c) && !in_set(c, "-._~:/?[]@!$&'()*+,;=")) {
            return false;
        }
    }
    return true;
}

bool dk__fmt_check(dk__fmt f, const char *s, size_t len)
{
    switch (f) {
    case DK__FMT_EMAIL:
        return check_email(s, len);
    case DK__FMT_UUID:
        return check_uuid(s, len);
    case DK__FMT_DATE_TIME:
        return check_date_time(s, len);
    case DK__FMT_DATE:
        return check_full_date(s, len);
    case DK__FMT_URI:
        return check_uri(s, len);
    case DK__FMT_NONE:
        break;
    }
    return true;
}

dk__fmt dk__fmt_parse(const char *name)
{
    static const struct {
        const char *name;
        dk__fmt f;
    } table[] = {
        {"email", DK__FMT_EMAIL},         {"uuid", DK__FMT_UUID}, {"date-time", DK__FMT_DATE_TIME},
        {"date", DK__FMT_DATE},           {"uri", DK__FMT_URI},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (strcmp(name, table[i].name) == 0)
            return table[i].f;
    return DK__FMT_NONE;
}
