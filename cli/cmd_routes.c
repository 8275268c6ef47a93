/* donkey CLI: commands that read the application's route manifest (the JSON
 * `BIN --routes-json` prints): `routes`, `generate openapi`, `generate client`. */
#include "cli.h"
#include "gen_client.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MANIFEST_TIMEOUT_MS 15000
#define MANIFEST_MAX_BYTES (64u << 20)

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cli_run_capture(const char *cmd, char *const *argv, int timeout_ms, char **out, int *status)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return cli_error(CLI_FAIL, cmd, "pipe: %s", strerror(errno)), -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return cli_error(CLI_FAIL, cmd, "fork: %s", strerror(errno)), -1;
    }
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        execvp(argv[0], argv);
        _exit(127); /* reported by the parent, as one line */
    }
    close(fds[1]);
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    long long deadline = now_ms() + timeout_ms;
    bool timed_out = false, too_big = false;
    while (buf != NULL) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        int pr = poll(&pfd, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0) {
            timed_out = pr == 0;
            break;
        }
        if (len + 1 >= cap) {
            if (cap >= MANIFEST_MAX_BYTES) {
                too_big = true;
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL)
                break;
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(fds[0], buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fds[0]);
    if (timed_out || too_big)
        kill(pid, SIGKILL);
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
    }
    if (buf == NULL) {
        cli_error(CLI_FAIL, cmd, "out of memory");
        return -1;
    }
    if (timed_out || too_big) {
        free(buf);
        cli_error(CLI_FAIL, cmd, "%s %s", argv[0],
                  timed_out ? "did not finish in time" : "printed too much");
        return -1;
    }
    buf[len] = '\0';
    *out = buf;
    *status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    return 0;
}

json_t *cli_routes_doc(const char *cmd, const char *server)
{
    char path[PATH_MAX * 2];
    if (server == NULL) {
        char root[PATH_MAX], name[128];
        if (cli_project_find(root, sizeof(root), name, sizeof(name)) != 0) {
            cli_error(CLI_FAIL, cmd, "not inside a donkey project; pass --server BIN");
            return NULL;
        }
        snprintf(path, sizeof(path), "%s/build/%s", root, name);
        if (access(path, X_OK) != 0) {
            cli_error(CLI_FAIL, cmd, "no application binary at %s (build it with 'cmake --build "
                      "build' or pass --server BIN)", path);
            return NULL;
        }
        server = path;
    } else if (strchr(server, '/') == NULL && access(server, X_OK) == 0) {
        /* A file in the working directory, not a program on PATH. */
        snprintf(path, sizeof(path), "./%s", server);
        server = path;
    }
    char *argv[] = {(char *)server, "--routes-json", NULL};
    char *out = NULL;
    int status = 0;
    if (cli_run_capture(cmd, argv, MANIFEST_TIMEOUT_MS, &out, &status) != 0)
        return NULL;
    if (status == 127) {
        free(out);
        cli_error(CLI_FAIL, cmd, "cannot run '%s' (no such file, or not executable)", server);
        return NULL;
    }
    if (status != 0) {
        free(out);
        cli_error(CLI_FAIL, cmd, "'%s --routes-json' exited with status %d", server, status);
        return NULL;
    }
    json_error_t jerr;
    json_t *doc = json_loads(out, 0, &jerr);
    free(out);
    if (doc == NULL || !json_is_array(json_object_get(doc, "routes"))) {
        cli_error(CLI_FAIL, cmd, "'%s --routes-json' did not print a route manifest (%s)", server,
                  doc == NULL ? jerr.text : "no \"routes\" array");
        json_decref(doc);
        return NULL;
    }
    return doc;
}

/* ---- routes ---- */

/* Joins the strings of a JSON array with `sep` into buf ("-" when empty). */
static void join(const json_t *arr, const char *sep, char *buf, size_t len)
{
    buf[0] = '\0';
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        const char *s = json_is_string(v) ? json_string_value(v) : "?";
        size_t l = strlen(buf);
        snprintf(buf + l, len - l, "%s%s", i ? sep : "", s);
    }
    if (buf[0] == '\0')
        snprintf(buf, len, "-");
}

static int width(const char *s)
{
    return (int)strlen(s);
}

