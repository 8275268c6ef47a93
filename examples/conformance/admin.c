/* Extras for the operations page (issue 17), installed with --admin-token:
 * a job "failOnce" that fails its first run for each data.key and succeeds
 * afterwards (so "retry now" can be seen turning a failure into a success),
 * and a cron task "conf-report" due every Monday at 03:00 (so "run now" is
 * the only thing that runs it during a test). */
#include "conf.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static char *seen[256];
static size_t nseen;

static int job_fail_once(dk_job_ctx *jc, const json_t *data, json_t **result, void *user)
{
    (void)user;
    const char *key = json_string_value(json_object_get(data, "key"));
    if (key == NULL)
        key = "";
    pthread_mutex_lock(&seen_lock);
    bool first = true;
    for (size_t i = 0; i < nseen; i++)
        if (strcmp(seen[i], key) == 0)
            first = false;
    if (first && nseen < sizeof(seen) / sizeof(seen[0]))
        seen[nseen++] = strdup(key);
    pthread_mutex_unlock(&seen_lock);
    if (first)
        return dk_job_fail(jc, "failOnce: first run of '%s' fails", key);
    *result = json_pack("{s:s}", "ok", key);
    return 0;
}

static int report(const char *name, void *user)
{
    (void)name;
    (void)user;
    return 0;
}

int conf_admin(dk_app *app)
{
    const dk_core *core = dk_app_core(app);
    char id[DK_CRON_ID_SIZE];
    int rc = dk_jobs_register(core->jobs, "failOnce", job_fail_once, NULL, NULL);
    if (rc == 0)
        rc = dk_cron_schedule(core->cron, "conf-report", "0 3 * * 1", report, NULL, NULL, NULL,
                              id, NULL);
    return rc < 0 ? rc : 0;
}
