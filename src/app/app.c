/* The application: options, core services, start-up and orderly shutdown. */
#include "internal.h"
#include "http/metrics.h"
#include "donkey/loop.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* The application SIGINT/SIGTERM stop (dk_app_start() to the end of dk_app_wait()). */
static dk_app *signal_app;

void dk_app_options_init(dk_app_options *o)
{
    memset(o, 0, sizeof(*o));
    o->host = "127.0.0.1";
    o->port = 3000;
    o->threads = 1;
    o->db_url = "sqlite::memory:";
    o->max_body_bytes = 1024 * 1024;
    o->max_header_bytes = 16 * 1024;
    o->max_headers = 100;
    o->read_timeout_ms = 10000;
    o->idle_timeout_ms = 30000;
    o->max_connections = 0; /* from the descriptor limit at start (dk__server_start) */
    o->max_json_depth = 64;
    o->max_json_string = 1024 * 1024;
    o->shutdown_grace_ms = 10000;
    o->log_level = DK_LOG_INFO;
    o->log_format = DK_LOG_PRETTY;
    o->install_signals = true;
    o->db_pool = 16;
    o->workers = 8;
    o->max_waiting = 4096;
    o->max_validation_issues = DK_SCHEMA_MAX_ISSUES;
    o->access_log = -1;
    o->health_path = "/healthz";
    o->ready_path = "/readyz";
    o->metrics_path = "/metrics";
    o->admin_path = "/_donkey";
}

#ifndef DK_VERSION
#define DK_VERSION "0.1.0"
#endif
const char *dk_version(void) { return DK_VERSION; }

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return DK_EINVAL;
    *out = (int)v;
    return 0;
}

/* A byte count: digits with an optional k/K (KiB) or m/M (MiB) suffix. */
static int parse_size(const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || v < 1)
        return DK_EINVAL;
    long long mul = 1;
    if (*end == 'k' || *end == 'K')
        mul = 1024, end++;
    else if (*end == 'm' || *end == 'M')
        mul = 1024 * 1024, end++;
    if (*end != '\0' || v > (1LL << 40) / mul)
        return DK_EINVAL;
    *out = v * mul;
    return 0;
}

/* ---- --help: one line per standard flag ----
 * Adding a flag to dk_app_options_parse() means adding its row here: the flag,
 * its argument, the environment variable that sets it ("" none; DONKEY_* ones
 * are read by the parser, the flag winning), how to show its default (a field
 * of dk_app_options, or the text in `def`), and what it does.
 * tests/http/test_firsthour.py checks every flag the parser knows is listed. */
typedef enum { H_TEXT, H_INT, H_STR, H_BYTES, H_MS, H_BOOL, H_LEVEL, H_FORMAT } help_kind;

typedef struct help_row {
    const char *flag, *arg, *env;
    help_kind kind;
    size_t off;      /* offsetof(dk_app_options, field) unless H_TEXT */
    const char *def; /* H_TEXT: the default as text */
    const char *help;
} help_row;

