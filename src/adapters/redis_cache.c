/* Cache back end on Redis: one string key per entry, "donkey:cache:<key>",
 * holding the value's compact JSON text, with PX for the time-to-live. Redis
 * expires entries itself (no sweep); eviction at memory limits is Redis's
 * maxmemory policy. keys() uses SCAN MATCH with the glob translated so that
 * only `*` and `?` are special, as in dk_glob_match(). */
#include "adapters/redis.h"

#ifdef DK_HAVE_HIREDIS

#include "base/internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX "donkey:cache:"
#define PREFIX_LEN (sizeof(PREFIX) - 1)
#define SCAN_COUNT "500"

typedef struct rcache {
    dk__redis *r;
} rcache;

static char *full_key(const char *key, size_t *len)
{
    size_t n = strlen(key);
    char *k = malloc(PREFIX_LEN + n + 1);
    if (k == NULL)
        return NULL;
    memcpy(k, PREFIX, PREFIX_LEN);
    memcpy(k + PREFIX_LEN, key, n + 1);
    *len = PREFIX_LEN + n;
    return k;
}

static int one_key(rcache *c, const char *cmd, const char *key, redisReply **out)
{
    size_t klen;
    char *k = full_key(key, &klen);
    if (k == NULL)
        return DK_ENOMEM;
    const char *argv[] = {cmd, k};
    size_t len[] = {strlen(cmd), klen};
    int rc = dk__redis_cmd(c->r, out, 2, argv, len);
    free(k);
    return rc;
}

static int rc_get(void *user, const char *key, json_t **out)
{
    *out = NULL;
    redisReply *rep = NULL;
    int rc = one_key(user, "GET", key, &rep);
    if (rc < 0)
        return rc;
    if (rep->type != REDIS_REPLY_STRING) {
        freeReplyObject(rep);
        return DK_ENOTFOUND;
    }
    *out = json_loadb(rep->str, rep->len, JSON_DECODE_ANY, NULL);
    freeReplyObject(rep);
    return *out != NULL ? 0 : DK_ENOTFOUND; /* not ours or damaged: a miss */
}

static int rc_set(void *user, const char *key, const json_t *value, int64_t ttl_ms)
{
    rcache *c = user;
    char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    size_t klen;
    char *k = full_key(key, &klen);
    if (text == NULL || k == NULL) {
        free(text);
        free(k);
        return DK_ENOMEM;
    }
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%" PRId64, ttl_ms);
    const char *argv[] = {"SET", k, text, "PX", ttl};
    size_t len[] = {3, klen, strlen(text), 2, strlen(ttl)};
    redisReply *rep = NULL;
    int rc = dk__redis_cmd(c->r, &rep, ttl_ms > 0 ? 5 : 3, argv, len);
    freeReplyObject(rep);
    free(text);
    free(k);
    return rc;
}

static int rc_del(void *user, const char *key)
{
    redisReply *rep = NULL;
    int rc = one_key(user, "DEL", key, &rep);
    if (rc < 0)
        return rc;
    rc = rep->type == REDIS_REPLY_INTEGER && rep->integer > 0 ? 0 : DK_ENOTFOUND;
    freeReplyObject(rep);
    return rc;
}

static int rc_has(void *user, const char *key)
{
    redisReply *rep = NULL;
    int rc = one_key(user, "EXISTS", key, &rep);
    if (rc < 0)
        return rc;
    rc = rep->type == REDIS_REPLY_INTEGER && rep->integer > 0 ? 1 : 0;
    freeReplyObject(rep);
    return rc;
}

/* PREFIX + `pattern` with Redis's other glob characters escaped. */
static char *match_pattern(const char *pattern)
{
    if (pattern == NULL)
        pattern = "*";
    size_t n = strlen(pattern);
    char *m = malloc(PREFIX_LEN + 2 * n + 1);
    if (m == NULL)
        return NULL;
    memcpy(m, PREFIX, PREFIX_LEN);
    size_t k = PREFIX_LEN;
    for (size_t i = 0; i < n; i++) {
        if (pattern[i] == '[' || pattern[i] == ']' || pattern[i] == '\\' || pattern[i] == '^')
            m[k++] = '\\';
        m[k++] = pattern[i];
    }
    m[k] = '\0';
    return m;
}

