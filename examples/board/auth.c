/* Plugin "auth": sign-up and log-in with Argon2id password hashes
 * (libsodium, computed on the worker pool through dk_blocking()), sessions
 * kept in the database and carried by an HTTP-only cookie, the "auth"
 * middleware, per-IP limits on sign-up and log-in attempts and a cron task
 * that purges expired sessions. */
#include "board.h"

#include <donkey/cron.h>
#include <donkey/db.h>

#include <sodium.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COOKIE_NAME "board_session"
#define TOKEN_BYTES 32

/* Verified when the user does not exist, so that an unknown name costs the
 * same Argon2id work as a wrong password (same parameters as real hashes:
 * OPSLIMIT/MEMLIMIT_INTERACTIVE). The password it hashes was random and is
 * forgotten. */
#define DUMMY_HASH                                                                               \
    "$argon2id$v=19$m=65536,t=2,p=1$SOsMQbkYyHseSsVOK9NE0Q$"                                   \
    "ClcXN9aNQzXf2vunO1zW480ZaQZlSkbHsBTY2uY9W5k"

typedef struct auth_svc {
    dk_db *db;
    dk_logger *log;
    dk_cron *cron;    /* the core's scheduler, or our own when the core has none */
    char purge_id[DK_CRON_ID_SIZE];
} auth_svc;

/* One schema, two dialects: SQLite's INTEGER is 64-bit and its rowid is the
 * key; PostgreSQL needs BIGSERIAL / BIGINT (ids and epoch milliseconds do not
 * fit its 32-bit INTEGER). */
static const dk_migration auth_migrations[] = {
    {1, "create_users_and_sessions",
     "CREATE TABLE board_users ("
     " id INTEGER PRIMARY KEY AUTOINCREMENT,"
     " username TEXT NOT NULL UNIQUE,"
     " password_hash TEXT NOT NULL,"
     " created_at INTEGER NOT NULL);"
     "CREATE TABLE board_sessions ("
     " token_hash TEXT PRIMARY KEY,"
     " user_id INTEGER NOT NULL REFERENCES board_users(id) ON DELETE CASCADE,"
     " expires_at INTEGER NOT NULL,"
     " created_at INTEGER NOT NULL);"
     "CREATE INDEX board_sessions_expires ON board_sessions(expires_at);",
     /* PostgreSQL */
     "CREATE TABLE board_users ("
     " id BIGSERIAL PRIMARY KEY,"
     " username TEXT NOT NULL UNIQUE,"
     " password_hash TEXT NOT NULL,"
     " created_at BIGINT NOT NULL);"
     "CREATE TABLE board_sessions ("
     " token_hash TEXT PRIMARY KEY,"
     " user_id BIGINT NOT NULL REFERENCES board_users(id) ON DELETE CASCADE,"
     " expires_at BIGINT NOT NULL,"
     " created_at BIGINT NOT NULL);"
     "CREATE INDEX board_sessions_expires ON board_sessions(expires_at);"},
    {0},
};

/* ------------------------------------------------------------------ */
/* Sessions                                                            */

/* The database keeps a hash of the token, so a leaked database does not
 * hand out live sessions. `out` gets 64 hex digits and a NUL. */
static void token_hash(const char *token, char out[2 * crypto_generichash_BYTES + 1])
{
    unsigned char h[crypto_generichash_BYTES];
    crypto_generichash(h, sizeof(h), (const unsigned char *)token, strlen(token), NULL, 0);
    sodium_bin2hex(out, 2 * crypto_generichash_BYTES + 1, h, sizeof(h));
}

