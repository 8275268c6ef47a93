/* donkey CLI: the command table, dispatch, help, option parsing and the
 * helpers every command shares (errors, colour, files, project lookup). */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DK_CLI_VERSION "0.1.0"

static int cmd_help(int argc, char **argv);

static const cli_cmd commands[] = {
    {"init", "create a new project directory", cli_cmd_init,
     "Usage: donkey init NAME [--force]\n"
     "       donkey init .\n"
     "\n"
     "Creates the directory NAME with a donkey application that builds against the\n"
     "installed library (CMake + pkg-config): src/main.c, a plugin with a migration,\n"
     "a router answering POST /health.ping with {\"ok\": true}, a harness test (CTest),\n"
     "README.md and .gitignore. NAME: lowercase letters, digits, '_'; starts with a letter.\n"
     "`donkey init .` makes the working directory the project, named after it.\n"
     "\n"
     "Options:\n"
     "  --force    overwrite files that already exist\n"
     "  -h, --help show this help\n"},
    {"plugin new", "add a plugin to the current project", cli_cmd_plugin_new,
     "Usage: donkey plugin new NAME [--schema] [--config] [--deps a,b] [--handlers]\n"
     "                               [--middleware] [--register] [--force]\n"
     "\n"
     "Writes src/plugins/NAME.c and .h (a plugin with a service and a router with the\n"
     "typed route NAME.hello), migrations/NAME/ and tests/test_NAME.c, then prints\n"
     "the one line to add to src/plugins.def (--register adds it). Run inside a\n"
     "project (donkey init). NAME must not be dk, donkey, dk_* or donkey_* (the\n"
     "library's names) nor app, health or main (the project layout's).\n"
     "\n"
     "Options:\n"
     "  --schema      a first migration, migrations/NAME/001_init.sql, and a table\n"
     "  --config      read the plugin's JSON configuration ({\"greeting\": \"...\"})\n"
     "  --deps a,b    depend on plugins a and b, which src/plugins.def must list\n"
     "                (their services via dk_plugin_dep())\n"
     "  --handlers    provide a custom handler kind \"NAME\" and a route using it\n"
     "  --middleware  provide middleware \"NAME\" and use it on the plugin's routes\n"
     "  --register    add the APP_PLUGIN(NAME, ...) line to src/plugins.def\n"
     "  --force       overwrite files that already exist\n"
     "  -h, --help    show this help\n"},
    {"migration new", "add a migration to a plugin", cli_cmd_migration_new,
     "Usage: donkey migration new PLUGIN NAME [--force]\n"
     "\n"
     "Writes migrations/PLUGIN/NNN_NAME.sql where NNN is the next free number\n"
     "(001, 002, ...). The build embeds migrations/*/*.sql into the binary and the\n"
     "plugin runs them at start-up, in order, each once. NAME: [a-z0-9_]+.\n"
     "\n"
     "Options:\n"
     "  --force    overwrite the file if it exists\n"
     "  -h, --help show this help\n"},
    {"routes", "print the application's routes", cli_cmd_routes,
     "Usage: donkey routes [--server BIN] [--json]\n"
     "\n"
     "Runs `BIN --routes-json` and prints the routes as a table (name, kind, methods,\n"
     "middleware), or the JSON document itself with --json. BIN defaults to the\n"
     "project's build/<project name> (build it first with `cmake --build build`).\n"
     "\n"
     "Options:\n"
     "  --server BIN  the application binary\n"
     "  --json        print the route manifest JSON\n"
     "  -h, --help    show this help\n"},
    {"generate openapi", "write an OpenAPI 3.1 document of the routes", cli_cmd_generate_openapi,
     "Usage: donkey generate openapi [--server BIN] [--out FILE] [--url URL]\n"
     "                               [--license NAME [--license-url URL]] [--force]\n"
     "\n"
     "Writes an OpenAPI 3.1 document: one path /<route name> per route with its\n"
     "methods; typed routes get their input schema as the request body, their output\n"
     "schema as the 200 response, and 400/500 error responses {error, message, details}.\n"
     "Summaries come from dk_route_document() (else the route name); SSE routes are\n"
     "text/event-stream with their channel parameters. Without --out: stdout.\n"
     "\n"
     "Options:\n"
     "  --server BIN  the application binary (default: build/<project name>)\n"
     "  --out FILE    write to FILE, in an existing directory (refuses to overwrite\n"
     "                without --force)\n"
     "  --url URL     servers[0].url (default http://localhost:3000)\n"
     "  --license NAME, --license-url URL\n"
     "                info.license (default: none)\n"
     "  --force       overwrite FILE\n"
     "  -h, --help    show this help\n"},
    {"generate client", "write a TypeScript client for the routes", cli_cmd_generate_client,
     "Usage: donkey generate client [--server BIN] --out DIR [--force]\n"
     "\n"
     "Generates a TypeScript API client from the route manifest of BIN into DIR\n"
     "(see docs/client.md).\n"
     "\n"
     "Options:\n"
     "  --server BIN  the application binary (default: build/<project name>)\n"
     "  --out DIR     output directory (required)\n"
     "  --force       overwrite existing files\n"
     "  -h, --help    show this help\n"},
    {"dev", "rebuild and restart the application on changes", cli_cmd_dev,
     "Usage: donkey dev [--build-dir DIR] [-- APP-ARGS...]\n"
     "\n"
     "Builds the project (cmake --build DIR, configuring it first when needed), runs\n"
     "DIR/<project name> APP-ARGS, and watches src/, migrations/ and CMakeLists.txt.\n"
     "On a change it rebuilds; when the build succeeds the application is restarted,\n"
     "when it fails the last good build keeps running. Ctrl-C stops both.\n"
     "\n"
     "Options:\n"
     "  --build-dir DIR  build directory (default: build)\n"
     "  -h, --help       show this help\n"
     "\n"
     "Example: donkey dev -- --port 8080 --db sqlite:dev.db\n"},
    {"help", "show help for donkey or for a command", cmd_help,
     "Usage: donkey help [COMMAND]\n"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* ---- output ---- */

bool cli_colour(FILE *fp)
{
    return isatty(fileno(fp)) && getenv("NO_COLOR") == NULL;
}

int cli_error(int status, const char *cmd, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* One line, whatever the message holds. */
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    bool c = cli_colour(stderr);
    fflush(stdout);
    fprintf(stderr, "donkey%s%s: %serror:%s %s\n", cmd ? " " : "", cmd ? cmd : "",
            c ? "\033[1;31m" : "", c ? "\033[0m" : "", msg);
    return status;
}

void cli_note(const char *tag, const char *fmt, ...)
{
    bool c = cli_colour(stdout);
    printf("%s%10s%s  ", c ? "\033[32m" : "", tag, c ? "\033[0m" : "");
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

/* ---- help and dispatch ---- */

static const cli_cmd *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int cli_usage(const char *name)
{
    const cli_cmd *c = find_command(name);
    if (c != NULL)
        fputs(c->usage, stdout);
    return CLI_OK;
}

static void print_help(void)
{
    bool c = cli_colour(stdout);
    printf("Usage: donkey COMMAND [ARGS...]\n\n"
           "donkey %s: scaffolding and tools for donkey applications.\n\nCommands:\n",
           DK_CLI_VERSION);
    for (size_t i = 0; i < NCOMMANDS; i++)
        printf("  %s%-18s%s %s\n", c ? "\033[1m" : "", commands[i].name, c ? "\033[0m" : "",
               commands[i].summary);
    printf("\nRun 'donkey COMMAND --help' for a command's options.\n"
           "Exit status: 0 success, 1 failure, 2 bad arguments.\n");
}

/* Help for a group word ("plugin", "generate"): its subcommands. */
static bool print_group(const char *word)
{
    size_t n = strlen(word);
    bool any = false;
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strncmp(commands[i].name, word, n) == 0 && commands[i].name[n] == ' ') {
            if (!any)
                printf("Usage: donkey %s SUBCOMMAND ...\n\nSubcommands:\n", word);
            any = true;
            printf("  %-18s %s\n", commands[i].name, commands[i].summary);
        }
    }
    return any;
}

static int cmd_help(int argc, char **argv)
{
    if (argc <= 1) {
        print_help();
        return CLI_OK;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return cli_usage("help");
    char name[64];
    snprintf(name, sizeof(name), "%s%s%s", argv[1], argc > 2 ? " " : "", argc > 2 ? argv[2] : "");
    if (find_command(name) != NULL)
        return cli_usage(name);
    if (find_command(argv[1]) != NULL && argc == 2)
        return cli_usage(argv[1]);
    if (argc == 2 && print_group(argv[1]))
        return CLI_OK;
    return cli_error(CLI_USAGE, "help", "unknown command '%s' (see 'donkey help')", name);
}

static int cli_main(int argc, char **argv);

int dk_cli_main(int argc, char **argv)
{
    int rc = cli_main(argc, argv);
    /* What a command printed may still sit in stdout's buffer: a full disk
     * or a closed pipe shows only now (`donkey routes --json > /dev/full`). */
    errno = 0;
    bool bad = fflush(stdout) != 0;
    bad = ferror(stdout) || bad;
    if (bad) {
        const char *cmd = argc >= 2 ? argv[1] : "donkey";
        cli_error(CLI_FAIL, cmd, "cannot write the output: %s",
                  errno != 0 ? strerror(errno) : "write error");
        return rc != CLI_OK ? rc : CLI_FAIL;
    }
    return rc;
}

static int cli_main(int argc, char **argv)
{
    if (argc < 2) {
        print_help();
        return CLI_USAGE;
    }
    const char *first = argv[1];
    if (strcmp(first, "-h") == 0 || strcmp(first, "--help") == 0) {
        print_help();
        return CLI_OK;
    }
    if (strcmp(first, "--version") == 0 || strcmp(first, "-v") == 0) {
        printf("donkey %s\n", DK_CLI_VERSION);
        return CLI_OK;
    }
    /* Two-word commands first ("plugin new"), then one word. */
    if (argc >= 3) {
        char name[64];
        snprintf(name, sizeof(name), "%s %s", first, argv[2]);
        const cli_cmd *c = find_command(name);
        if (c != NULL && c->fn != NULL)
            return c->fn(argc - 2, argv + 2);
    }
    const cli_cmd *c = find_command(first);
    if (c != NULL && c->fn != NULL)
        return c->fn(argc - 1, argv + 1);

    /* A group word alone or with --help lists its subcommands. */
    bool help = argc >= 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0);
    if (help && print_group(first))
        return CLI_OK;
    if (argc == 2 && print_group(first))
        return cli_error(CLI_USAGE, first, "missing subcommand (see 'donkey %s --help')", first);
    size_t n = strlen(first);
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strncmp(commands[i].name, first, n) == 0 && commands[i].name[n] == ' ')
            return cli_error(CLI_USAGE, first, "unknown subcommand '%s' (see 'donkey %s --help')",
                             argv[2], first);
    return cli_error(CLI_USAGE, NULL, "unknown command '%s' (see 'donkey help')", first);
}