#define F(field) offsetof(dk_app_options, field)
static const help_row help_rows[] = {
    {"--host", "ADDR", "DONKEY_HOST", H_STR, F(host), NULL,
     "address to listen on (::1, 0.0.0.0, ...)"},
    {"--port", "N", "PORT", H_INT, F(port), NULL, "TCP port; 0 picks a free one"},
    {"--threads", "N", "DONKEY_THREADS", H_INT, F(threads), NULL, "HTTP threads (1..256)"},
    {"--db", "URL", "DONKEY_DATABASE_URL", H_STR, F(db_url), NULL,
     "sqlite:FILE, sqlite::memory: or postgres://..."},
    {"--db-pool", "N", "DONKEY_DB_POOL", H_INT, F(db_pool), NULL, "database connections (1..1024)"},
    {"--redis", "URL", "DONKEY_REDIS_URL", H_STR, F(redis_url), NULL,
     "redis://HOST:PORT: shared cache, events, SSE, rate limits"},
    {"--workers", "N", "DONKEY_WORKERS", H_INT, F(workers), NULL,
     "dk_blocking() worker threads (1..1024)"},
    {"--max-waiting", "N", "DONKEY_MAX_WAITING", H_INT, F(max_waiting), NULL,
     "handlers alive at once; beyond -> 503"},
    {"--trust-proxy", "CIDR", "", H_TEXT, 0, "none",
     "trust X-Forwarded-For from these peers (repeatable, up to 16)"},
    {"--client-ip-header", "NAME", "DONKEY_CLIENT_IP_HEADER", H_STR, F(client_ip_header), NULL,
     "header a trusted proxy sets to the client address (X-Real-IP)"},
    {"--log-level", "LEVEL", "DONKEY_LOG_LEVEL", H_LEVEL, F(log_level), NULL,
     "debug, info, warn or error"},
    {"--log-format", "FORMAT", "DONKEY_LOG_FORMAT", H_FORMAT, F(log_format), NULL,
     "pretty or json"},
    {"--log-redact", "KEYS", "DONKEY_LOG_REDACT", H_STR, F(log_redact), NULL,
     "more keys whose values logs redact (comma-separated)"},
    {"--access-log", "on|off|FRACTION", "DONKEY_ACCESS_LOG", H_TEXT, 0,
     "on (off when DONKEY_ENV=production)",
     "one log line per request; 0.1 logs every 10th (and every 5xx)"},
    {"--health-path", "PATH", "DONKEY_HEALTH_PATH", H_STR, F(health_path), NULL,
     "liveness probe, 200 {\"status\":\"ok\"}; off disables"},
    {"--ready-path", "PATH", "DONKEY_READY_PATH", H_STR, F(ready_path), NULL,
     "readiness probe: database, Redis, not shutting down; off disables"},
    {"--metrics", NULL, "DONKEY_METRICS", H_BOOL, F(metrics), NULL,
     "serve Prometheus metrics at --metrics-path"},
    {"--metrics-path", "PATH", "DONKEY_METRICS_PATH", H_STR, F(metrics_path), NULL,
     "where --metrics answers"},
    {"--admin-token", "TOKEN", "DONKEY_ADMIN_TOKEN", H_STR, F(admin_token), NULL,
     "operations page and admin.* routes for this bearer token"},
    {"--admin-path", "PATH", "DONKEY_ADMIN_PATH", H_STR, F(admin_path), NULL,
     "where the operations page is served"},
    {"--max-body", "BYTES", "DONKEY_MAX_BODY", H_BYTES, F(max_body_bytes), NULL,
     "largest request body -> 413"},
    {"--max-header-bytes", "BYTES", "DONKEY_MAX_HEADER_BYTES", H_BYTES, F(max_header_bytes), NULL,
     "total request header size -> 431"},
    {"--max-headers", "N", "DONKEY_MAX_HEADERS", H_INT, F(max_headers), NULL,
     "request headers (1..100) -> 431"},
    {"--max-connections", "N", "DONKEY_MAX_CONNECTIONS", H_TEXT, 0,
     "min(10000, descriptor limit - margin)", "open connections; beyond -> 503 and close"},
    {"--max-connections-per-ip", "N", "DONKEY_MAX_CONNECTIONS_PER_IP", H_INT,
     F(max_connections_per_ip), NULL,
     "open connections per client address; 0 = off (see docs/deployment.md)"},
    {"--max-json-depth", "N", "DONKEY_MAX_JSON_DEPTH", H_INT, F(max_json_depth), NULL,
     "JSON nesting (1..1000) -> 400"},
    {"--max-json-string", "BYTES", "DONKEY_MAX_JSON_STRING", H_BYTES, F(max_json_string), NULL,
     "longest JSON string -> 400"},
    {"--max-validation-issues", "N", "DONKEY_MAX_VALIDATION_ISSUES", H_INT,
     F(max_validation_issues), NULL, "validation issues reported before stopping"},
    {"--allow-nul-strings", NULL, "DONKEY_ALLOW_NUL_STRINGS", H_BOOL, F(allow_nul_strings), NULL,
     "typed input strings may contain U+0000"},
    {"--read-timeout", "DUR", "DONKEY_READ_TIMEOUT", H_MS, F(read_timeout_ms), NULL,
     "the whole request must arrive within -> 408"},
    {"--idle-timeout", "DUR", "DONKEY_IDLE_TIMEOUT", H_MS, F(idle_timeout_ms), NULL,
     "keep-alive idle time"},
    {"--shutdown-grace", "DUR", "DONKEY_SHUTDOWN_GRACE", H_MS, F(shutdown_grace_ms), NULL,
     "in-flight requests may finish within"},
    {"--max-sse-clients", "N", "DK_SSE_MAX_CLIENTS", H_TEXT, 0, "10000",
     "open event streams -> 503"},
    {"--max-sse-per-channel", "N", "DK_SSE_MAX_PER_CHANNEL", H_TEXT, 0, "10000",
     "event streams per channel -> 503"},
    {"--tls-cert", "FILE", "DONKEY_TLS_CERT", H_STR, F(tls_cert_file), NULL,
     "PEM certificate chain (TLS when both are set)"},
    {"--tls-key", "FILE", "DONKEY_TLS_KEY", H_STR, F(tls_key_file), NULL, "PEM private key"},
    {"--hsts", "SECONDS", "DONKEY_HSTS", H_TEXT, 0, "0 (off)",
     "Strict-Transport-Security max-age on answers to HTTPS clients"},
    {"--http2", NULL, "DONKEY_HTTP2", H_BOOL, F(http2), NULL,
     "offer HTTP/2 over TLS (ALPN); DONKEY_HTTP2=1"},
    {"--routes-json", NULL, "", H_BOOL, F(routes_json), NULL,
     "print the route table as JSON and exit"},
    {"-h, --help", NULL, "", H_TEXT, 0, "", "show this help and exit"},
    {"--version", NULL, "", H_TEXT, 0, "", "print the version and exit"},
};
#undef F

