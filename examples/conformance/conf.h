/* The conformance application: every donkey feature behind a route, for
 * black-box tests. Each conf_*.c file adds one area. */
#ifndef CONF_H
#define CONF_H

#include <donkey/donkey.h>

typedef struct conf_flags {
    const char *broken_plugins; /* missing|self|cycle */
    const char *cors_origins;   /* --cors-origins LIST (comma-separated) */
    bool cors_credentials;      /* --cors-credentials */
} conf_flags;

/* hardening.c: the cors middleware on the whole conf router, from
 * --cors-origins / --cors-credentials (issue 14). */
int conf_use_cors(dk_router *r, const conf_flags *flags);

int conf_foundation_routes(dk_router *r);
/* plugins.c: confauth, notes, echoKind, broken plugin sets (issue 3). */
int conf_plugins(dk_app *app, dk_router *r, const conf_flags *flags);
/* services.c: cache, events, rate limit, cron routes (issue 4). */
int conf_services(dk_app *app, dk_router *r);
/* realtime.c: SSE and jobs routes (issue 5). */
int conf_realtime(dk_app *app, dk_router *r);
/* jobs.c: conf.job, conf.jobGet and the confJobs plugin (called from conf_realtime). */
int conf_jobs(dk_app *app, dk_router *r);
/* hardening.c: conf.hardening.log (log redaction). */
int conf_hardening(dk_app *app, dk_router *r);
/* cluster.c: job handlers counting executions, for tests/cluster. */
int conf_cluster(dk_app *app, dk_router *r);

/* waiting.c: conf.wait, conf.dbwait, conf.fetch (handlers that wait). */
int conf_waiting(dk_app *app, dk_router *r);

/* admin.c: the failOnce job and the conf-report cron task, with --admin-token (issue 17). */
int conf_admin(dk_app *app);

#endif
