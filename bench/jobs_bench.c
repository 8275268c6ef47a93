/* Jobs throughput: enqueue N no-op jobs into a SQLite file and measure until
 * the last one is recorded `completed` (counted through job.completed events,
 * which are emitted after the database update).
 *
 *   jobs_bench [N=20000] [concurrency=5] [db=sqlite:/tmp/dk_jobs_bench.db]
 *
 * The database file is deleted first. Prints enqueue rate and end-to-end rate. */
#include <donkey/db.h>
#include <donkey/events.h>
#include <donkey/jobs.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int completed;

static int noop(dk_job_ctx *jc, const json_t *data, json_t **result, void *user)
{
    *result = json_true();
    return 0;
}

static int on_completed(const char *event, const json_t *data, void *user)
{
    atomic_fetch_add(&completed, 1);
    return 0;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 20000;
    int conc = argc > 2 ? atoi(argv[2]) : 5;
    const char *url = argc > 3 ? argv[3] : "sqlite:/tmp/dk_jobs_bench.db";
    if (strncmp(url, "sqlite:", 7) == 0 && strncmp(url, "sqlite::", 8) != 0) {
        char path[512];
        const char *suffixes[] = {"", "-wal", "-shm"};
        for (int i = 0; i < 3; i++) {
            snprintf(path, sizeof(path), "%s%s", url + 7, suffixes[i]);
            unlink(path);
        }
    }
    dk_err err = {0};
    dk_db *db = dk_db_open(url, &err);
    if (db == NULL) {
        fprintf(stderr, "jobs_bench: %s\n", err.message);
        return 1;
    }
    dk_events *ev = dk_events_new(NULL);
    dk_events_on(ev, "job.completed", on_completed, NULL, NULL);

    dk_jobs_options o;
    dk_jobs_options_init(&o);
    o.db = db;
    o.events = ev;
    o.concurrency = conc;
    dk_jobs *jobs = dk_jobs_new(&o);
    dk_jobs_register(jobs, "noop", noop, NULL, NULL);
    if (dk_jobs_start(jobs, &err) != 0) {
        fprintf(stderr, "jobs_bench: %s\n", err.message);
        return 1;
    }

    json_t *data = json_pack("{s:s, s:i}", "kind", "bench", "n", 0);
    uint64_t t0 = dk_now_ms();
    for (int i = 0; i < n; i++) {
        json_object_set_new(data, "n", json_integer(i));
        int rc = dk_jobs_enqueue(jobs, "noop", data, NULL, NULL);
        if (rc != 0) {
            fprintf(stderr, "jobs_bench: enqueue: %s (%s)\n", dk_strerror(rc), dk_db_errmsg(db));
            return 1;
        }
    }
    uint64_t t1 = dk_now_ms();
    while (atomic_load(&completed) < n) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
        if (dk_now_ms() - t0 > 300000) {
            fprintf(stderr, "jobs_bench: timed out at %d/%d\n", atomic_load(&completed), n);
            return 1;
        }
    }
    uint64_t t2 = dk_now_ms();
    json_decref(data);

    json_t *l = NULL;
    dk_jobs_list(jobs, "noop", "completed", 0, &l);
    size_t done = json_array_size(l);
    json_decref(l);
    double enq = (double)(t1 - t0) / 1000.0, all = (double)(t2 - t0) / 1000.0;
    printf("jobs_bench: %d jobs, concurrency %d, %s\n", n, conc, url);
    printf("  enqueue:    %.0f jobs/s (%.2f s)\n", n / (enq > 0 ? enq : 0.001), enq);
    printf("  end to end: %.0f jobs/s (%.2f s, %zu rows completed)\n",
           n / (all > 0 ? all : 0.001), all, done);
    dk_jobs_free(jobs);
    dk_events_free(ev);
    dk_db_close(db);
    return done == (size_t)n ? 0 : 1;
}