static void help_default(const dk_app_options *o, const help_row *r, char *buf, size_t len)
{
    const char *base = (const char *)o + r->off;
    switch (r->kind) {
    case H_TEXT: snprintf(buf, len, "%s", r->def); break;
    case H_INT: snprintf(buf, len, "%d", *(const int *)base); break;
    case H_STR: {
        const char *v = *(const char *const *)base;
        snprintf(buf, len, "%s", v && *v ? v : "none");
        break;
    }
    case H_BYTES: {
        size_t v = *(const size_t *)base;
        if (v % (1024 * 1024) == 0)
            snprintf(buf, len, "%zum", v / (1024 * 1024));
        else if (v % 1024 == 0)
            snprintf(buf, len, "%zuk", v / 1024);
        else
            snprintf(buf, len, "%zu", v);
        break;
    }
    case H_MS: {
        uint64_t v = *(const uint64_t *)base;
        if (v % 1000 == 0)
            snprintf(buf, len, "%llus", (unsigned long long)(v / 1000));
        else
            snprintf(buf, len, "%llums", (unsigned long long)v);
        break;
    }
    case H_BOOL: snprintf(buf, len, "%s", *(const bool *)base ? "on" : "off"); break;
    case H_LEVEL: snprintf(buf, len, "%s", dk_log_level_name(*(const dk_log_level *)base)); break;
    case H_FORMAT:
        snprintf(buf, len, "%s", *(const dk_log_format *)base == DK_LOG_JSON ? "json" : "pretty");
        break;
    }
}

static void print_help(const dk_app_options *o, const char *prog)
{
    const char *slash = strrchr(prog, '/');
    prog = slash ? slash + 1 : prog;
    printf("Usage: %s [OPTIONS]\n\n", prog);
    if (o->usage != NULL)
        printf("%s\n", o->usage);
    printf("Standard options (a flag wins over its environment variable):\n");
    for (size_t i = 0; i < sizeof(help_rows) / sizeof(help_rows[0]); i++) {
        const help_row *r = &help_rows[i];
        char left[64], def[96];
        snprintf(left, sizeof(left), "%s%s%s", r->flag, r->arg ? " " : "", r->arg ? r->arg : "");
        help_default(o, r, def, sizeof(def));
        printf("  %-28s %s\n", left, r->help);
        if (*def || *r->env)
            printf("  %-28s %s%s%s%s%s\n", "", *def ? "default " : "", def,
                   *def && *r->env ? "; " : "", *r->env ? "env " : "", r->env);
    }
    printf("\nBYTES takes a k or m suffix (64k, 1m); DUR is 500ms, 10s or milliseconds.\n"
           "DONKEY_ENV=production turns the request log off unless --access-log is given.\n");
}

static void print_version(const dk_app_options *o, const char *prog)
{
    const char *slash = strrchr(prog, '/');
    prog = slash ? slash + 1 : prog;
    if (o->version != NULL)
        printf("%s %s (donkey %s)\n", prog, o->version, dk_version());
    else
        printf("%s (donkey %s)\n", prog, dk_version());
}

/* The DONKEY_* variables of help_rows (PORT, DONKEY_DATABASE_URL, ... and the
 * generic ones), as flags placed before argv's so that a flag wins. Returns the
 * number of strings written to `args` (pairs, or one for a boolean); `envs[i]`
 * names the variable behind args[i]. */
static int env_args(char **args, const char **envs, dk_err *err)
{
    int n = 0;
    for (size_t i = 0; i < sizeof(help_rows) / sizeof(help_rows[0]); i++) {
        const help_row *r = &help_rows[i];
        if (r->flag[0] != '-' || r->flag[1] != '-' ||
            (strncmp(r->env, "DONKEY_", 7) != 0 && strcmp(r->env, "PORT") != 0))
            continue;
        char *v = getenv(r->env);
        if (v == NULL || *v == '\0')
            continue;
        if (r->kind == H_BOOL) {
            if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "on") == 0) {
                envs[n] = r->env;
                args[n++] = (char *)r->flag;
            } else if (!(strcmp(v, "0") == 0 || strcmp(v, "false") == 0 || strcmp(v, "off") == 0)) {
                return dk_err_set(err, DK_EINVAL, "%s must be 1 or 0, got '%s'", r->env, v);
            }
            continue;
        }
        envs[n] = envs[n + 1] = r->env;
        args[n++] = (char *)r->flag;
        args[n++] = v;
    }
    return n;
}

/* A value for --access-log: on, off or a fraction 0..1. */
static int parse_fraction(const char *v, double *out)
{
    if (strcmp(v, "on") == 0 || strcmp(v, "true") == 0) {
        *out = 1;
        return 0;
    }
    if (strcmp(v, "off") == 0 || strcmp(v, "false") == 0) {
        *out = 0;
        return 0;
    }
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !(d >= 0 && d <= 1))
        return DK_EINVAL;
    *out = d;
    return 0;
}

