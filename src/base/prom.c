/* Prometheus text exposition helpers; see prom.h. */
#include "base/prom.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

const uint64_t dk__hist_bounds_us[DK__HIST_N] = {
    100,   250,    500,    1000,   2500,    5000,    10000,   25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

void dk__hist_add(dk__hist *h, uint64_t us)
{
    atomic_fetch_add_explicit(&h->bucket[dk__hist_index(us)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
}

uint64_t dk__mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int dk__prom_head(dk__buf *b, const char *name, const char *type, const char *help)
{
    return dk__buf_appendf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

int dk__prom_label(dk__buf *b, const char *value)
{
    for (const char *p = value ? value : ""; *p; p++) {
        int rc;
        if (*p == '\\')
            rc = dk__buf_append(b, "\\\\", 2);
        else if (*p == '"')
            rc = dk__buf_append(b, "\\\"", 2);
        else if (*p == '\n')
            rc = dk__buf_append(b, "\\n", 2);
        else
            rc = dk__buf_append(b, p, 1);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int put_name(dk__buf *b, const char *name, const char *labels)
{
    if (labels != NULL && *labels != '\0')
        return dk__buf_appendf(b, "%s{%s} ", name, labels);
    return dk__buf_appendf(b, "%s ", name);
}

int dk__prom_sample(dk__buf *b, const char *name, const char *labels, double value)
{
    int rc = put_name(b, name, labels);
    if (rc < 0)
        return rc;
    if (isnan(value))
        return dk__buf_appends(b, "NaN\n");
    if (isinf(value))
        return dk__buf_appends(b, value > 0 ? "+Inf\n" : "-Inf\n");
    return dk__buf_appendf(b, "%.17g\n", value);
}

int dk__prom_sample_u(dk__buf *b, const char *name, const char *labels, uint64_t value)
{
    int rc = put_name(b, name, labels);
    return rc < 0 ? rc : dk__buf_appendf(b, "%llu\n", (unsigned long long)value);
}

int dk__prom_hist(dk__buf *b, const char *name, const char *labels, const uint64_t *counts,
                  uint64_t sum_us)
{
    const char *sep = labels != NULL && *labels != '\0' ? "," : "";
    if (labels == NULL)
        labels = "";
    uint64_t cum = 0;
    int rc = 0;
    for (int i = 0; i <= DK__HIST_N && rc == 0; i++) {
        cum += counts[i];
        if (i < DK__HIST_N)
            rc = dk__buf_appendf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep,
                                 (double)dk__hist_bounds_us[i] / 1e6, (unsigned long long)cum);
        else
            rc = dk__buf_appendf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                                 (unsigned long long)cum);
    }
    if (rc == 0)
        rc = *labels ? dk__buf_appendf(b, "%s_sum{%s} %.6f\n%s_count{%s} %llu\n", name, labels,
                                       (double)sum_us / 1e6, name, labels, (unsigned long long)cum)
                     : dk__buf_appendf(b, "%s_sum %.6f\n%s_count %llu\n", name,
                                       (double)sum_us / 1e6, name, (unsigned long long)cum);
    return rc;
}

int dk__prom_hist_of(dk__buf *b, const char *name, const char *labels, dk__hist *h)
{
    uint64_t c[DK__HIST_N + 1];
    for (int i = 0; i <= DK__HIST_N; i++)
        c[i] = atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
    return dk__prom_hist(b, name, labels, c,
                         atomic_load_explicit(&h->sum_us, memory_order_relaxed));
}

double dk__hist_quantile(const uint64_t *counts, double q)
{
    uint64_t total = 0;
    for (int i = 0; i <= DK__HIST_N; i++)
        total += counts[i];
    if (total == 0)
        return 0;
    double rank = q * (double)total, cum = 0;
    for (int i = 0; i <= DK__HIST_N; i++) {
        if (cum + (double)counts[i] >= rank && counts[i] > 0) {
            if (i == DK__HIST_N)
                return (double)dk__hist_bounds_us[DK__HIST_N - 1] / 1e6;
            double lo = i == 0 ? 0 : (double)dk__hist_bounds_us[i - 1] / 1e6;
            double hi = (double)dk__hist_bounds_us[i] / 1e6;
            return lo + (hi - lo) * (rank - cum) / (double)counts[i];
        }
        cum += (double)counts[i];
    }
    return (double)dk__hist_bounds_us[DK__HIST_N - 1] / 1e6;
}
