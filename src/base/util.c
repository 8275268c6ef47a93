/* Small shared utilities: error names, time, UUIDs, durations, globs, buffers. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "donkey/common.h"
#include "base/internal.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

const char *dk_strerror(int err)
{
    switch (err) {
    case 0: return "success";
#define DK_X_(name, value, text)                                                                   \
    case value: return text;
        DK_ERRNO_MAP(DK_X_)
#undef DK_X_
    }
    return "unknown error";
}

const char *dk_err_name(int err)
{
    switch (err) {
    case 0: return "OK";
#define DK_X_(name, value, text)                                                                   \
    case value: return #name;
        DK_ERRNO_MAP(DK_X_)
#undef DK_X_
    }
    return "EUNKNOWN";
}

int dk_err_set(dk_err *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
    }
    return code;
}

uint64_t dk_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int64_t dk_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *dk_iso8601(int64_t wall_ms, char *buf, size_t len)
{
    time_t secs = (time_t)(wall_ms >= 0 ? wall_ms / 1000 : (wall_ms - 999) / 1000);
    int ms = (int)(wall_ms - (int64_t)secs * 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    int year = tm.tm_year + 1900;
    if (len < 25 || year < 0 || year > 9999) {
        snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", year, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
        return buf;
    }
    /* By hand: every log line formats a time stamp, and snprintf costs
     * more than the rest of the line's head. */
    char *p = buf;
    int parts[] = {tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec};
    static const char seps[] = "--T::";
    *p++ = (char)('0' + year / 1000);
    *p++ = (char)('0' + year / 100 % 10);
    *p++ = (char)('0' + year / 10 % 10);
    *p++ = (char)('0' + year % 10);
    for (int i = 0; i < 5; i++) {
        *p++ = seps[i];
        *p++ = (char)('0' + parts[i] / 10);
        *p++ = (char)('0' + parts[i] % 10);
    }
    *p++ = '.';
    *p++ = (char)('0' + ms / 100);
    *p++ = (char)('0' + ms / 10 % 10);
    *p++ = (char)('0' + ms % 10);
    *p++ = 'Z';
    *p = '\0';
    return buf;
}

static int read_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)**p))
            return -1;
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    *out = v;
    return 0;
}

int dk_iso8601_parse(const char *text, int64_t *out_ms)
{
    if (text == NULL)
        return DK_EINVAL;
    const char *p = text;
    int y, mo, d, h = 0, mi = 0, s = 0, ms = 0;
    if (read_digits(&p, 4, &y) || *p++ != '-' || read_digits(&p, 2, &mo) || *p++ != '-' ||
        read_digits(&p, 2, &d))
        return DK_EINVAL;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (read_digits(&p, 2, &h) || *p++ != ':' || read_digits(&p, 2, &mi))
            return DK_EINVAL;
        if (*p == ':') {
            p++;
            if (read_digits(&p, 2, &s))
                return DK_EINVAL;
            if (*p == '.') {
                p++;
                int scale = 100;
                if (!isdigit((unsigned char)*p))
                    return DK_EINVAL;
                while (isdigit((unsigned char)*p)) {
                    ms += (*p - '0') * scale;
                    scale /= 10;
                    p++;
                }
            }
        }
    }
    int offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om;
        p++;
        if (read_digits(&p, 2, &oh))
            return DK_EINVAL;
        if (*p == ':')
            p++;
        if (read_digits(&p, 2, &om))
            return DK_EINVAL;
        offset_min = sign * (oh * 60 + om);
    }
    if (*p != '\0')
        return DK_EINVAL;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || s > 60)
        return DK_EINVAL;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo == 2 && d == 29 && !leap)
        return DK_EINVAL;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = s};
    time_t t = timegm(&tm);
    *out_ms = ((int64_t)t - (int64_t)offset_min * 60) * 1000 + ms;
    return 0;
}

int dk_duration_parse(const char *text, uint64_t *out_ms, dk_err *err)
{
    if (text == NULL || *text == '\0')
        return dk_err_set(err, DK_EINVAL, "empty duration");
    const char *p = text;
    uint64_t v = 0;
    if (!isdigit((unsigned char)*p))
        return dk_err_set(err, DK_EINVAL, "duration '%s' must start with a number", text);
    while (isdigit((unsigned char)*p)) {
        if (v > (UINT64_MAX - 9) / 10)
            return dk_err_set(err, DK_EINVAL, "duration '%s' is too large", text);
        v = v * 10 + (uint64_t)(*p - '0');
        p++;
    }
    uint64_t mult;
    if (*p == '\0' || strcmp(p, "ms") == 0)
        mult = 1;
    else if (strcmp(p, "s") == 0)
        mult = 1000;
    else if (strcmp(p, "m") == 0)
        mult = 60000;
    else if (strcmp(p, "h") == 0)
        mult = 3600000;
    else if (strcmp(p, "d") == 0)
        mult = 86400000;
    else
        return dk_err_set(err, DK_EINVAL, "duration '%s' has unknown unit (use ms, s, m, h or d)",
                          text);
    if (v != 0 && mult > UINT64_MAX / v)
        return dk_err_set(err, DK_EINVAL, "duration '%s' is too large", text);
    *out_ms = v * mult;
    return 0;
}

/* Bytes from the kernel's random source, read 4 KiB at a time per thread so a
 * request id costs no system call in the common case. */
void dk__random_bytes(unsigned char *dst, size_t n)
{
    static _Thread_local unsigned char pool[4096];
    static _Thread_local size_t avail;
    while (n > 0) {
        if (avail == 0) {
            size_t got = 0;
            while (got < sizeof(pool)) {
                ssize_t r = getrandom(pool + got, sizeof(pool) - got, 0);
                if (r < 0) {
                    if (errno == EINTR)
                        continue;
                    /* Never expected on Linux >= 3.17; degrade rather than abort. */
                    for (; got < sizeof(pool); got++)
                        pool[got] = (unsigned char)rand();
                    break;
                }
                got += (size_t)r;
            }
            avail = sizeof(pool);
        }
        size_t take = n < avail ? n : avail;
        memcpy(dst, pool + sizeof(pool) - avail, take);
        /* Each byte is handed out once. */
        memset(pool + sizeof(pool) - avail, 0, take);
        avail -= take;
        dst += take;
        n -= take;
    }
}

void dk_uuid_v4(char out[37])
{
    unsigned char b[16];
    dk__random_bytes(b, sizeof(b));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[b[i] >> 4];
        *o++ = hex[b[i] & 15];
    }
    *o = '\0';
}

/* Iterative matcher with single-star backtracking: linear in practice, never
 * exponential. `qmark`: `?` matches any one character. */
static bool star_match(const char *pattern, const char *text, bool qmark)
{
    const char *star = NULL, *resume = NULL;
    while (*text) {
        if (*pattern == '*') {
            star = pattern++;
            resume = text;
        } else if ((qmark && *pattern == '?') || *pattern == *text) {
            pattern++;
            text++;
        } else if (star) {
            pattern = star + 1;
            text = ++resume;
        } else {
            return false;
        }
    }
    while (*pattern == '*')
        pattern++;
    return *pattern == '\0';
}

bool dk_glob_match(const char *pattern, const char *text)
{
    return star_match(pattern, text, true);
}

bool dk__event_match(const char *pattern, const char *name)
{
    return pattern == NULL || star_match(pattern, name, false);
}

void dk__thread_name(const char *name) { pthread_setname_np(pthread_self(), name); }

bool dk__strieq_n(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++)
        if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i]))
            return false;
    return true;
}