/* ---- option parsing ---- */

int cli_parse(const char *cmd, int argc, char **argv, const cli_opt *opts, const char **pos,
              int maxpos, int *npos, int *rest)
{
    *npos = 0;
    if (rest != NULL)
        *rest = argc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            return -1;
        if (strcmp(a, "--") == 0) {
            if (rest == NULL)
                return cli_error(CLI_USAGE, cmd, "unexpected '--' (see 'donkey %s --help')", cmd);
            *rest = i + 1;
            return CLI_OK;
        }
        if (a[0] == '-' && a[1] != '\0') {
            const char *eq = strchr(a, '=');
            size_t len = eq ? (size_t)(eq - a) : strlen(a);
            const cli_opt *o = NULL;
            for (const cli_opt *p = opts; p != NULL && p->name != NULL; p++)
                if (strlen(p->name) == len && strncmp(p->name, a, len) == 0)
                    o = p;
            if (o == NULL)
                return cli_error(CLI_USAGE, cmd, "unknown option '%.*s' (see 'donkey %s --help')",
                                 (int)len, a, cmd);
            if (o->kind == CLI_OPT_FLAG) {
                if (eq != NULL)
                    return cli_error(CLI_USAGE, cmd, "option '%s' takes no value", o->name);
                *(bool *)o->out = true;
            } else {
                const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
                if (v == NULL || *v == '\0')
                    return cli_error(CLI_USAGE, cmd, "option '%s' needs a value", o->name);
                *(const char **)o->out = v;
            }
            continue;
        }
        if (*npos >= maxpos)
            return cli_error(CLI_USAGE, cmd, "unexpected argument '%s' (see 'donkey %s --help')",
                             a, cmd);
        pos[(*npos)++] = a;
    }
    return CLI_OK;
}