int cli_cmd_routes(int argc, char **argv)
{
    const char *cmd = "routes";
    const char *server = NULL;
    bool as_json = false;
    const cli_opt opts[] = {
        {"--server", CLI_OPT_VALUE, &server},
        {"--json", CLI_OPT_FLAG, &as_json},
        {NULL, 0, NULL},
    };
    int npos = 0;
    int rc = cli_parse(cmd, argc, argv, opts, NULL, 0, &npos, NULL);
    if (rc < 0)
        return cli_usage(cmd);
    if (rc != CLI_OK)
        return rc;
    json_t *doc = cli_routes_doc(cmd, server);
    if (doc == NULL)
        return CLI_FAIL;
    if (as_json) {
        json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        putchar('\n');
        json_decref(doc);
        return CLI_OK;
    }
    json_t *routes = json_object_get(doc, "routes");
    int wn = width("NAME"), wk = width("KIND"), wm = width("METHODS");
    size_t i;
    json_t *r;
    char methods[256], mw[1024];
    json_array_foreach(routes, i, r) {
        const char *name = json_string_value(json_object_get(r, "name"));
        const char *kind = json_string_value(json_object_get(r, "handler"));
        join(json_object_get(r, "methods"), ",", methods, sizeof(methods));
        if (name && width(name) > wn)
            wn = width(name);
        if (kind && width(kind) > wk)
            wk = width(kind);
        if (width(methods) > wm)
            wm = width(methods);
    }
    bool c = cli_colour(stdout);
    printf("%s%-*s  %-*s  %-*s  %s%s\n", c ? "\033[1m" : "", wn, "NAME", wk, "KIND", wm,
           "METHODS", "MIDDLEWARE", c ? "\033[0m" : "");
    json_array_foreach(routes, i, r) {
        const char *name = json_string_value(json_object_get(r, "name"));
        const char *kind = json_string_value(json_object_get(r, "handler"));
        join(json_object_get(r, "methods"), ",", methods, sizeof(methods));
        join(json_object_get(r, "middleware"), ", ", mw, sizeof(mw));
        printf("%-*s  %-*s  %-*s  %s\n", wn, name ? name : "?", wk, kind ? kind : "?", wm, methods,
               mw);
    }
    size_t nev = json_array_size(json_object_get(doc, "events"));
    size_t nsse = json_array_size(json_object_get(doc, "sseChannels"));
    printf("\n%zu route%s", json_array_size(routes), json_array_size(routes) == 1 ? "" : "s");
    if (nev > 0) {
        join(json_object_get(doc, "events"), ", ", mw, sizeof(mw));
        printf("; events: %s", mw);
    }
    if (nsse > 0) {
        join(json_object_get(doc, "sseChannels"), ", ", mw, sizeof(mw));
        printf("; SSE channels: %s", mw);
    }
    putchar('\n');
    json_decref(doc);
    return CLI_OK;
}

/* ---- generate openapi ---- */

static json_t *json_response(const char *description, json_t *schema /* stolen, may be NULL */)
{
    json_t *resp = json_pack("{s:s}", "description", description);
    if (schema != NULL)
        json_object_set_new(resp, "content",
                            json_pack("{s:{s:o}}", "application/json", "schema", schema));
    return resp;
}

static json_t *error_ref(void)
{
    return json_pack("{s:s}", "$ref", "#/components/schemas/Error");
}

typedef struct openapi_opts {
    const char *title;
    const char *url;         /* servers[0].url */
    const char *license;     /* info.license.name, NULL: none */
    const char *license_url; /* info.license.url */
    json_t *auth;            /* --auth: middleware name -> security scheme object */
} openapi_opts;

/* --auth "mw=bearer,session=cookie:sid": which middleware authenticates and
 * how, as OpenAPI security schemes keyed by middleware name. NULL after one
 * error line. */
