/* Prometheus text exposition (format 0.0.4) helpers and the shared
 * counter/histogram types the services keep for /metrics and the operations
 * page (docs/observability.md). Not installed.
 *
 * dk__hist is for values written by several threads (job runs, database
 * queries): atomic adds, never a lock. The per-route request counters of the
 * HTTP threads are per-thread instead (src/http/metrics.c). */
#ifndef DK_OBS_PROM_H
#define DK_OBS_PROM_H

#include "base/internal.h"

#include <stdatomic.h>
#include <stdint.h>

/* Duration histogram buckets (upper bounds, microseconds): 0.1 ms .. 10 s. */
#define DK__HIST_N 16
extern const uint64_t dk__hist_bounds_us[DK__HIST_N];

typedef struct dk__hist {
    _Atomic uint64_t bucket[DK__HIST_N + 1]; /* not cumulative; last: above 10 s */
    _Atomic uint64_t sum_us;
} dk__hist;

/* The bucket index of a duration (0..DK__HIST_N). */
static inline int dk__hist_index(uint64_t us)
{
    int i = 0;
    while (i < DK__HIST_N && us > dk__hist_bounds_us[i])
        i++;
    return i;
}

/* Records one observation (any thread). */
void dk__hist_add(dk__hist *h, uint64_t us);

/* Monotonic microseconds. */
uint64_t dk__mono_us(void);

/* "# HELP name help\n# TYPE name type\n". */
int dk__prom_head(dk__buf *b, const char *name, const char *type, const char *help);
/* Appends `value` escaped as a label value (\\, \", \n). */
int dk__prom_label(dk__buf *b, const char *value);
/* name{labels} value\n, where `labels` is preformatted ("" for none:
 * `name value`). */
int dk__prom_sample(dk__buf *b, const char *name, const char *labels, double value);
int dk__prom_sample_u(dk__buf *b, const char *name, const char *labels, uint64_t value);
/* A histogram series (_bucket with le, _sum in seconds, _count) from
 * non-cumulative counts (DK__HIST_N + 1 of them) and a sum in microseconds.
 * `labels`: preformatted extra labels without braces ("" for none). */
int dk__prom_hist(dk__buf *b, const char *name, const char *labels, const uint64_t *counts,
                  uint64_t sum_us);
/* Same from a dk__hist. */
int dk__prom_hist_of(dk__buf *b, const char *name, const char *labels, dk__hist *h);
/* Quantile q (0..1) of a histogram in seconds, linear within the bucket as
 * Prometheus' histogram_quantile; 0 when empty. */
double dk__hist_quantile(const uint64_t *counts, double q);

#endif