/* ---- files ---- */

bool cli_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

int cli_mkdirs(const char *path)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

int cli_mkparents(const char *path)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    char *slash = strrchr(buf, '/');
    if (slash == NULL || slash == buf)
        return 0;
    *slash = '\0';
    return cli_mkdirs(buf);
}

char *cli_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
        if (cap - n - 1 == 0) {
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    bool bad = ferror(f);
    fclose(f);
    if (buf == NULL || bad) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
}

int cli_write_file(const char *cmd, const char *path, const char *text, bool force)
{
    if (!force && cli_exists(path))
        return cli_error(CLI_FAIL, cmd, "%s already exists (use --force to overwrite)", path);
    if (cli_mkparents(path) != 0)
        return cli_error(CLI_FAIL, cmd, "cannot create the directory of %s: %s", path,
                         strerror(errno));
    /* Write beside, then rename: an interrupted run never leaves half a file. */
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (f == NULL)
        return cli_error(CLI_FAIL, cmd, "cannot write %s: %s", path, strerror(errno));
    size_t n = strlen(text);
    bool ok = fwrite(text, 1, n, f) == n;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return cli_error(CLI_FAIL, cmd, "cannot write %s: %s", path, strerror(e));
    }
    return CLI_OK;
}

/* ---- projects ---- */

bool cli_valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 40 || s[0] < 'a' || s[0] > 'z')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

int cli_project_find(char *root, size_t rootlen, char *name, size_t namelen)
{
    char dir[PATH_MAX];
    if (getcwd(dir, sizeof(dir)) == NULL)
        return -1;
    for (;;) {
        char probe[PATH_MAX + 32];
        snprintf(probe, sizeof(probe), "%s/src/plugins.def", dir);
        if (cli_exists(probe))
            break;
        char *slash = strrchr(dir, '/');
        if (slash == NULL || slash == dir)
            return -1;
        *slash = '\0';
    }
    snprintf(root, rootlen, "%s", dir);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/CMakeLists.txt", dir);
    char *text = cli_read_file(path, NULL);
    if (text == NULL)
        return -1;
    /* project(NAME ...) */
    const char *p = strstr(text, "\nproject(");
    int rc = -1;
    if (p != NULL) {
        p += strlen("\nproject(");
        size_t n = strcspn(p, " \t\n)");
        if (n > 0 && n < namelen) {
            memcpy(name, p, n);
            name[n] = '\0';
            rc = 0;
        }
    }
    free(text);
    return rc;
}