static json_t *parse_auth(const char *cmd, const char *spec)
{
    json_t *map = json_object();
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s", spec);
    char *save = NULL;
    for (char *item = strtok_r(buf, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        json_t *scheme = NULL;
        if (eq != NULL && eq != item) {
            *eq = '\0';
            const char *v = eq + 1;
            if (strcmp(v, "bearer") == 0 || strcmp(v, "basic") == 0)
                scheme = json_pack("{s:s, s:s}", "type", "http", "scheme", v);
            else if (strncmp(v, "cookie:", 7) == 0 && v[7] != '\0')
                scheme = json_pack("{s:s, s:s, s:s}", "type", "apiKey", "in", "cookie", "name",
                                   v + 7);
            else if (strncmp(v, "header:", 7) == 0 && v[7] != '\0')
                scheme = json_pack("{s:s, s:s, s:s}", "type", "apiKey", "in", "header", "name",
                                   v + 7);
        }
        if (scheme == NULL) {
            json_decref(map);
            cli_error(CLI_USAGE, cmd,
                      "--auth takes MIDDLEWARE=SCHEME[,...] with SCHEME bearer, basic, "
                      "cookie:NAME or header:NAME; got '%s'",
                      spec);
            return NULL;
        }
        json_object_set_new(map, item, scheme);
    }
    return map;
}

/* One operation of `route` (new reference). */
static json_t *operation(const json_t *route, const char *method, const openapi_opts *oo)
{
    const char *name = json_string_value(json_object_get(route, "name"));
    const char *kind = json_string_value(json_object_get(route, "handler"));
    json_t *op = json_object();
    char opid[512];
    snprintf(opid, sizeof(opid), "%s", name);
    if (strcmp(method, "post") != 0) {
        size_t l = strlen(opid);
        snprintf(opid + l, sizeof(opid) - l, ".%s", method);
    }
    json_object_set_new(op, "operationId", json_string(opid));
    /* summary: the route's own (dk_route_document()), else its name. */
    const char *summary = json_string_value(json_object_get(route, "summary"));
    json_object_set_new(op, "summary", json_string(summary ? summary : name));
    const char *description = json_string_value(json_object_get(route, "description"));
    if (description != NULL)
        json_object_set_new(op, "description", json_string(description));
    const char *dot = strrchr(name, '.');
    if (dot != NULL)
        json_object_set_new(op, "tags", json_pack("[s#]", name, (int)(dot - name)));
    json_object_set_new(op, "x-donkey-handler", json_string(kind ? kind : "unknown"));
    json_t *mw = json_object_get(route, "middleware");
    if (json_array_size(mw) > 0)
        json_object_set(op, "x-donkey-middleware", mw);
    /* Security: the first middleware named by --auth; otherwise none is
     * declared (`security: []`: donkey itself asks for no credentials). */
    const char *auth = NULL;
    size_t k;
    json_t *m;
    json_array_foreach(mw, k, m) {
        const char *mname = json_string_value(m);
        if (auth == NULL && mname != NULL && json_object_get(oo->auth, mname) != NULL)
            auth = mname;
    }
    json_object_set_new(op, "security",
                        auth ? json_pack("[{s:[]}]", auth) : json_array());

    json_t *responses = json_object();
    bool typed = kind != NULL && strcmp(kind, "typed") == 0;
    json_t *input = json_object_get(route, "input");
    json_t *output = json_object_get(route, "output");
    if (typed) {
        /* Typed routes read a JSON body; without an input schema any value. */
        json_t *schema = json_is_object(input) ? json_deep_copy(input) : json_object();
        if (strcmp(method, "get") != 0 && strcmp(method, "head") != 0)
            json_object_set_new(op, "requestBody",
                                json_pack("{s:b, s:{s:{s:o}}}", "required", 0, "content",
                                          "application/json", "schema", schema));
        else
            json_decref(schema);
        json_object_set_new(responses, "200",
                            json_response("Success", json_is_object(output)
                                                         ? json_deep_copy(output)
                                                         : json_object()));
        json_object_set_new(responses, "400",
                            json_response("Bad request: invalid JSON or input validation failed",
                                          error_ref()));
    } else if (json_is_true(json_object_get(route, "sse"))) {
        /* A Server-Sent Events stream (the generated client's connect()): GET
         * /<route>?channel=a&channel=b, resumed with Last-Event-ID. */
        json_object_set_new(
            op, "parameters",
            json_pack("[{s:s, s:s, s:s, s:b, s:s, s:b, s:{s:s, s:{s:s}}},"
                      " {s:s, s:s, s:s, s:b, s:{s:s}}]",
                      "name", "channel", "in", "query", "description",
                      "A channel to subscribe to; repeat the parameter for several", "required",
                      0, "style", "form", "explode", 1, "schema", "type", "array", "items",
                      "type", "string",
                      "name", "Last-Event-ID", "in", "header", "description",
                      "The last event id seen: events after it are replayed, or a `reset` "
                      "event is sent when they are no longer kept",
                      "required", 0, "schema", "type", "string"));
        json_object_set_new(
            responses, "200",
            json_pack("{s:s, s:{s:{s:{s:s}}}}", "description",
                      "An event stream (`retry:`, then `id:`/`event:`/`data:` frames and "
                      "heartbeat comments)",
                      "content", "text/event-stream", "schema", "type", "string"));
        json_object_set_new(responses, "400", json_response("Bad request", error_ref()));
        json_object_set_new(responses, "503",
                            json_response("Too many event-stream clients", error_ref()));
    } else {
        /* Raw and custom kinds answer whatever the handler writes. */
        if (json_is_object(input))
            json_object_set_new(op, "requestBody",
                                json_pack("{s:{s:{s:O}}}", "content", "application/json",
                                          "schema", input));
        json_object_set_new(responses, "200",
                            json_response("Success",
                                          json_is_object(output) ? json_deep_copy(output) : NULL));
        json_object_set_new(responses, "400", json_response("Bad request", error_ref()));
    }
    if (auth != NULL)
        json_object_set_new(responses, "401",
                            json_response("Missing or invalid credentials", error_ref()));
    json_object_set_new(responses, "500", json_response("Internal server error", error_ref()));
    json_object_set_new(responses, "default", json_response("Error", error_ref()));
    json_object_set_new(op, "responses", responses);
    return op;
}

static json_t *openapi_doc(const json_t *manifest, const openapi_opts *oo)
{
    json_t *paths = json_object();
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(manifest, "routes"), i, r) {
        const char *name = json_string_value(json_object_get(r, "name"));
        if (name == NULL)
            continue;
        char path[512];
        snprintf(path, sizeof(path), "/%s", name);
        json_t *item = json_object();
        json_t *methods = json_object_get(r, "methods");
        size_t j;
        json_t *m;
        json_array_foreach(methods, j, m) {
            char lower[16];
            const char *s = json_string_value(m);
            if (s == NULL || strlen(s) >= sizeof(lower))
                continue;
            size_t k = 0;
            for (; s[k]; k++)
                lower[k] = (char)(s[k] >= 'A' && s[k] <= 'Z' ? s[k] + 32 : s[k]);
            lower[k] = '\0';
            json_object_set_new(item, lower, operation(r, lower, oo));
        }
        if (json_array_size(methods) == 0)
            json_object_set_new(item, "post", operation(r, "post", oo));
        json_object_set_new(paths, path, item);
    }
    json_t *error_schema = json_pack(
        "{s:s, s:{s:{s:s, s:s}, s:{s:s}, s:{s:s}}, s:[s,s]}", "type", "object", "properties",
        "error", "type", "string", "description", "Error code, e.g. BAD_REQUEST", "message",
        "type", "string", "details", "description", "Extra data (validation issues...)",
        "required", "error", "message");
    json_t *info = json_pack("{s:s, s:s}", "title", oo->title, "version", "0.1.0");
    if (oo->license != NULL) {
        json_t *lic = json_pack("{s:s}", "name", oo->license);
        if (oo->license_url != NULL)
            json_object_set_new(lic, "url", json_string(oo->license_url));
        json_object_set_new(info, "license", lic);
    }
    json_t *doc = json_pack("{s:s, s:o, s:[{s:s}], s:o, s:{s:{s:o}}}", "openapi", "3.1.0",
                            "info", info, "servers", "url", oo->url, "paths", paths,
                            "components", "schemas", "Error", error_schema);
    if (json_object_size(oo->auth) > 0)
        json_object_set(json_object_get(doc, "components"), "securitySchemes", oo->auth);
    json_t *events = json_object_get(manifest, "events");
    if (json_array_size(events) > 0)
        json_object_set(doc, "x-donkey-events", events);
    json_t *sse = json_object_get(manifest, "sseChannels");
    if (json_array_size(sse) > 0)
        json_object_set(doc, "x-donkey-sse-channels", sse);
    return doc;
}

