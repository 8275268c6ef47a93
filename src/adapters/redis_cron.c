/* Cron back end on Redis: an occurrence is claimed with
 * SET donkey:cron:<name>:<at_ms> <instance> NX PX <keep>, so exactly one
 * instance of the cluster runs it. The claim outlives the occurrence by
 * CLAIM_KEEP_MS, far more than the clock skew between instances. When Redis
 * cannot be reached the claim reports an error and the scheduler runs the
 * task anyway (at least once rather than never; logged). */
#include "adapters/redis.h"

#ifdef DK_HAVE_HIREDIS

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLAIM_KEEP_MS "600000"

typedef struct rcron {
    dk__redis *r;
} rcron;

static int rcron_claim(void *user, const char *name, int64_t at_ms)
{
    rcron *c = user;
    size_t n = strlen(name) + 48;
    char *key = malloc(n);
    if (key == NULL)
        return DK_ENOMEM;
    snprintf(key, n, "donkey:cron:%s:%" PRId64, name, at_ms);
    const char *inst = dk__redis_instance(c->r);
    const char *argv[] = {"SET", key, inst, "NX", "PX", CLAIM_KEEP_MS};
    size_t len[] = {3, strlen(key), strlen(inst), 2, 2, sizeof(CLAIM_KEEP_MS) - 1};
    redisReply *rep = NULL;
    int rc = dk__redis_cmd(c->r, &rep, 6, argv, len);
    free(key);
    if (rc < 0)
        return rc;
    rc = rep->type == REDIS_REPLY_STATUS ? 1 : 0; /* "OK", or nil when already claimed */
    freeReplyObject(rep);
    return rc;
}

static void rcron_destroy(void *user)
{
    free(user);
}

int dk__redis_cron_backend(dk__redis *r, dk_cron_backend *out)
{
    rcron *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return DK_ENOMEM;
    c->r = r;
    memset(out, 0, sizeof(*out));
    out->claim = rcron_claim;
    out->destroy = rcron_destroy;
    out->user = c;
    return 0;
}

#else
int dk__redis_cron_backend(dk__redis *r, dk_cron_backend *out) { return DK_ESTATE; }
#endif