/* Creates a session for `user_id`; on 0 `token` holds the cookie value. */
static int session_create(auth_svc *a, int64_t user_id, char token[2 * TOKEN_BYTES + 1])
{
    unsigned char raw[TOKEN_BYTES];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(token, 2 * TOKEN_BYTES + 1, raw, sizeof(raw));
    char hash[2 * crypto_generichash_BYTES + 1];
    token_hash(token, hash);
    int64_t now = dk_wall_ms();
    json_t *params = json_pack("[s, I, I, I]", hash, (json_int_t)user_id,
                               (json_int_t)(now + board_cfg.session_ttl_ms), (json_int_t)now);
    if (params == NULL)
        return DK_ENOMEM;
    int rc = dk_db_exec(a->db,
                        "INSERT INTO board_sessions (token_hash, user_id, expires_at, created_at)"
                        " VALUES (?, ?, ?, ?)",
                        params, NULL, NULL);
    json_decref(params);
    return rc;
}

/* Asks the "auth" middleware to send this cookie with the answer. */
static int set_cookie(dk_ctx *ctx, const char *token, int64_t max_age_s)
{
    char *v = dk_ctx_printf(ctx, COOKIE_NAME "=%s; HttpOnly; SameSite=Lax; Path=/; Max-Age=%lld%s",
                            token, (long long)max_age_s, dk_ctx_is_secure(ctx) ? "; Secure" : "");
    if (v == NULL)
        return DK_ENOMEM;
    return dk_ctx_set(ctx, "board.setCookie", json_string(v));
}

/* ------------------------------------------------------------------ */
/* Password hashing, on the worker pool                                */

typedef struct pw_job {
    const char *password; /* the whole JSON string: NUL bytes included */
    size_t len;
    const char *stored;   /* verify: the stored hash */
    char hash[crypto_pwhash_STRBYTES]; /* hash: the result */
} pw_job;

static int pw_hash_fn(void *arg)
{
    pw_job *j = arg;
    return crypto_pwhash_str(j->hash, j->password, j->len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                             crypto_pwhash_MEMLIMIT_INTERACTIVE) == 0
               ? 0
               : DK_ENOMEM;
}

static int pw_verify_fn(void *arg)
{
    pw_job *j = arg;
    return crypto_pwhash_str_verify(j->stored, j->password, j->len) == 0 ? 0 : DK_EINVAL;
}

/* Per-IP limit on attempts that reached a handler (valid input): preflights,
 * malformed bodies and refused cross-site requests never count. 0 or a 429
 * (its Retry-After header is added by the "auth" middleware). */
static int attempt_allowed(dk_ctx *ctx, const char *scope, int limit)
{
    dk_ratelimit *rl = dk_ctx_core(ctx)->ratelimit;
    if (rl == NULL)
        return 0;
    const char *ip = dk_ctx_ip(ctx);
    char *key = dk_ctx_printf(ctx, "ratelimit:%s:%s", scope, ip ? ip : "unknown");
    if (key == NULL)
        return DK_ENOMEM;
    dk_ratelimit_result r;
    if (dk_ratelimit_check(rl, key, (uint64_t)limit, 60000, &r) < 0)
        return 0; /* availability wins when the counter store fails */
    if (r.allowed)
        return 0;
    dk_ctx_set(ctx, "board.retryAfter", json_integer((json_int_t)r.retry_after_s));
    return dk_fail_details(ctx, 429, NULL,
                           json_pack("{s:I, s:I}", "retryAfter", (json_int_t)r.retry_after_s,
                                     "limit", (json_int_t)r.limit));
}

static json_t *user_view(const json_t *row)
{
    return json_pack("{s:O, s:O}", "id", json_object_get(row, "id"), "username",
                     json_object_get(row, "username"));
}

int64_t board_user_id(dk_ctx *ctx)
{
    return json_integer_value(json_object_get(dk_ctx_user(ctx), "id"));
}

/* ------------------------------------------------------------------ */
/* Middleware                                                          */

/* "auth": reads the session cookie and sets the user ({id, username}) on the
 * context; without a valid session the request is answered 401, unless the
 * attachment's config says {"optional": true}. After the handler it sends the
 * cookie a handler asked for (log-in, sign-up, log-out). */