int cli_cmd_generate_openapi(int argc, char **argv)
{
    const char *cmd = "generate openapi";
    const char *server = NULL, *out = NULL;
    openapi_opts oo = {.url = "http://localhost:3000"};
    const char *auth = NULL;
    bool force = false;
    const cli_opt opts[] = {
        {"--server", CLI_OPT_VALUE, &server},
        {"--out", CLI_OPT_VALUE, &out},
        {"--url", CLI_OPT_VALUE, &oo.url},
        {"--license", CLI_OPT_VALUE, &oo.license},
        {"--license-url", CLI_OPT_VALUE, &oo.license_url},
        {"--auth", CLI_OPT_VALUE, &auth},
        {"--force", CLI_OPT_FLAG, &force},
        {NULL, 0, NULL},
    };
    int npos = 0;
    int rc = cli_parse(cmd, argc, argv, opts, NULL, 0, &npos, NULL);
    if (rc < 0)
        return cli_usage(cmd);
    if (rc != CLI_OK)
        return rc;
    if (out != NULL && !force && cli_exists(out))
        return cli_error(CLI_FAIL, cmd, "%s already exists (use --force to overwrite)", out);
    if (auth != NULL && (oo.auth = parse_auth(cmd, auth)) == NULL)
        return CLI_USAGE;
    json_t *manifest = cli_routes_doc(cmd, server);
    if (manifest == NULL) {
        json_decref(oo.auth);
        return CLI_FAIL;
    }
    char title[256];
    char root[PATH_MAX], name[128];
    if (server == NULL && cli_project_find(root, sizeof(root), name, sizeof(name)) == 0) {
        snprintf(title, sizeof(title), "%s", name);
    } else {
        const char *base = strrchr(server, '/');
        snprintf(title, sizeof(title), "%s", base ? base + 1 : server);
    }
    oo.title = title;
    json_t *doc = openapi_doc(manifest, &oo);
    json_decref(oo.auth);
    json_decref(manifest);
    if (doc == NULL)
        return cli_error(CLI_FAIL, cmd, "out of memory");
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (text == NULL)
        return cli_error(CLI_FAIL, cmd, "out of memory");
    if (out == NULL) {
        fputs(text, stdout);
        putchar('\n');
        rc = CLI_OK;
    } else {
        size_t n = strlen(text);
        char *withnl = realloc(text, n + 2);
        if (withnl != NULL) {
            text = withnl;
            text[n] = '\n';
            text[n + 1] = '\0';
        }
        /* The directory must exist: a typo in --out is an error, not a new tree. */
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", out);
        char *slash = strrchr(dir, '/');
        struct stat st;
        if (slash != NULL && slash != dir)
            *slash = '\0';
        else
            snprintf(dir, sizeof(dir), "%s", slash == dir ? "/" : ".");
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
            rc = cli_error(CLI_FAIL, cmd, "cannot write %s: directory %s does not exist", out,
                           dir);
        else
            rc = cli_write_file(cmd, out, text, force);
        if (rc == CLI_OK)
            cli_note("created", "%s", out);
    }
    free(text);
    return rc;
}

