/* Rate limiter back end on Redis: each key is a hash "donkey:<key>" updated
 * by one Lua script, so the decision is atomic across every instance. The
 * script reads Redis's own clock (TIME), so instances with different clocks
 * share one window; it mirrors the in-memory algorithms of ratelimit.c
 * (fixed window from the first call, every call counted; sliding-window
 * counter, rejected calls not counted) and sets the key to expire when the
 * window no longer matters. */
#include "adapters/redis.h"

#ifdef DK_HAVE_HIREDIS

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX "donkey:"

/* KEYS[1] window hash; ARGV limit, window ms, algorithm ("f" or "s").
 * Returns {allowed 0/1, remaining, reset_in_ms, retry_in_ms}. */
static const char SCRIPT[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local limit = tonumber(ARGV[1])\n"
    "local win = tonumber(ARGV[2])\n"
    "local alg = ARGV[3]\n"
    "local h = redis.call('HMGET', KEYS[1], 'a', 's', 'l', 'c', 'p')\n"
    "local start, len, count, prev\n"
    "if h[1] == alg then\n"
    "  start = tonumber(h[2]); len = tonumber(h[3]); count = tonumber(h[4]); prev = tonumber(h[5])\n"
    "  local span = len\n"
    "  if alg == 's' then span = 2 * len end\n"
    "  if start == nil or len == nil or now >= start + span then start = nil end\n"
    "end\n"
    "if start == nil then start = now; len = win; count = 0; prev = 0 end\n"
    "local allowed, remaining, reset_in, retry_in\n"
    "if alg == 'f' then\n"
    "  if now >= start + len then start = now; count = 0 end\n"
    "  count = count + 1\n"
    "  allowed = count <= limit\n"
    "  if count >= limit then remaining = 0 else remaining = limit - count end\n"
    "  reset_in = start + len - now\n"
    "  if allowed then retry_in = 0 else retry_in = reset_in end\n"
    "else\n"
    "  if now >= start + 2 * len then prev = 0; count = 0; start = now\n"
    "  elseif now >= start + len then prev = count; count = 0; start = start + len end\n"
    "  local elapsed = now - start\n"
    "  local weighted = prev * (len - elapsed)\n"
    "  local budget = limit * len\n"
    "  reset_in = start + len - now\n"
    "  if weighted + (count + 1) * len <= budget then\n"
    "    count = count + 1; allowed = true\n"
    "    remaining = math.floor((budget - weighted - count * len) / len); retry_in = 0\n"
    "  else\n"
    "    allowed = false; remaining = 0\n"
    "    local function need(p, c)\n"
    "      local room = math.floor((limit - c - 1) * len / p)\n"
    "      if room >= len then return 0 end\n"
    "      return len - room\n"
    "    end\n"
    "    if limit == 0 then retry_in = reset_in\n"
    "    elseif count < limit then retry_in = need(prev, count) - elapsed\n"
    "    else\n"
    "      local e = 0\n"
    "      if count > 0 then e = need(count, 0) end\n"
    "      retry_in = reset_in + e\n"
    "    end\n"
    "    if retry_in < 1 then retry_in = 1 end\n"
    "  end\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'a', alg, 's', string.format('%.0f', start),"
    " 'l', string.format('%.0f', len), 'c', count, 'p', prev)\n"
    "local ttl = start + len - now\n"
    "if alg == 's' then ttl = start + 2 * len - now end\n"
    "if ttl < 1 then ttl = 1 end\n"
    "redis.call('PEXPIRE', KEYS[1], string.format('%.0f', ttl))\n"
    "local a = 0\n"
    "if allowed then a = 1 end\n"
    "return {a, remaining, reset_in, retry_in}\n";

typedef struct rlimit {
    dk__redis *r;
    dk__redis_script script;
} rlimit;

static uint64_t as_u64(const redisReply *e)
{
    return e->type == REDIS_REPLY_INTEGER && e->integer > 0 ? (uint64_t)e->integer : 0;
}

static int rl_hit(void *user, const char *key, uint64_t limit, uint64_t window_ms,
                  dk_ratelimit_algorithm algorithm, uint64_t now_ms, dk_ratelimit_hit *out)
{
    rlimit *rl = user;
    size_t klen = strlen(key);
    char *k = malloc(sizeof(PREFIX) + klen);
    if (k == NULL)
        return DK_ENOMEM;
    memcpy(k, PREFIX, sizeof(PREFIX) - 1);
    memcpy(k + sizeof(PREFIX) - 1, key, klen + 1);
    char lim[24], win[24];
    snprintf(lim, sizeof(lim), "%" PRIu64, limit);
    snprintf(win, sizeof(win), "%" PRIu64, window_ms);
    const char *alg = algorithm == DK_RATELIMIT_FIXED ? "f" : "s";
    const char *argv[] = {k, lim, win, alg};
    size_t len[] = {sizeof(PREFIX) - 1 + klen, strlen(lim), strlen(win), 1};
    redisReply *rep = NULL;
    int rc = dk__redis_eval(rl->r, &rl->script, 1, 4, argv, len, &rep);
    free(k);
    if (rc < 0)
        return rc;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 4) {
        freeReplyObject(rep);
        return DK_EINTERNAL;
    }
    out->allowed = as_u64(rep->element[0]) == 1;
    out->remaining = as_u64(rep->element[1]);
    out->reset_in_ms = as_u64(rep->element[2]);
    out->retry_in_ms = as_u64(rep->element[3]);
    freeReplyObject(rep);
    return 0;
}

static int rl_reset(void *user, const char *key)
{
    rlimit *rl = user;
    size_t klen = strlen(key);
    char *k = malloc(sizeof(PREFIX) + klen);
    if (k == NULL)
        return DK_ENOMEM;
    memcpy(k, PREFIX, sizeof(PREFIX) - 1);
    memcpy(k + sizeof(PREFIX) - 1, key, klen + 1);
    const char *argv[] = {"DEL", k};
    size_t len[] = {3, sizeof(PREFIX) - 1 + klen};
    redisReply *rep = NULL;
    int rc = dk__redis_cmd(rl->r, &rep, 2, argv, len);
    free(k);
    if (rc < 0)
        return rc;
    rc = rep->type == REDIS_REPLY_INTEGER && rep->integer > 0 ? 0 : DK_ENOTFOUND;
    freeReplyObject(rep);
    return rc;
}

static void rl_destroy(void *user)
{
    free(user);
}

int dk__redis_ratelimit_backend(dk__redis *r, dk_ratelimit_backend *out)
{
    rlimit *rl = calloc(1, sizeof(*rl));
    if (rl == NULL)
        return DK_ENOMEM;
    rl->r = r;
    dk__redis_script_init(&rl->script, SCRIPT);
    memset(out, 0, sizeof(*out));
    out->hit = rl_hit;
    out->reset = rl_reset;
    out->destroy = rl_destroy;
    out->user = rl;
    return 0;
}

#else
int dk__redis_ratelimit_backend(dk__redis *r, dk_ratelimit_backend *out) { return DK_ESTATE; }
#endif
