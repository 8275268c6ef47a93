/* String formats for the schema validator, hand-written so they cost no regex
 * match and no allocation per request. */
#include <arpa/inet.h>
#include <string.h>

#include "rpc/schema_internal.h"

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

/* Dotted-quad IPv4 (no leading zeros) or RFC 4291 IPv6 text, `len` bytes at `s`.
 * inet_pton() does the parsing; it refuses zone ids and leading zeros in a
 * dotted quad, also inside an IPv4-mapped IPv6 address. */
static bool is_ip(int family, const char *s, size_t len)
{
    char buf[64];
    unsigned char addr[16];
    if (len == 0 || len >= sizeof(buf) || memchr(s, '\0', len) != NULL)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return inet_pton(family, buf, addr) == 1;
}

/* Host name: dot-separated labels of letters, digits and '-' (not at either
 * end of a label, at most 63 bytes), at least two labels, a letters-only TLD. */
static bool check_domain(const char *d, size_t dlen)
{
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

/* RFC 5321 mailbox: a dot-atom or a quoted-string local part ("joe bloggs",
 * with backslash escapes), '@', then a host name or an address literal
 * ([127.0.0.1] or [IPv6:::1]). Sizes as in RFC 5321 (64 / 254). */
static bool check_email(const char *s, size_t len)
{
    if (len > 254 || len == 0)
        return false;
    size_t local;
    if (s[0] == '"') {
        size_t i = 1;
        for (; i < len && s[i] != '"'; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c == '\\') {
                i++;
                if (i == len || (unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
                    return false;
            } else if (c < 0x20 || c > 0x7e) {
                return false;
            }
        }
        if (i == len || i < 2) /* unterminated, or "" */
            return false;
        local = i + 1;
    } else {
        const char *at = memchr(s, '@', len);
        if (at == NULL)
            return false;
        local = (size_t)(at - s);
        if (local == 0 || s[0] == '.' || s[local - 1] == '.')
            return false;
        for (size_t i = 0; i < local; i++) {
            char c = s[i];
            if (c == '.' && s[i + 1] == '.')
                return false;
            if (!is_alpha(c) && !is_digit(c) && !in_set(c, ".!#$%&'*+/=?^_`{|}~-"))
                return false;
        }
    }
    if (local > 64 || local >= len || s[local] != '@')
        return false;
    const char *d = s + local + 1;
    size_t dlen = len - local - 1;
    if (dlen >= 2 && d[0] == '[' && d[dlen - 1] == ']') {
        if (dlen > 7 && strncmp(d + 1, "IPv6:", 5) == 0)
            return is_ip(AF_INET6, d + 6, dlen - 7);
        return is_ip(AF_INET, d + 1, dlen - 2);
    }
    return check_domain(d, dlen);
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
 * The offset is mandatory; 'T' and 'Z' may be lower case (RFC 3339 §5.6). A
 * leap second (:60) only exists at 23:59 UTC, so it must fall there once the
 * offset is applied (15:59:60-08:00 is fine, 23:58:60Z is not). */
static bool check_date_time(const char *s, size_t len)
{
    int h, mi, sec, oh = 0, om = 0, sign = 0;
    if (len < 20 || !check_full_date(s, 10) || (s[10] != 'T' && s[10] != 't'))
        return false;
    const char *p = s + 11, *end = s + len;
    if (!digits(p, 2, &h) || p[2] != ':' || !digits(p + 3, 2, &mi) || p[5] != ':' ||
        !digits(p + 6, 2, &sec))
        return false;
    if (h > 23 || mi > 59 || sec > 60)
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
    if (*p == 'Z' || *p == 'z') {
        if (p + 1 != end)
            return false;
    } else {
        if ((*p != '+' && *p != '-') || end - p != 6 || !digits(p + 1, 2, &oh) || p[3] != ':' ||
            !digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return false;
        sign = *p == '+' ? 1 : -1;
    }
    if (sec == 60) {
        int utc = ((h * 60 + mi - sign * (oh * 60 + om)) % 1440 + 1440) % 1440;
        return utc == 23 * 60 + 59;
    }
    return true;
}

static bool unreserved(char c)
{
    return is_alpha(c) || is_digit(c) || in_set(c, "-._~");
}

static bool sub_delim(char c)
{
    return in_set(c, "!$&'()*+,;=");
}

/* Checks `s[i..end)` against the characters `ok` (unreserved, sub-delims and
 * `extra`) and valid percent escapes. */
static bool uri_chars(const char *s, size_t i, size_t end, const char *extra)
{
    for (; i < end; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= end || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
                return false;
            i += 2;
        } else if (!unreserved(c) && !sub_delim(c) && !in_set(c, extra)) {
            return false;
        }
    }
    return true;
}

/* RFC 3986 authority: [userinfo "@"] host [":" port], host a reg-name or an
 * IP-literal ("[" IPv6 or IPvFuture "]"); the port is digits. */
static bool check_authority(const char *s, size_t len)
{
    size_t start = 0;
    const char *at = memchr(s, '@', len);
    if (at != NULL) {
        start = (size_t)(at - s) + 1;
        if (!uri_chars(s, 0, start - 1, ":"))
            return false;
    }
    size_t host_end;
    if (start < len && s[start] == '[') {
        const char *close = memchr(s + start, ']', len - start);
        if (close == NULL)
            return false;
        host_end = (size_t)(close - s) + 1;
        const char *lit = s + start + 1;
        size_t llen = host_end - start - 2;
        if (llen > 0 && (lit[0] == 'v' || lit[0] == 'V')) { /* IPvFuture: v1.xyz */
            size_t k = 1;
            while (k < llen && is_hex(lit[k]))
                k++;
            if (k == 1 || k + 1 >= llen || lit[k] != '.')
                return false;
            for (k++; k < llen; k++)
                if (!unreserved(lit[k]) && !sub_delim(lit[k]) && lit[k] != ':')
                    return false;
        } else if (!is_ip(AF_INET6, lit, llen)) {
            return false;
        }
    } else {
        const char *colon = memchr(s + start, ':', len - start);
        host_end = colon != NULL ? (size_t)(colon - s) : len;
        if (!uri_chars(s, start, host_end, ""))
            return false;
    }
    if (host_end == len)
        return true;
    if (s[host_end] != ':')
        return false;
    for (size_t i = host_end + 1; i < len; i++)
        if (!is_digit(s[i]))
            return false;
    return true;
}

/* RFC 3986 absolute URI: scheme ":" ["//" authority] path ["?" query]
 * ["#" fragment], each part with only its own characters and valid percent
 * escapes ('[' and ']' only around an IP literal host). Non-ASCII needs
 * percent-encoding. */
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
    i++;
    if (len - i >= 2 && s[i] == '/' && s[i + 1] == '/') {
        size_t a = i + 2, e = a;
        while (e < len && s[e] != '/' && s[e] != '?' && s[e] != '#')
            e++;
        if (!check_authority(s + a, e - a))
            return false;
        i = e;
    }
    const char *hash = memchr(s + i, '#', len - i);
    size_t rest_end = hash != NULL ? (size_t)(hash - s) : len;
    /* path and query: pchar / "/" / "?"; the fragment the same, after one '#' */
    if (!uri_chars(s, i, rest_end, ":@/?"))
        return false;
    return hash == NULL || uri_chars(s, rest_end + 1, len, ":@/?");
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