/* The flags in args[1..nargs) (environment-made ones first, then argv's);
 * unknown ones are moved to the front of args, their count + 1 in *out.
 * *at is the index being parsed (the culprit on error). */
static int parse_args(dk_app_options *o, char **args, int nargs, int *out, int *at, dk_err *err)
{
    static const char *trusted[17];
    int ntrusted = 0;
    *out = 1;
    for (int i = 1; i < nargs; i++) {
        *at = i;
        const char *a = args[i];
        const char *v = i + 1 < nargs ? args[i + 1] : NULL;
#define NEED_VALUE()                                                                               \
    do {                                                                                           \
        if (v == NULL)                                                                             \
            return dk_err_set(err, DK_EINVAL, "option %s needs a value", a);                       \
        i++;                                                                                       \
    } while (0)
        if (strcmp(a, "--port") == 0) {
            NEED_VALUE();
            if (parse_int(v, 0, 65535, &o->port) < 0)
                return dk_err_set(err, DK_EINVAL, "--port must be a number 0..65535, got '%s'", v);
        } else if (strcmp(a, "--db") == 0) {
            NEED_VALUE();
            o->db_url = v;
        } else if (strcmp(a, "--redis") == 0) {
            NEED_VALUE();
            o->redis_url = v;
        } else if (strcmp(a, "--threads") == 0) {
            NEED_VALUE();
            if (parse_int(v, 1, 256, &o->threads) < 0)
                return dk_err_set(err, DK_EINVAL, "--threads must be 1..256, got '%s'", v);
        } else if (strcmp(a, "--host") == 0) {
            NEED_VALUE();
            o->host = v;
        } else if (strcmp(a, "--trust-proxy") == 0) {
            NEED_VALUE();
            if (ntrusted >= 16)
                return dk_err_set(err, DK_EINVAL, "at most 16 --trust-proxy values");
            trusted[ntrusted++] = v;
            trusted[ntrusted] = NULL;
            o->trusted_proxies = trusted;
        } else if (strcmp(a, "--client-ip-header") == 0) {
            NEED_VALUE();
            if (*v == '\0' || strcspn(v, ":\r\n \t") != strlen(v))
                return dk_err_set(err, DK_EINVAL,
                                  "--client-ip-header needs a header name, got '%s'", v);
            o->client_ip_header = v;
        } else if (strcmp(a, "--log-level") == 0) {
            NEED_VALUE();
            if (dk_log_level_parse(v, &o->log_level) < 0)
                return dk_err_set(err, DK_EINVAL, "--log-level must be debug|info|warn|error");
        } else if (strcmp(a, "--log-format") == 0) {
            NEED_VALUE();
            if (strcmp(v, "json") == 0)
                o->log_format = DK_LOG_JSON;
            else if (strcmp(v, "pretty") == 0)
                o->log_format = DK_LOG_PRETTY;
            else
                return dk_err_set(err, DK_EINVAL, "--log-format must be pretty|json");
        } else if (strcmp(a, "--max-body") == 0 || strcmp(a, "--max-header-bytes") == 0 ||
                   strcmp(a, "--max-json-string") == 0) {
            NEED_VALUE();
            long long b;
            if (parse_size(v, &b) < 0)
                return dk_err_set(err, DK_EINVAL, "%s must be a byte count >= 1, got '%s'", a, v);
            if (strcmp(a, "--max-body") == 0)
                o->max_body_bytes = (size_t)b;
            else if (strcmp(a, "--max-header-bytes") == 0)
                o->max_header_bytes = (size_t)b;
            else
                o->max_json_string = (size_t)b;
        } else if (strcmp(a, "--max-headers") == 0) {
            NEED_VALUE();
            if (parse_int(v, 1, 100, &o->max_headers) < 0)
                return dk_err_set(err, DK_EINVAL, "--max-headers must be 1..100, got '%s'", v);
        } else if (strcmp(a, "--max-connections") == 0) {
            NEED_VALUE();
            if (parse_int(v, 1, 1000000, &o->max_connections) < 0)
                return dk_err_set(err, DK_EINVAL, "--max-connections must be 1..1000000, got '%s'",
                                  v);
        } else if (strcmp(a, "--hsts") == 0) {
            NEED_VALUE();
            int secs;
            if (parse_int(v, 0, 1000000000, &secs) < 0)
                return dk_err_set(err, DK_EINVAL, "--hsts must be seconds 0..1000000000, got '%s'",
                                  v);
            o->hsts_seconds = (uint64_t)secs;
        } else if (strcmp(a, "--max-connections-per-ip") == 0) {
            NEED_VALUE();
            if (parse_int(v, 0, 1000000, &o->max_connections_per_ip) < 0)
                return dk_err_set(err, DK_EINVAL,
                                  "--max-connections-per-ip must be 0..1000000, got '%s'", v);
        } else if (strcmp(a, "--db-pool") == 0) {
            NEED_VALUE();
            if (parse_int(v, 1, 1024, &o->db_pool) < 0)
                return dk_err_set(err, DK_EINVAL, "--db-pool must be 1..1024, got '%s'", v);
        } else if (strcmp(a, "--workers") == 0) {
            NEED_VALUE();
            if (parse_int(v, 1, 1024, &o->workers) < 0)
                return dk_err_set(err, DK_EINVAL, "--workers must be 1..1024, got '%s'", v);
        } else if (strcmp(a, "--max-waiting") == 0) {
            NEED_VALUE();
            if (parse_int(v, 1, 1000000, &o->max_waiting) < 0)
                return dk_err_set(err, DK_EINVAL, "--max-waiting must be 1..1000000, got '%s'", v);
        } else if (strcmp(a, "--max-validation-issues") == 0) {
            NEED_VALUE();
            if (parse_int(v, 1, 1000000, &o->max_validation_issues) < 0)
                return dk_err_set(err, DK_EINVAL,
                                  "--max-validation-issues must be 1..1000000, got '%s'", v);
        } else if (strcmp(a, "--log-redact") == 0) {
            NEED_VALUE();
            o->log_redact = v;
        } else if (strcmp(a, "--allow-nul-strings") == 0) {
            o->allow_nul_strings = true;
        } else if (strcmp(a, "--max-json-depth") == 0) {
            NEED_VALUE();
            if (parse_int(v, 1, 1000, &o->max_json_depth) < 0)
                return dk_err_set(err, DK_EINVAL, "--max-json-depth must be 1..1000, got '%s'", v);
        } else if (strcmp(a, "--read-timeout") == 0 || strcmp(a, "--idle-timeout") == 0 ||
                   strcmp(a, "--shutdown-grace") == 0) {
            NEED_VALUE();
            uint64_t ms;
            bool grace = strcmp(a, "--shutdown-grace") == 0;
            if (dk_duration_parse(v, &ms, NULL) < 0 || (ms == 0 && !grace))
                return dk_err_set(err, DK_EINVAL, "%s must be a duration (500ms, 10s), got '%s'", a,
                                  v);
            if (strcmp(a, "--read-timeout") == 0)
                o->read_timeout_ms = ms;
            else if (!grace)
                o->idle_timeout_ms = ms;
            else
                o->shutdown_grace_ms = ms;
        } else if (strcmp(a, "--max-sse-clients") == 0 || strcmp(a, "--max-sse-per-channel") == 0) {
            /* The SSE service reads its limits from the environment. */
            NEED_VALUE();
            int n;
            if (parse_int(v, 1, 100000000, &n) < 0)
                return dk_err_set(err, DK_EINVAL, "%s must be a number >= 1, got '%s'", a, v);
            setenv(strcmp(a, "--max-sse-clients") == 0 ? "DK_SSE_MAX_CLIENTS"
                                                       : "DK_SSE_MAX_PER_CHANNEL",
                   v, 1);
        } else if (strcmp(a, "--tls-cert") == 0) {
            NEED_VALUE();
            o->tls_cert_file = v;
        } else if (strcmp(a, "--tls-key") == 0) {
            NEED_VALUE();
            o->tls_key_file = v;
        } else if (strcmp(a, "--http2") == 0) {
            o->http2 = true;
        } else if (strcmp(a, "--access-log") == 0) {
            NEED_VALUE();
            if (parse_fraction(v, &o->access_log) < 0)
                return dk_err_set(err, DK_EINVAL,
                                  "--access-log must be on, off or a fraction 0..1, got '%s'", v);
        } else if (strcmp(a, "--health-path") == 0 || strcmp(a, "--ready-path") == 0) {
            NEED_VALUE();
            bool off = strcmp(v, "off") == 0 || *v == '\0';
            if (!off && (v[0] != '/' || v[1] == '\0' || strpbrk(v, "?# ") != NULL))
                return dk_err_set(err, DK_EINVAL,
                                  "%s must be a path like /healthz, or off, got '%s'", a, v);
            *(strcmp(a, "--health-path") == 0 ? &o->health_path : &o->ready_path) = off ? NULL : v;
        } else if (strcmp(a, "--metrics") == 0) {
            o->metrics = true;
        } else if (strcmp(a, "--metrics-path") == 0 || strcmp(a, "--admin-path") == 0) {
            NEED_VALUE();
            if (v[0] != '/' || v[1] == '\0' || strpbrk(v, "?# ") != NULL)
                return dk_err_set(err, DK_EINVAL, "%s must be a path like /metrics, got '%s'", a,
                                  v);
            *(strcmp(a, "--metrics-path") == 0 ? &o->metrics_path : &o->admin_path) = v;
        } else if (strcmp(a, "--admin-token") == 0) {
            NEED_VALUE();
            if (*v == '\0' || strpbrk(v, " \t\r\n") != NULL)
                return dk_err_set(err, DK_EINVAL, "--admin-token must be a non-empty word");
            o->admin_token = v;
        } else if (strcmp(a, "--routes-json") == 0) {
            o->routes_json = true;
        } else {
            args[(*out)++] = args[i];
        }
#undef NEED_VALUE
    }
    return 0;
}

