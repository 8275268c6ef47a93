/* Conformance routes for the cluster test (tests/cluster): job handlers that
 * record each execution in the database, so a test can prove that every job
 * ran to completion exactly once across instances, and the instance id.
 *
 *   job "count"      inserts (job id, instance) into conf_cluster_runs
 *   job "slowCount"  sleeps data.ms (default 1500) first
 *   conf.cluster.runs  {} -> {"total", "distinct", "duplicates": [job ids]}
 *   conf.cluster.whoami {} -> {"pid"}
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include "conf.h"

#include <donkey/db.h>
#include <donkey/jobs.h>
#include <donkey/plugin.h>

#include <time.h>
#include <unistd.h>

static const dk_migration cluster_migrations[] = {
    {1, "create_runs",
     "CREATE TABLE IF NOT EXISTS conf_cluster_runs (job_id BIGINT NOT NULL, pid BIGINT NOT NULL)",
     NULL},
    {0},
};

static const dk_plugin cluster_plugin = {
    .name = "confCluster",
    .version = "1.0.0",
    .migrations = cluster_migrations,
};

static int record_run(dk_job_ctx *jc)
{
    json_t *params = json_pack("[I, I]", (json_int_t)dk_job_id(jc), (json_int_t)getpid());
    int rc = params != NULL ? dk_db_exec(dk_job_db(jc),
                                         "INSERT INTO conf_cluster_runs (job_id, pid)"
                                         " VALUES (?, ?)",
                                         params, NULL, NULL)
                            : DK_ENOMEM;
    json_decref(params);
    return rc;
}

static int job_count(dk_job_ctx *jc, const json_t *data, json_t **result, void *user)
{
    int rc = record_run(jc);
    if (rc < 0)
        return dk_job_fail(jc, "cannot record the run: %s", dk_strerror(rc));
    *result = json_pack("{s:I}", "pid", (json_int_t)getpid());
    return 0;
}

static int job_slow_count(dk_job_ctx *jc, const json_t *data, json_t **result, void *user)
{
    json_int_t ms = json_integer_value(json_object_get(data, "ms"));
    if (ms <= 0)
        ms = 1500;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
    return job_count(jc, data, result, user);
}

static int cluster_runs(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    dk_db *db = dk_ctx_core(ctx)->db;
    json_t *totals = NULL, *dups = NULL;
    int rc = dk_db_query_one(db,
                             "SELECT COUNT(*) AS total, COUNT(DISTINCT job_id) AS uniq"
                             " FROM conf_cluster_runs",
                             NULL, &totals);
    if (rc == 0)
        rc = dk_db_query(db,
                         "SELECT job_id FROM conf_cluster_runs GROUP BY job_id"
                         " HAVING COUNT(*) > 1 ORDER BY job_id",
                         NULL, &dups);
    if (rc < 0) {
        json_decref(totals);
        return dk_fail_code(ctx, rc, "runs");
    }
    json_t *ids = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(dups, i, row)
        json_array_append(ids, json_object_get(row, "job_id"));
    *out = json_pack("{s:O, s:O, s:o}", "total", json_object_get(totals, "total"), "distinct",
                     json_object_get(totals, "uniq"), "duplicates", ids);
    json_decref(totals);
    json_decref(dups);
    return *out != NULL ? 0 : DK_ENOMEM;
}

static int cluster_whoami(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    *out = json_pack("{s:I}", "pid", (json_int_t)getpid());
    return *out != NULL ? 0 : DK_ENOMEM;
}

int conf_cluster(dk_app *app, dk_router *r)
{
    int rc = 0;
    dk_jobs *jobs = dk_app_core(app)->jobs;
    if (jobs == NULL || dk_app_add_plugin(app, &cluster_plugin, NULL) != 0)
        return -1;
    rc |= dk_jobs_register(jobs, "count", job_count, NULL, NULL);
    rc |= dk_jobs_register(jobs, "slowCount", job_slow_count, NULL, NULL);
    rc |= dk_route_typed(r, "cluster.runs", NULL, NULL, cluster_runs, NULL);
    rc |= dk_route_typed(r, "cluster.whoami", NULL, NULL, cluster_whoami, NULL);
    return rc;
}