/* ---- generate client ---- */

int cli_cmd_generate_client(int argc, char **argv)
{
    const char *cmd = "generate client";
    const char *server = NULL, *out = NULL;
    openapi_opts oo = {.url = "http://localhost:3000"};
    const char *auth = NULL;
    bool force = false;
    const cli_opt opts[] = {
        {"--server", CLI_OPT_VALUE, &server},
        {"--out", CLI_OPT_VALUE, &out},
        {"--url", CLI_OPT_VALUE, &oo.url},
        {"--license", CLI_OPT_VALUE, &oo.license},
        {"--license-url", CLI_OPT_VALUE, &oo.license_url},
        {"--auth", CLI_OPT_VALUE, &auth},
        {"--force", CLI_OPT_FLAG, &force},
        {NULL, 0, NULL},
    };
    int npos = 0;
    int rc = cli_parse(cmd, argc, argv, opts, NULL, 0, &npos, NULL);
    if (rc < 0)
        return cli_usage(cmd);
    if (rc != CLI_OK)
        return rc;
    if (out == NULL)
        return cli_error(CLI_USAGE, cmd, "missing --out DIR (see 'donkey generate client --help')");
    json_t *manifest = cli_routes_doc(cmd, server);
    if (manifest == NULL)
        return CLI_FAIL;
    char err[512] = "";
    rc = dk_cli_generate_client(manifest, out, force, err, sizeof(err));
    json_decref(manifest);
    if (rc != 0)
        return cli_error(CLI_FAIL, cmd, "%s", err[0] ? err : "client generation failed");
    cli_note("created", "%s (index.ts, runtime.ts, index.js, runtime.js)", out);
    return CLI_OK;
}
