/* Cron expression parser and next-fire-time computation.
 *
 * Fields are parsed once into bit sets. The next fire time is found on the
 * local civil calendar by carrying field by field (a month that cannot match is
 * skipped whole, then days, hours, minutes, seconds), and each candidate civil
 * time is then mapped to UTC instants with the zone's offsets; a civil time with
 * no instant (DST gap) is skipped, one with two (DST overlap) fires at the first. */
#include "donkey/cron.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEARCH_YEARS 30

struct dk_cron_expr {
    uint64_t sec, min;
    uint32_t hour, dom; /* dom bits 1..31 */
    uint16_t mon;       /* bits 1..12 */
    uint8_t dow;        /* bits 0..6, Sunday = 0 */
    bool dom_star, dow_star;
    bool and_days;
};

enum { F_SEC, F_MIN, F_HOUR, F_DOM, F_MON, F_DOW };

static const struct {
    const char *name;
    int lo, hi;
} fields[] = {
    {"second", 0, 59},       {"minute", 0, 59}, {"hour", 0, 23},
    {"day-of-month", 1, 31}, {"month", 1, 12},  {"day-of-week", 0, 7},
};

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const day_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

/* Reads a number or (for month/day-of-week) a three-letter name at *p. */
static int read_value(const char **p, int field, int *out)
{
    const char *s = *p;
    if (isdigit((unsigned char)*s)) {
        long v = 0;
        while (isdigit((unsigned char)*s)) {
            v = v * 10 + (*s - '0');
            if (v > 100000)
                return -1;
            s++;
        }
        *out = (int)v;
        *p = s;
        return 0;
    }
    const char *const *names = field == F_MON ? month_names : field == F_DOW ? day_names : NULL;
    int n = field == F_MON ? 12 : 7;
    if (names == NULL || !isalpha((unsigned char)s[0]) || !isalpha((unsigned char)s[1]) ||
        !isalpha((unsigned char)s[2]) || isalpha((unsigned char)s[3]))
        return -1;
    for (int i = 0; i < n; i++) {
        if (toupper((unsigned char)s[0]) == names[i][0] &&
            toupper((unsigned char)s[1]) == names[i][1] &&
            toupper((unsigned char)s[2]) == names[i][2]) {
            *out = field == F_MON ? i + 1 : i;
            *p = s + 3;
            return 0;
        }
    }
    return -1;
}

/* Parses one field (`text`, length `len`) into `*bits`. */
static int parse_field(const char *expr, const char *text, size_t len, int field, uint64_t *bits,
                       bool *star, dk_err *err)
{
    char buf[128];
    if (len >= sizeof(buf))
        return dk_err_set(err, DK_EINVAL, "cron '%s': %s field is too long", expr,
                          fields[field].name);
    memcpy(buf, text, len);
    buf[len] = '\0';
    int lo = fields[field].lo, hi = fields[field].hi;
    *bits = 0;
    *star = buf[0] == '*' || buf[0] == '?';
    if (buf[0] == ',' || buf[len - 1] == ',' || strstr(buf, ",,") != NULL)
        return dk_err_set(err, DK_EINVAL, "cron '%s': empty list item in %s field", expr,
                          fields[field].name);
    char *save = NULL;
    for (char *part = strtok_r(buf, ",", &save); part; part = strtok_r(NULL, ",", &save)) {
        const char *p = part;
        int a, b, step = 1;
        bool range = false; /* `*` or `a-b`: a step stays inside it */
        if (*p == '*' || (*p == '?' && (field == F_DOM || field == F_DOW))) {
            a = lo;
            b = field == F_DOW ? 6 : hi; /* 7 would repeat Sunday */
            p++;
            range = true;
        } else {
            if (read_value(&p, field, &a) < 0)
                goto bad;
            b = a;
            if (*p == '-') {
                p++;
                if (read_value(&p, field, &b) < 0)
                    goto bad;
                range = true; /* `a-a/s` is just `a` */
            }
        }
        if (*p == '/') {
            p++;
            if (read_value(&p, F_SEC, &step) < 0)
                goto bad;
            if (step < 1)
                return dk_err_set(err, DK_EINVAL, "cron '%s': step must be at least 1 in %s '%s'",
                                  expr, fields[field].name, part);
            if (!range)
                b = hi; /* "a/s" runs to the field's end (day-of-week: to 7 = Sunday) */
        }
        if (*p != '\0')
            goto bad;
        if (a < lo || a > hi || b < lo || b > hi)
            return dk_err_set(err, DK_EINVAL, "cron '%s': %s value out of range %d-%d in '%s'",
                              expr, fields[field].name, lo, hi, part);
        if (a > b)
            return dk_err_set(err, DK_EINVAL, "cron '%s': %s range '%s' is reversed", expr,
                              fields[field].name, part);
        for (int v = a; v <= b; v += step)
            *bits |= UINT64_C(1) << (field == F_DOW && v == 7 ? 0 : v);
        continue;
    bad:
        return dk_err_set(err, DK_EINVAL, "cron '%s': invalid %s '%s'", expr, fields[field].name,
                          part);
    }
    if (*bits == 0)
        return dk_err_set(err, DK_EINVAL, "cron '%s': empty %s field", expr, fields[field].name);
    return 0;
}