/* Calls fn(key, klen, arg) for each key SCAN finds for `match`; SCAN may
 * report a key twice. */
static int scan(rcache *c, const char *match, int (*fn)(const char *, size_t, void *), void *arg)
{
    char cursor[32] = "0";
    do {
        const char *argv[] = {"SCAN", cursor, "MATCH", match, "COUNT", SCAN_COUNT};
        size_t len[] = {4, strlen(cursor), 5, strlen(match), 5, sizeof(SCAN_COUNT) - 1};
        redisReply *rep = NULL;
        int rc = dk__redis_cmd(c->r, &rep, 6, argv, len);
        if (rc < 0)
            return rc;
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
            rep->element[0]->type != REDIS_REPLY_STRING ||
            rep->element[1]->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(rep);
            return DK_EINTERNAL;
        }
        snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
        redisReply *keys = rep->element[1];
        for (size_t i = 0; i < keys->elements && rc == 0; i++)
            if (keys->element[i]->type == REDIS_REPLY_STRING)
                rc = fn(keys->element[i]->str, keys->element[i]->len, arg);
        freeReplyObject(rep);
        if (rc < 0)
            return rc;
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

struct collect {
    json_t *set;
    const char *pattern;
};

static int collect_key(const char *key, size_t len, void *arg)
{
    struct collect *col = arg;
    if (len < PREFIX_LEN || memchr(key, '\0', len) != NULL)
        return 0;
    const char *k = key + PREFIX_LEN;
    if (col->pattern != NULL && !dk_glob_match(col->pattern, k))
        return 0;
    return json_object_set_new(col->set, k, json_true()) == 0 ? 0 : DK_ENOMEM;
}

static int rc_keys(void *user, const char *pattern, json_t **out)
{
    *out = NULL;
    char *match = match_pattern(pattern);
    struct collect col = {json_object(), pattern};
    if (match == NULL || col.set == NULL) {
        free(match);
        json_decref(col.set);
        return DK_ENOMEM;
    }
    int rc = scan(user, match, collect_key, &col);
    free(match);
    json_t *list = rc == 0 ? json_array() : NULL;
    if (rc == 0 && list == NULL)
        rc = DK_ENOMEM;
    if (rc == 0) {
        const char *k;
        json_t *v;
        json_object_foreach(col.set, k, v) {
            if (json_array_append_new(list, json_string(k)) != 0) {
                rc = DK_ENOMEM;
                break;
            }
        }
    }
    json_decref(col.set);
    if (rc < 0) {
        json_decref(list);
        return rc;
    }
    *out = list;
    return 0;
}

static int unlink_key(const char *key, size_t len, void *arg)
{
    rcache *c = arg;
    const char *argv[] = {"UNLINK", key};
    size_t lens[] = {6, len};
    redisReply *rep = NULL;
    int rc = dk__redis_cmd(c->r, &rep, 2, argv, lens);
    freeReplyObject(rep);
    return rc;
}

static int rc_clear(void *user)
{
    return scan(user, PREFIX "*", unlink_key, user);
}

static void rc_destroy(void *user)
{
    free(user);
}

int dk__redis_cache_backend(dk__redis *r, dk_cache_backend *out)
{
    rcache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return DK_ENOMEM;
    c->r = r;
    memset(out, 0, sizeof(*out));
    out->get = rc_get;
    out->set = rc_set;
    out->del = rc_del;
    out->has = rc_has;
    out->clear = rc_clear;
    out->keys = rc_keys;
    out->destroy = rc_destroy;
    out->user = c;
    return 0;
}

#else
int dk__redis_cache_backend(dk__redis *r, dk_cache_backend *out) { return DK_ESTATE; }
#endif