int dk_app_options_parse(dk_app_options *o, int *argc, char **argv, dk_err *err)
{
    for (int i = 1; i < *argc && strcmp(argv[i], "--") != 0; i++) {
        bool help = strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0;
        if (help || strcmp(argv[i], "--version") == 0) {
            if (help)
                print_help(o, argv[0] ? argv[0] : "app");
            else
                print_version(o, argv[0] ? argv[0] : "app");
            fflush(stdout);
            if (o->help_returns)
                return DK_APP_HELP_SHOWN;
            exit(ferror(stdout) ? 1 : 0);
        }
    }
    /* Environment first, then argv: args = [argv0, env flags..., argv[1..]]. */
    enum { NENV = 2 * (int)(sizeof(help_rows) / sizeof(help_rows[0])) };
    const char *envs[NENV];
    char **args = malloc(((size_t)*argc + NENV + 1) * sizeof(*args));
    if (args == NULL)
        return dk_err_set(err, DK_ENOMEM, "out of memory");
    args[0] = argv[0];
    int nenv = env_args(args + 1, envs, err);
    if (nenv < 0) {
        free(args);
        return nenv;
    }
    for (int i = 1; i < *argc; i++)
        args[nenv + i] = argv[i];
    int out = 1, at = 0;
    int rc = parse_args(o, args, *argc + nenv, &out, &at, err);
    if (rc < 0 && at >= 1 && at <= nenv && err != NULL) {
        char msg[sizeof(err->message)];
        snprintf(msg, sizeof(msg), "%s", err->message);
        dk_err_set(err, rc, "environment variable %s: %s", envs[at - 1], msg);
    }
    if (rc == 0) {
        o->env_read = true;
        for (int i = 1; i < out; i++)
            argv[i] = args[i];
        argv[out] = NULL;
        *argc = out;
    }
    free(args);
    return rc;
}

