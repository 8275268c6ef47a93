/* donkey CLI: internal declarations shared by the command files. Nothing here
 * is installed; the only entry point other programs (a fuzzer, main.c) use is
 * dk_cli_main(). */
#ifndef DK_CLI_H
#define DK_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Exit statuses of every command. */
enum {
    CLI_OK = 0,
    CLI_FAIL = 1,  /* runtime failure: a file exists, a build failed, the server did not answer */
    CLI_USAGE = 2, /* bad arguments */
};

/** Runs the donkey command line (argv[0] is the program name). Returns the
 *  process exit status. Reentrant: no global option state. */
int dk_cli_main(int argc, char **argv);

/* ---- commands (one table in cli.c) ---- */

typedef int (*cli_cmd_fn)(int argc, char **argv);

typedef struct cli_cmd {
    const char *name;    /* "init", "plugin new", ... */
    const char *summary; /* one line for `donkey help` */
    cli_cmd_fn fn;       /* argv[0] is the command name; returns an exit status */
    const char *usage;   /* the text of `donkey <name> --help` */
} cli_cmd;

int cli_cmd_init(int argc, char **argv);
int cli_cmd_plugin_new(int argc, char **argv);
int cli_cmd_migration_new(int argc, char **argv);
int cli_cmd_routes(int argc, char **argv);
int cli_cmd_generate_openapi(int argc, char **argv);
int cli_cmd_generate_client(int argc, char **argv);
int cli_cmd_dev(int argc, char **argv);

/* ---- option parsing ---- */

typedef enum { CLI_OPT_FLAG, CLI_OPT_VALUE } cli_opt_kind;

typedef struct cli_opt {
    const char *name; /* "--force" */
    cli_opt_kind kind;
    void *out;        /* bool * for flags, const char ** for values */
} cli_opt;

/** Parses argv[1..] of command `cmd` against `opts` (ends at name NULL).
 *  Positional arguments go to `pos` (at most `maxpos`, count in `*npos`).
 *  Arguments after "--" are left alone: `*rest` (may be NULL, then "--" is an
 *  error) receives their index, or argc when there is no "--". Returns
 *  CLI_OK, CLI_USAGE after printing one error line, or -1 when --help/-h was
 *  given (the caller prints the usage and exits 0). */
int cli_parse(const char *cmd, int argc, char **argv, const cli_opt *opts, const char **pos,
              int maxpos, int *npos, int *rest);

/** Prints the usage of command `name` to stdout; returns CLI_OK. */
int cli_usage(const char *name);

/* ---- output ---- */

/** One line "donkey: <cmd>: <message>" on stderr ("error" in red on a
 *  terminal). Returns `status` so commands can `return cli_error(...)`. */
int cli_error(int status, const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** A progress line on stdout; `tag` coloured green on a terminal ("created"...). */
void cli_note(const char *tag, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** True when `fp` is a terminal and NO_COLOR is unset. */
bool cli_colour(FILE *fp);

/* ---- files and projects ---- */

/** Creates `path` and its parents (mode 0755). 0 or -1 with errno. */
int cli_mkdirs(const char *path);
/** Creates the parent directories of `path`. */
int cli_mkparents(const char *path);
bool cli_exists(const char *path);
/** Reads a whole file; caller frees. NULL with errno on failure. */
char *cli_read_file(const char *path, size_t *len);
/** Writes `text` to `path` (parents created). Refuses (CLI_FAIL, one error
 *  line) to replace an existing file unless `force`. */
int cli_write_file(const char *cmd, const char *path, const char *text, bool force);

/** Finds the project around the working directory: the nearest ancestor
 *  holding src/plugins.def. Fills `root` (absolute) and `name` (from the
 *  project() line of its CMakeLists.txt). Returns 0 or -1. */
int cli_project_find(char *root, size_t rootlen, char *name, size_t namelen);

/** True for names matching ^[a-z][a-z0-9_]*$ of at most 40 characters. */
bool cli_valid_name(const char *s);

/* ---- templates (cli/templates/, compiled in by embed_templates.cmake) ---- */

/** The template text for `name` ("project/main.c"), or NULL. Static. */
const char *cli_template(const char *name);

typedef struct cli_var {
    const char *key;
    const char *value; /* sections: true when non-NULL, non-empty and not "0" */
} cli_var;

/** Renders `tmpl`: {{key}} is replaced by its value, {{#key}}...{{/key}} kept
 *  only when key is true, {{^key}}...{{/key}} only when false; a section tag
 *  alone on its line removes that line. Unknown keys render empty; braces
 *  around anything but a name ({{0}}) are plain text. Caller
 *  frees; NULL when out of memory or on an unbalanced section. */
char *cli_render(const char *tmpl, const cli_var *vars, size_t nvars);

/* ---- running the application ---- */

/** Runs `argv` (no shell), collecting stdout; stderr is passed through.
 *  Kills it after `timeout_ms`. On 0, `*out` (caller frees, NUL-terminated)
 *  and `*status` (exit status, or 128+signal) are set. -1 when it could not
 *  be started or timed out (with one error line printed for `cmd`). */
int cli_run_capture(const char *cmd, char *const *argv, int timeout_ms, char **out, int *status);

/** Runs `server --routes-json` and parses the document (new reference), or
 *  prints one error line and returns NULL. `server` NULL means the project's
 *  build/<name>. */
json_t *cli_routes_doc(const char *cmd, const char *server);

#endif