static const int max_days[] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

int dk_cron_expr_parse(const char *text, unsigned flags, dk_cron_expr **out, dk_err *err)
{
    *out = NULL;
    if (text == NULL)
        return dk_err_set(err, DK_EINVAL, "cron expression is NULL");
    const char *start[7];
    size_t len[7];
    int n = 0;
    for (const char *p = text; *p;) {
        while (*p && isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        if (n == 7)
            return dk_err_set(err, DK_EINVAL, "cron '%s': expected 5 or 6 fields, got more than 6",
                              text);
        start[n] = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        len[n] = (size_t)(p - start[n]);
        n++;
    }
    if (n != 5 && n != 6)
        return dk_err_set(err, DK_EINVAL, "cron '%s': expected 5 or 6 fields, got %d", text, n);
    dk_cron_expr e = {0};
    int first = n == 6 ? F_SEC : F_MIN;
    if (n == 5)
        e.sec = 1; /* second 0 */
    for (int f = first; f <= F_DOW; f++) {
        uint64_t bits = 0;
        bool star = false;
        int rc = parse_field(text, start[f - first], len[f - first], f, &bits, &star, err);
        if (rc < 0)
            return rc;
        switch (f) {
        case F_SEC: e.sec = bits; break;
        case F_MIN: e.min = bits; break;
        case F_HOUR: e.hour = (uint32_t)bits; break;
        case F_DOM:
            e.dom = (uint32_t)bits;
            e.dom_star = star;
            break;
        case F_MON: e.mon = (uint16_t)bits; break;
        default:
            e.dow = (uint8_t)bits;
            e.dow_star = star;
            break;
        }
    }
    e.and_days = (flags & DK_CRON_DOM_AND_DOW) != 0;
    /* A restricted day-of-month decides alone unless an OR-ed day-of-week can fire. */
    if (!e.dom_star && (e.dow_star || e.and_days)) {
        bool possible = false;
        for (int m = 1; m <= 12 && !possible; m++)
            if (e.mon & (1u << m))
                for (int d = 1; d <= max_days[m] && !possible; d++)
                    possible = (e.dom >> d) & 1;
        if (!possible)
            return dk_err_set(err, DK_EINVAL,
                              "cron '%s': never fires (no selected month has that day)", text);
    }
    *out = malloc(sizeof(**out));
    if (*out == NULL)
        return dk_err_set(err, DK_ENOMEM, "out of memory");
    **out = e;
    return 0;
}

void dk_cron_expr_free(dk_cron_expr *e) { free(e); }

/* ------------------------------------------------------------------ */
/* Civil calendar arithmetic (proleptic Gregorian, no time zone)        */

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int days_in(int64_t y, int m) { return m == 2 ? (is_leap(y) ? 29 : 28) : max_days[m]; }

struct civil {
    int64_t y;
    int mo, d, h, mi, s;
};

static void civil_from_seconds(int64_t t, struct civil *c)
{
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int64_t rem = t - days * 86400;
    /* Inverse of days_from_civil. */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    c->d = (int)(doy - (153 * mp + 2) / 5 + 1);
    c->mo = (int)(mp < 10 ? mp + 3 : mp - 9);
    c->y = yoe + era * 400 + (c->mo <= 2);
    c->h = (int)(rem / 3600);
    c->mi = (int)(rem % 3600 / 60);
    c->s = (int)(rem % 60);
}

static int64_t civil_seconds(const struct civil *c)
{
    return days_from_civil(c->y, c->mo, c->d) * 86400 + c->h * 3600 + c->mi * 60 + c->s;
}

/* Carries overflowing fields upwards. */
static void normalize(struct civil *c)
{
    if (c->s > 59) {
        c->s = 0;
        c->mi++;
    }
    if (c->mi > 59) {
        c->mi = 0;
        c->h++;
    }
    if (c->h > 23) {
        c->h = 0;
        c->d++;
    }
    if (c->d > days_in(c->y, c->mo)) {
        c->d = 1;
        c->mo++;
    }
    if (c->mo > 12) {
        c->mo = 1;
        c->y++;
    }
}

/* Lowest set bit >= from, or -1. */
static int next_bit(uint64_t bits, int from, int max)
{
    for (int v = from; v <= max; v++)
        if ((bits >> v) & 1)
            return v;
    return -1;
}

static bool day_matches(const dk_cron_expr *e, const struct civil *c)
{
    bool dom = (e->dom >> c->d) & 1;
    int64_t days = days_from_civil(c->y, c->mo, c->d);
    int wd = (int)(((days % 7) + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
    bool dow = (e->dow >> wd) & 1;
    if (e->and_days || e->dom_star || e->dow_star)
        return dom && dow;
    return dom || dow;
}

/* ------------------------------------------------------------------ */
/* Time zones                                                          */

/* glibc keeps one process-wide zone; every conversion for a named zone sets TZ,
 * converts and restores it under this lock. Nothing else in donkey uses the
 * local zone, so the brief switch is invisible to it. */
static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct zone {
    bool utc;
} zone;

static bool is_utc_name(const char *tz)
{
    return tz == NULL || *tz == '\0' || strcmp(tz, "UTC") == 0 || strcmp(tz, "Etc/UTC") == 0 ||
           strcmp(tz, "GMT") == 0 || strcmp(tz, "Etc/GMT") == 0 || strcmp(tz, "Z") == 0;
}

bool dk_cron_tz_valid(const char *tz)
{
    if (is_utc_name(tz))
        return true;
    if (tz[0] == '/' || strstr(tz, "..") != NULL || strlen(tz) > 200)
        return false;
    for (const char *p = tz; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("/_+-", *p))
            return false;
    const char *dir = getenv("TZDIR");
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", tz);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return false;
    char magic[4] = {0};
    size_t got = fread(magic, 1, 4, f);
    fclose(f);
    return got == 4 && memcmp(magic, "TZif", 4) == 0;
}

/* UTC offset in seconds at instant `t`. Called with tz_lock held and TZ set for named zones. */
static int64_t offset_at(const zone *z, int64_t t)
{
    if (z->utc)
        return 0;
    time_t tt = (time_t)t;
    struct tm tm;
    if (localtime_r(&tt, &tm) == NULL)
        return 0;
    return tm.tm_gmtoff;
}

/* Earliest instant whose local civil time is `local`, or false in a DST gap.
 * Assumes at most one offset change within a day either side. */
static bool resolve(const zone *z, int64_t local, int64_t *out)
{
    if (z->utc) {
        *out = local;
        return true;
    }
    int64_t offs[3] = {offset_at(z, local - 86400), offset_at(z, local),
                       offset_at(z, local + 86400)};
    bool found = false;
    for (int i = 0; i < 3; i++) {
        int64_t t = local - offs[i];
        if (offset_at(z, t) == offs[i] && (!found || t < *out)) {
            *out = t;
            found = true;
        }
    }
    return found;
}

static int search(const dk_cron_expr *e, const zone *z, int64_t after_s, int64_t *out_s)
{
    struct civil c;
    civil_from_seconds(after_s + offset_at(z, after_s) + 1, &c);
    int64_t last_year = c.y + SEARCH_YEARS;
    while (c.y <= last_year) {
        if (!((e->mon >> c.mo) & 1)) {
            c.mo++;
            c.d = 1;
            c.h = c.mi = c.s = 0;
            if (c.mo > 12) {
                c.mo = 1;
                c.y++;
            }
            continue;
        }
        if (!day_matches(e, &c)) {
            c.d++;
            c.h = c.mi = c.s = 0;
            normalize(&c);
            continue;
        }
        int v = next_bit(e->hour, c.h, 23);
        if (v != c.h) {
            if (v < 0) {
                c.d++;
                c.h = 0;
            } else {
                c.h = v;
            }
            c.mi = c.s = 0;
            normalize(&c);
            continue;
        }
        v = next_bit(e->min, c.mi, 59);
        if (v != c.mi) {
            if (v < 0) {
                c.h++;
                c.mi = 0;
            } else {
                c.mi = v;
            }
            c.s = 0;
            normalize(&c);
            continue;
        }
        v = next_bit(e->sec, c.s, 59);
        if (v != c.s) {
            if (v < 0) {
                c.mi++;
                c.s = 0;
            } else {
                c.s = v;
            }
            normalize(&c);
            continue;
        }
        int64_t t = 0;
        /* In a gap the civil time never happens; in an overlap it already happened
         * if its first instant is not after the reference. */
        if (resolve(z, civil_seconds(&c), &t) && t > after_s) {
            *out_s = t;
            return 0;
        }
        c.s++;
        normalize(&c);
    }
    return DK_ENOTFOUND;
}

int dk_cron_expr_next(const dk_cron_expr *e, const char *tz, int64_t after_ms, int64_t *out_ms,
                      dk_err *err)
{
    if (after_ms < 0)
        return dk_err_set(err, DK_EINVAL, "reference time must not be negative");
    /* 9999-12-31T23:59:59.999Z: civil-time arithmetic and the result in ms
     * stay far inside int64_t below it. */
    if (after_ms > 253402300799999LL)
        return dk_err_set(err, DK_EINVAL, "reference time must be before the year 10000");
    if (!dk_cron_tz_valid(tz))
        return dk_err_set(err, DK_EINVAL, "unknown time zone '%s'", tz);
    zone z = {.utc = is_utc_name(tz)};
    int64_t s = 0;
    int rc;
    if (z.utc) {
        rc = search(e, &z, after_ms / 1000, &s);
    } else {
        pthread_mutex_lock(&tz_lock);
        const char *old = getenv("TZ");
        char *saved = old ? strdup(old) : NULL;
        setenv("TZ", tz, 1);
        tzset();
        rc = search(e, &z, after_ms / 1000, &s);
        if (saved) {
            setenv("TZ", saved, 1);
            free(saved);
        } else {
            unsetenv("TZ");
        }
        tzset();
        pthread_mutex_unlock(&tz_lock);
    }
    if (rc < 0)
        return dk_err_set(err, rc, "cron expression never fires within %d years", SEARCH_YEARS);
    if (s > INT64_MAX / 1000)
        return dk_err_set(err, DK_ENOTFOUND, "cron expression never fires before the year 10000");
    *out_ms = s * 1000;
    return 0;
}

int dk_cron_next(const char *expr, const char *tz, int64_t after_ms, int64_t *out_ms, dk_err *err)
{
    dk_cron_expr *e;
    int rc = dk_cron_expr_parse(expr, 0, &e, err);
    if (rc < 0)
        return rc;
    rc = dk_cron_expr_next(e, tz, after_ms, out_ms, err);
    dk_cron_expr_free(e);
    return rc;
}