static char **copy_strv(const char *const *v)
{
    if (v == NULL)
        return NULL;
    size_t n = 0;
    while (v[n])
        n++;
    char **c = calloc(n + 1, sizeof(*c));
    if (c == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        c[i] = strdup(v[i]);
    return c;
}

/* Adds the comma-separated keys of --log-redact to the logger's list. */
static int add_redact(dk_app *app, const char *list)
{
    char *copy = strdup(list);
    if (copy == NULL)
        return DK_ENOMEM;
    int rc = 0;
    char *save = NULL;
    for (char *k = strtok_r(copy, ",", &save); k != NULL && rc == 0;
         k = strtok_r(NULL, ",", &save)) {
        while (*k == ' ')
            k++;
        const char *one[] = {k, NULL};
        if (*k != '\0')
            rc = dk_logger_add_redact(app->core.logger, one);
    }
    free(copy);
    return rc;
}

/* Built-in endpoints for a path no route matches: redirects and probes,
 * Prometheus metrics, the admin page. */
static bool builtin_endpoint(dk_app *app, dk_ctx *ctx, dk_request *req, dk_response *res)
{
    return dk__probe(app, ctx, req, res) || dk__metrics_serve(app, ctx, req, res) ||
           dk__admin_page(app, ctx, req, res);
}

dk_app *dk_app_new(const dk_app_options *opts)
{
    dk_app *app = calloc(1, sizeof(*app));
    if (app == NULL)
        return NULL;
    if (opts)
        app->opts = *opts;
    else
        dk_app_options_init(&app->opts);
    dk_app_options *o = &app->opts;
    const char *env;
    if (!o->env_read && (env = getenv("DONKEY_LOG_LEVEL")) && *env)
        dk_log_level_parse(env, &o->log_level);
    if (!o->env_read && (env = getenv("DONKEY_LOG_FORMAT")) && *env)
        o->log_format = strcmp(env, "json") == 0 ? DK_LOG_JSON : DK_LOG_PRETTY;
    /* Request log: on in development, off in production unless asked for. */
    if (o->access_log >= 0)
        app->access_rate = o->access_log > 1 ? 1 : o->access_log;
    else
        app->access_rate = (env = getenv("DONKEY_ENV")) && strcmp(env, "production") == 0 ? 0 : 1;
    app->host = strdup(o->host ? o->host : "127.0.0.1");
    app->db_url = strdup(o->db_url ? o->db_url : "sqlite::memory:");
    app->redis_url = dk__strdup(o->redis_url);
    app->tls_cert = dk__strdup(o->tls_cert_file);
    app->tls_key = dk__strdup(o->tls_key_file);
    app->trusted = copy_strv(o->trusted_proxies);
    app->ip_header = dk__strdup(o->client_ip_header);
    o->client_ip_header = app->ip_header;
    o->host = app->host;
    o->db_url = app->db_url;
    o->redis_url = app->redis_url;
    o->tls_cert_file = app->tls_cert;
    o->tls_key_file = app->tls_key;
    o->trusted_proxies = (const char *const *)app->trusted;
    const char **obs[3] = {&o->metrics_path, &o->admin_token, &o->admin_path};
    for (int i = 0; i < 3; i++)
        *obs[i] = app->obs_strings[i] = dk__strdup(*obs[i]);
    if (o->max_json_depth <= 0)
        o->max_json_depth = 64;
    if (o->max_json_string == 0)
        o->max_json_string = 1024 * 1024;
    if (o->max_validation_issues <= 0)
        o->max_validation_issues = DK_SCHEMA_MAX_ISSUES;
    if (o->config_json) {
        /* Invalid text is not replaced silently: dk_app_start() reports it. */
        json_error_t jerr;
        app->config = json_loads(o->config_json, 0, &jerr);
        char msg[300];
        msg[0] = '\0';
        if (app->config == NULL)
            snprintf(msg, sizeof(msg), "config_json is not valid JSON (line %d, column %d): %s",
                     jerr.line, jerr.column, jerr.text);
        else if (!json_is_object(app->config))
            snprintf(msg, sizeof(msg), "config_json must be a JSON object");
        if (msg[0] != '\0' && (app->start_error = strdup(msg)) == NULL) {
            json_decref(app->config);
            free(app);
            return NULL;
        }
    }
    if (!json_is_object(app->config)) {
        json_decref(app->config);
        app->config = json_object();
    }
    o->config_json = NULL;
    app->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

    app->core.app = app;
    app->core.config = app->config;
    app->core.logger = dk_logger_new(o->log_level, o->log_format, stdout);
    app->core.errors = dk_errors_new();
    if (app->core.logger != NULL && o->log_redact != NULL && add_redact(app, o->log_redact) < 0) {
        dk_logger_free(app->core.logger);
        app->core.logger = NULL;
    }
    o->log_redact = NULL;
    if (app->host == NULL || app->db_url == NULL || app->core.logger == NULL ||
        app->core.errors == NULL || app->stop_fd < 0) {
        dk_app_free(app);
        return NULL;
    }
    /* Typed routes refuse non-JSON bodies with it (docs/routing.md). */
    if (dk_errors_register(app->core.errors, "UnsupportedMediaType", 415, "UNSUPPORTED_MEDIA_TYPE",
                           "Unsupported Media Type") < 0) {
        dk_app_free(app);
        return NULL;
    }
    /* The hooks through which lower layers reach this one (internal.h). */
    app->wire = (dk__wiring){.dispatch = dk__dispatch,
                             .probe = dk__probe,
                             .builtin = builtin_endpoint,
                             .mw_config_error = dk__cors_config_error};
    dk_err err = {0};
    if (dk__lifecycle_create(app, &err) < 0) {
        /* NULL says "out of memory" to the caller; the log says what failed. */
        dk_logf(app->core.logger, DK_LOG_ERROR, "cannot create the application: %s (%s)",
                err.message, dk_err_name(err.code));
        dk_logger_flush(app->core.logger);
        dk_app_free(app);
        return NULL;
    }
    return app;
}

void dk_app_free(dk_app *app)
{
    if (app == NULL)
        return;
    if (signal_app == app) {
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal_app = NULL;
    }
    dk__lifecycle_free(app); /* stops what still runs, frees every service */
    dk__admin_free(app);
    dk__metrics_free(app);
    dk__routes_free(app);
    for (size_t i = 0; i < app->nrouters; i++)
        dk_router_free(app->routers[i]);
    free(app->routers);
    for (size_t i = 0; i < app->nmws; i++)
        free(app->mws[i].name);
    free(app->mws);
    for (size_t i = 0; i < app->nkinds; i++)
        free(app->kinds[i].name);
    free(app->kinds);
    free(app->hooks);
    dk_errors_free(app->core.errors);
    if (app->core.logger) {
        dk_logger_flush(app->core.logger);
        dk_logger_free(app->core.logger);
    }
    json_decref(app->config);
    json_decref(app->redirects);
    if (app->trusted) {
        for (char **p = app->trusted; *p; p++)
            free(*p);
        free(app->trusted);
    }
    free(app->host);
    free(app->db_url);
    free(app->redis_url);
    free(app->tls_cert);
    free(app->ip_header);
    free(app->tls_key);
    for (int i = 0; i < 3; i++)
        free(app->obs_strings[i]);
    free(app->start_error);
    if (app->stop_fd >= 0)
        close(app->stop_fd);
    free(app);
}

int dk_app_use(dk_app *app, dk_router *r)
{
    if (r == NULL)
        return DK_EINVAL;
    dk_router **v = realloc(app->routers, (app->nrouters + 1) * sizeof(*v));
    if (v == NULL) {
        dk_router_free(r);
        return DK_ENOMEM;
    }
    app->routers = v;
    app->routers[app->nrouters++] = r;
    return 0;
}

int dk_app_on_shutdown(dk_app *app, void (*fn)(dk_app *app, void *user), void *user)
{
    if (app->nhooks == app->hcap) {
        size_t cap = app->hcap ? app->hcap * 2 : 4;
        dk__hook *v = realloc(app->hooks, cap * sizeof(*v));
        if (v == NULL)
            return DK_ENOMEM;
        app->hooks = v;
        app->hcap = cap;
    }
    app->hooks[app->nhooks++] = (dk__hook){fn, user};
    return 0;
}

const dk_core *dk_app_core(dk_app *app) { return &app->core; }
dk_logger *dk_app_logger(dk_app *app) { return app->core.logger; }
int dk_app_port(const dk_app *app) { return app->port; }

json_t *dk_app_routes_json(dk_app *app, dk_err *err)
{
    /* Resolution of middleware and kinds needs plugins registered, which
     * happens in dk__app_prepare(); route listing needs no database. */
    if (dk__app_prepare(app, err) < 0)
        return NULL;
    json_t *routes = json_array();
    for (size_t i = 0; i < app->table.n; i++)
        json_array_append_new(routes, dk__route_json(app->table.list[i]));
    json_t *doc = json_pack("{s:o}", "routes", routes);
    dk__plugins_describe(app, doc);
    return doc;
}

static void on_signal(int sig)
{
    if (signal_app != NULL)
        dk_app_stop(signal_app);
}

void dk__app_signals_install(dk_app *app)
{
    if (!app->opts.install_signals || signal_app == app)
        return;
    signal_app = app;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int dk_app_start(dk_app *app, dk_err *err)
{
    if (app->started)
        return dk_err_set(err, DK_ESTATE, "application already started");
    if (app->start_error != NULL)
        return dk_err_set(err, DK_EINVAL, "%s", app->start_error);
    int rc = dk__app_prepare(app, err);
    if (rc < 0)
        return rc;
    /* Every service in order; on failure what started is undone. */
    rc = dk__lifecycle_start(app, NULL, err);
    if (rc < 0)
        return rc;
    app->started = true;
    json_t *d = json_pack("{s:i, s:i}", "routes", (int)app->table.n, "threads",
                          app->opts.threads > 0 ? app->opts.threads : 1);
    dk_log(app->core.logger, DK_LOG_INFO, "Loaded RPC routes", d);
    char line[160];
    bool v6 = strchr(app->host, ':') != NULL; /* an IPv6 literal goes in brackets */
    snprintf(line, sizeof(line), "Server running at %s://%s%s%s:%d",
             app->tls_cert ? "https" : "http", v6 ? "[" : "", app->host, v6 ? "]" : "", app->port);
    dk_log(app->core.logger, DK_LOG_INFO, line, NULL);
    return 0;
}

void dk_app_stop(dk_app *app)
{
    atomic_store(&app->stop_requested, 1);
    uint64_t one = 1;
    ssize_t n = write(app->stop_fd, &one, sizeof(one));
    (void)n;
}

void dk__app_signals_undo(dk_app *app)
{
    /* A start that failed leaves the default dispositions; an orderly stop
     * keeps the handler until dk_app_wait() returns (then it does nothing). */
    if (!app->started && signal_app == app) {
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal_app = NULL;
    }
}

int dk_app_wait(dk_app *app)
{
    if (!app->started)
        return DK_ESTATE;
    dk__app_signals_install(app);
    while (!atomic_load(&app->stop_requested)) {
        struct pollfd p = {.fd = app->stop_fd, .events = POLLIN};
        poll(&p, 1, 1000);
    }
    dk_logger *lg = app->core.logger;
    dk_log(lg, DK_LOG_INFO, "Shutting down server...", NULL);
    uint64_t deadline = dk_now_ms() + app->opts.shutdown_grace_ms;
    /* Backward through the services: stop accepting and end SSE streams,
     * quiesce cron and jobs within the grace period, then drain requests, run
     * the shutdown hooks, stop the HTTP and worker threads and the plugins. */
    dk__lifecycle_stop(app, deadline);
    dk_log(lg, DK_LOG_INFO, "Server shutdown complete", NULL);
    dk_logger_flush(lg);
    app->started = false;
    if (signal_app == app)
        signal_app = NULL;
    return 0;
}

int dk_app_run(dk_app *app)
{
    dk_err err = {0};
    if (app->opts.routes_json) {
        json_t *doc = dk_app_routes_json(app, &err);
        if (doc == NULL) {
            fprintf(stderr, "error: %s\n", err.message);
            return 1;
        }
        char *text = json_dumps(doc, JSON_INDENT(2));
        json_decref(doc);
        if (text == NULL)
            return 1;
        puts(text);
        free(text);
        return 0;
    }
    if (dk_app_start(app, &err) < 0) {
        /* Once: a JSON log entry for machines reading --log-format json,
         * otherwise one line on stderr for the person at the terminal. */
        if (app->opts.log_format == DK_LOG_JSON) {
            dk_log(app->core.logger, DK_LOG_ERROR, "start-up failed",
                   json_pack("{s:s}", "error", err.message));
            dk_logger_flush(app->core.logger);
        } else {
            dk_logger_flush(app->core.logger);
            fprintf(stderr, "error: start-up failed: %s\n", err.message);
        }
        return 1;
    }
    dk_app_wait(app);
    return 0;
}
