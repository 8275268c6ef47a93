/* Conformance routes for jobs: conf.job (enqueue) and conf.jobGet, with the
 * handlers `ok`, `fail` and `slow`.
 *
 * The plugin "confJobs" registers the handlers on the core's queue
 * (dk_app_core(app)->jobs), which the app starts after plugin init.
 * DK_JOBS_BACKOFF_MS sets the retry base (read by dk_jobs_options_init()). */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include "conf.h"

#include <donkey/jobs.h>
#include <donkey/plugin.h>

#include <stdlib.h>
#include <time.h>

typedef struct conf_jobs_svc {
    dk_jobs *jobs; /* the core's queue (borrowed) */
} conf_jobs_svc;

static int job_ok(dk_job_ctx *jc, const json_t *data, json_t **result, void *user)
{
    /* A log line of the job: it carries the enqueuing request's trace_id. */
    dk_log(dk_job_logger(jc), DK_LOG_INFO, "conf job ok", json_pack("{s:I}", "jobId",
                                                                      (json_int_t)dk_job_id(jc)));
    *result = json_pack("{s:b, s:O}", "done", 1, "data", data);
    return *result != NULL ? 0 : DK_ENOMEM;
}

static int job_fail(dk_job_ctx *jc, const json_t *data, json_t **result, void *user)
{
    return dk_job_fail(jc, "boom");
}

static int job_slow(dk_job_ctx *jc, const json_t *data, json_t **result, void *user)
{
    struct timespec ts = {2, 0};
    while (nanosleep(&ts, &ts) != 0)
        ;
    *result = json_pack("{s:b}", "done", 1);
    return 0;
}

static int conf_jobs_create(dk_plugin_ctx *p, void **out, dk_err *err)
{
    conf_jobs_svc *svc = calloc(1, sizeof(*svc));
    if (svc == NULL)
        return DK_ENOMEM;
    const dk_core *core = dk_plugin_core(p);
    svc->jobs = core->jobs;
    if (svc->jobs == NULL) {
        free(svc);
        return dk_err_set(err, DK_ESTATE, "the app has no jobs service");
    }
    int rc = 0;
    rc = rc ? rc : dk_jobs_register(svc->jobs, "ok", job_ok, NULL, NULL);
    rc = rc ? rc : dk_jobs_register(svc->jobs, "fail", job_fail, NULL, NULL);
    rc = rc ? rc : dk_jobs_register(svc->jobs, "slow", job_slow, NULL, NULL);
    if (rc < 0) {
        free(svc);
        return rc;
    }
    *out = svc;
    return 0;
}

static void conf_jobs_destroy(dk_plugin_ctx *p, void *service)
{
    free(service);
}

static const dk_plugin conf_jobs_plugin = {
    .name = "confJobs",
    .version = "1.0.0",
    .create = conf_jobs_create,
    .destroy = conf_jobs_destroy,
};

static dk_jobs *jobs_of(dk_ctx *ctx)
{
    conf_jobs_svc *svc = dk_ctx_service(ctx, "confJobs");
    return svc != NULL ? svc->jobs : NULL;
}

/* {name, data, maxAttempts?} -> {"id": <job id>} */
static int conf_job(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    dk_jobs *jobs = jobs_of(ctx);
    if (jobs == NULL)
        return dk_fail_internal(ctx, "jobs service missing");
    const char *name = json_string_value(json_object_get(in, "name"));
    dk_jobs_enqueue_options eo = {DK_JOBS_DEFAULT_ATTEMPTS, 0};
    const json_t *max = json_object_get(in, "maxAttempts");
    if (max != NULL)
        eo.max_attempts = (int)json_integer_value(max);
    int64_t id = 0;
    int rc = dk_jobs_enqueue(jobs, name, json_object_get(in, "data"), &eo, &id);
    if (rc == DK_ENOTFOUND)
        return dk_fail(ctx, DK_HTTP_BAD_REQUEST, "No handler registered for job \"%s\"", name);
    if (rc < 0)
        return dk_fail_code(ctx, rc, "enqueue");
    *out = json_pack("{s:I}", "id", (json_int_t)id);
    return *out != NULL ? 0 : DK_ENOMEM;
}

/* {id} -> the job object, 404 when unknown. */
static int conf_job_get(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    dk_jobs *jobs = jobs_of(ctx);
    if (jobs == NULL)
        return dk_fail_internal(ctx, "jobs service missing");
    int rc = dk_jobs_get(jobs, json_integer_value(json_object_get(in, "id")), out);
    if (rc == DK_ENOTFOUND)
        return dk_fail(ctx, DK_HTTP_NOT_FOUND, "Job not found");
    if (rc < 0)
        return dk_fail_code(ctx, rc, "job lookup");
    return 0;
}

int conf_jobs(dk_app *app, dk_router *r)
{
    int rc = 0;
    if (dk_app_add_plugin(app, &conf_jobs_plugin, NULL) != 0)
        rc = -1;
    rc |= dk_route_typed(r, "job",
                         "{\"type\":\"object\",\"properties\":{"
                         "\"name\":{\"type\":\"string\",\"minLength\":1},"
                         "\"data\":{},"
                         "\"maxAttempts\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100}},"
                         "\"required\":[\"name\",\"data\"],\"additionalProperties\":false}",
                         "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\"}},"
                         "\"required\":[\"id\"]}",
                         conf_job, NULL);
    rc |= dk_route_typed(r, "jobGet",
                         "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\"}},"
                         "\"required\":[\"id\"],\"additionalProperties\":false}",
                         NULL, conf_job_get, NULL);
    return rc;
}