static int auth_mw(dk_ctx *ctx, dk_request *req, dk_response *res, const json_t *config,
                   dk_next *next, void *user)
{
    auth_svc *a = dk_plugin_service(user);
    bool optional = json_is_true(json_object_get(config, "optional"));
    const char *token = dk_request_cookie(req, COOKIE_NAME);
    if (token != NULL && strlen(token) == 2 * TOKEN_BYTES) {
        char hash[2 * crypto_generichash_BYTES + 1];
        token_hash(token, hash);
        json_t *params = json_pack("[s, I]", hash, (json_int_t)dk_wall_ms());
        json_t *row = NULL;
        int rc = dk_db_query_one(a->db,
                                 "SELECT u.id AS id, u.username AS username"
                                 " FROM board_sessions s JOIN board_users u ON u.id = s.user_id"
                                 " WHERE s.token_hash = ? AND s.expires_at > ?",
                                 params, &row);
        json_decref(params);
        if (rc == 0) {
            dk_ctx_set_user(ctx, user_view(row));
            dk_ctx_set(ctx, "board.sessionHash", json_string(hash));
            json_decref(row);
        } else if (rc != DK_ENOTFOUND) {
            return dk_fail_code(ctx, rc, "session lookup");
        }
    }
    if (dk_ctx_user(ctx) == NULL && !optional)
        return dk_fail(ctx, DK_HTTP_UNAUTHORIZED, "Please log in");
    dk_next_run(next);
    const char *cookie = json_string_value(dk_ctx_get(ctx, "board.setCookie"));
    if (cookie != NULL)
        dk_response_add_header(res, "Set-Cookie", cookie);
    const json_t *retry = dk_ctx_get(ctx, "board.retryAfter");
    if (retry != NULL) {
        char buf[24];
        snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(retry));
        dk_response_set_header(res, "Retry-After", buf);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Cron: purge expired sessions                                        */

static int purge_sessions(const char *name, void *user)
{
    auth_svc *a = user;
    json_t *params = json_pack("[I]", (json_int_t)dk_wall_ms());
    int64_t n = 0;
    int rc = dk_db_exec(a->db, "DELETE FROM board_sessions WHERE expires_at <= ?", params, &n,
                        NULL);
    json_decref(params);
    if (rc == 0 && n > 0) {
        /* dk_log() steals the data object. */
        dk_log(a->log, DK_LOG_INFO, "Purged expired sessions",
               json_pack("{s:I}", "deleted", (json_int_t)n));
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* Plugin life cycle                                                   */

static int auth_create(dk_plugin_ctx *p, void **out, dk_err *err)
{
    auth_svc *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return DK_ENOMEM;
    const dk_core *core = dk_plugin_core(p);
    a->db = dk_plugin_db(p);
    a->log = dk_plugin_log(p);
    a->cron = core->cron; /* the app's scheduler, started after the plugins */
    if (a->cron == NULL) {
        free(a);
        return dk_err_set(err, DK_ESTATE, "auth: the application has no cron service");
    }
    *out = a;
    return 0;
}

static int auth_init(dk_plugin_ctx *p, void *service, dk_err *err)
{
    auth_svc *a = service;
    int rc = dk_cron_schedule(a->cron, "auth.purgeSessions", board_cfg.purge_cron, purge_sessions,
                              a, NULL, NULL, a->purge_id, err);
    return rc;
}

static void auth_teardown(dk_plugin_ctx *p, void *service)
{
    auth_svc *a = service;
    /* The task uses the database, which closes after the destructors. */
    if (a->purge_id[0] != '\0')
        dk_cron_unschedule(a->cron, a->purge_id);
}

static void auth_destroy(dk_plugin_ctx *p, void *service)
{
    free(service);
}

static const dk_plugin auth_plugin = {
    .name = "auth",
    .version = "1.0.0",
    .create = auth_create,
    .destroy = auth_destroy,
    .init = auth_init,
    .teardown = auth_teardown,
    .migrations = auth_migrations,
    .middleware = (const dk_plugin_middleware[]){{"auth", auth_mw}, {0}},
    .events = (const char *const[]){"user.signedUp", NULL},
};

const dk_plugin *board_auth_plugin(void)
{
    return &auth_plugin;
}

/* ------------------------------------------------------------------ */
/* Routes                                                              */

static auth_svc *svc_of(dk_ctx *ctx)
{
    return dk_ctx_service(ctx, "auth");
}

/* {username, password} -> {user}; sets the session cookie. */
static int auth_signup(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    auth_svc *a = svc_of(ctx);
    int rc = attempt_allowed(ctx, "auth.signup", board_cfg.signup_limit);
    if (rc < 0)
        return rc;
    const char *username = json_string_value(json_object_get(in, "username"));
    const json_t *pw = json_object_get(in, "password");
    pw_job job = {.password = json_string_value(pw), .len = json_string_length(pw)};
    if (dk_blocking(ctx, pw_hash_fn, &job) != 0)
        return dk_fail_internal(ctx, "password hashing failed (out of memory)");
    json_t *params = json_pack("[s, s, I]", username, job.hash, (json_int_t)dk_wall_ms());
    int64_t id = 0;
    rc = dk_db_exec(a->db,
                        "INSERT INTO board_users (username, password_hash, created_at)"
                        " VALUES (?, ?, ?) RETURNING id",
                        params, NULL, &id);
    json_decref(params);
    if (rc == DK_ECONSTRAINT)
        return dk_fail(ctx, DK_HTTP_CONFLICT, "That username is taken");
    if (rc < 0)
        return dk_fail_code(ctx, rc, "cannot create the user");
    char token[2 * TOKEN_BYTES + 1];
    rc = session_create(a, id, token);
    if (rc < 0)
        return dk_fail_code(ctx, rc, "cannot create the session");
    rc = set_cookie(ctx, token, board_cfg.session_ttl_ms / 1000);
    if (rc < 0)
        return rc;
    *out = json_pack("{s:{s:I, s:s}}", "user", "id", (json_int_t)id, "username", username);
    if (*out == NULL)
        return DK_ENOMEM;
    dk_events_emit(dk_ctx_core(ctx)->events, "auth.user.signedUp", json_object_get(*out, "user"));
    return 0;
}

/* {username, password} -> {user}; sets the session cookie. 401 for an unknown
 * user or a wrong password (the same message for both). */
static int auth_login(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    auth_svc *a = svc_of(ctx);
    int rc = attempt_allowed(ctx, "auth.login", board_cfg.login_limit);
    if (rc < 0)
        return rc;
    const char *username = json_string_value(json_object_get(in, "username"));
    const json_t *pw = json_object_get(in, "password");
    json_t *params = json_pack("[s]", username);
    json_t *row = NULL;
    rc = dk_db_query_one(a->db,
                             "SELECT id, username, password_hash FROM board_users"
                             " WHERE username = ?",
                             params, &row);
    json_decref(params);
    if (rc < 0 && rc != DK_ENOTFOUND)
        return dk_fail_code(ctx, rc, "user lookup");
    /* An unknown user is verified against the dummy hash: the answer takes
     * as long as for a wrong password, so timing does not tell who exists. */
    pw_job job = {.password = json_string_value(pw), .len = json_string_length(pw),
                  .stored = rc == 0 ? json_string_value(json_object_get(row, "password_hash"))
                                    : DUMMY_HASH};
    bool ok = dk_blocking(ctx, pw_verify_fn, &job) == 0 && rc == 0;
    if (!ok) {
        json_decref(row);
        return dk_fail(ctx, DK_HTTP_UNAUTHORIZED, "Wrong username or password");
    }
    char token[2 * TOKEN_BYTES + 1];
    rc = session_create(a, json_integer_value(json_object_get(row, "id")), token);
    if (rc < 0) {
        json_decref(row);
        return dk_fail_code(ctx, rc, "cannot create the session");
    }
    *out = json_pack("{s:o}", "user", user_view(row));
    json_decref(row);
    if (*out == NULL)
        return DK_ENOMEM;
    return set_cookie(ctx, token, board_cfg.session_ttl_ms / 1000);
}

/* {} -> {ok: true}; ends the session and clears the cookie. */
static int auth_logout(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    auth_svc *a = svc_of(ctx);
    json_t *params = json_pack("[O]", dk_ctx_get(ctx, "board.sessionHash"));
    int rc = dk_db_exec(a->db, "DELETE FROM board_sessions WHERE token_hash = ?", params, NULL,
                        NULL);
    json_decref(params);
    if (rc < 0)
        return dk_fail_code(ctx, rc, "cannot end the session");
    /* The session's open event streams end with it. */
    dk_sse *sse = dk_ctx_core(ctx)->sse;
    const char *session = json_string_value(dk_ctx_get(ctx, "board.sessionHash"));
    if (sse != NULL && session != NULL)
        dk_sse_close_session(sse, session);
    rc = set_cookie(ctx, "", 0);
    if (rc < 0)
        return rc;
    *out = json_pack("{s:b}", "ok", 1);
    return *out != NULL ? 0 : DK_ENOMEM;
}

/* {} -> {user}. */
static int auth_me(dk_ctx *ctx, const json_t *in, json_t **out, void *user)
{
    *out = json_pack("{s:O}", "user", dk_ctx_user(ctx));
    return *out != NULL ? 0 : DK_ENOMEM;
}

#define USER_SCHEMA                                                                              \
    "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\"},"                       \
    "\"username\":{\"type\":\"string\"}},\"required\":[\"id\",\"username\"]}"
#define USER_OUT "{\"type\":\"object\",\"properties\":{\"user\":" USER_SCHEMA "},\"required\":[\"user\"]}"
#define CREDENTIALS                                                                              \
    "{\"type\":\"object\",\"properties\":{"                                                      \
    "\"username\":{\"type\":\"string\",\"pattern\":\"^[A-Za-z0-9_.-]{3,32}$\"},"                 \
    "\"password\":{\"type\":\"string\",\"minLength\":8,\"maxLength\":128}},"                     \
    "\"required\":[\"username\",\"password\"],\"additionalProperties\":false}"
#define EMPTY_IN "{\"type\":\"object\",\"additionalProperties\":false}"

int board_auth_routes(dk_app *app)
{
    int rc = 0;
    /* Public: sign-up and log-in, each limited per client IP inside the
     * handler (attempt_allowed), so only valid attempts count. */
    dk_router *pub = dk_router_new("auth");
    if (pub == NULL)
        return DK_ENOMEM;
    rc |= board_router_guards(pub);
    rc |= dk_router_use(pub, "auth", "{\"optional\":true}");
    rc |= dk_route_typed(pub, "signup", CREDENTIALS, USER_OUT, auth_signup, NULL);
    rc |= dk_route_typed(pub, "login", CREDENTIALS, USER_OUT, auth_login, NULL);
    rc |= dk_app_use(app, pub);

    dk_router *priv = dk_router_new("auth");
    if (priv == NULL)
        return DK_ENOMEM;
    rc |= board_router_guards(priv);
    rc |= dk_router_use(priv, "auth", NULL);
    rc |= dk_route_typed(priv, "logout", EMPTY_IN,
                         "{\"type\":\"object\",\"properties\":{\"ok\":{\"type\":\"boolean\"}}}",
                         auth_logout, NULL);
    rc |= dk_route_typed(priv, "me", EMPTY_IN, USER_OUT, auth_me, NULL);
    rc |= dk_app_use(app, priv);
    return rc;
}
