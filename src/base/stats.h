/* Statistics the services expose to /metrics and the operations page
 * (src/http/metrics.c, src/app/admin.c). Each function is implemented by
 * the service it reads. Not installed. */
#ifndef DK_OBS_STATS_H
#define DK_OBS_STATS_H

#include "base/prom.h"

#include <jansson.h>
#include <stdbool.h>

typedef struct dk_jobs dk_jobs;
typedef struct dk_sse dk_sse;
typedef struct dk_db dk_db;

/* {"names": [{"name","enqueued","started","completed","failed","retried"}],
 *  "depth": {"pending": n, ...}} (depth read from the database when `depth`,
 *  else zeros). New reference, NULL when out of memory. src/services/jobs.c. */
json_t *dk__jobs_stats(dk_jobs *jobs, bool depth);
/* Jobs with `status` (NULL: any), newest first, at most `limit`, as
 * dk_jobs_list(). Offloaded like the public calls. */
int dk__jobs_list_recent(dk_jobs *jobs, const char *status, size_t limit, json_t **out);
/* The jobs' run-duration histogram (borrowed). */
dk__hist *dk__jobs_hist(dk_jobs *jobs);

/* {"clients", "eventsSent", "replayBytes", "channels": [{"name", "clients",
 *  "windowEvents", "windowBytes"}] (most clients first)}. src/web/sse.c. */
json_t *dk__sse_stats(dk_sse *sse);

/* Pool size (most connections), open, in use, callers waiting for one.
 * src/db/db.c. */
typedef struct dk__db_pool_stats {
    int size, open, in_use, waiting;
} dk__db_pool_stats;
void dk__db_pool_stats_get(dk_db *db, dk__db_pool_stats *out);
/* Statement durations of every database handle (borrowed). */
dk__hist *dk__db_hist(void);

/* Slow SSE/stream readers cut off (src/http/server.c). */
uint64_t dk__streams_cut(void);

#endif
