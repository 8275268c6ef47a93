/* donkey CLI: scaffolds. `init` (a project), `plugin new`, `migration new`.
 * Every file comes from a template compiled into the binary; nothing is
 * written when any target exists, unless --force. */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The plugin `donkey init` creates. */
#define INIT_PLUGIN "greetings"

typedef struct out_file {
    char path[PATH_MAX]; /* relative to the base directory */
    char *text;          /* rendered, owned */
} out_file;

typedef struct file_set {
    out_file files[16];
    size_t n;
    bool oom;
} file_set;

static void set_add(file_set *s, const char *path, const char *tmpl, const cli_var *vars,
                    size_t nvars)
{
    const char *t = cli_template(tmpl);
    if (s->n >= sizeof(s->files) / sizeof(s->files[0]) || t == NULL) {
        s->oom = true;
        return;
    }
    out_file *f = &s->files[s->n];
    snprintf(f->path, sizeof(f->path), "%s", path);
    f->text = cli_render(t, vars, nvars);
    if (f->text == NULL)
        s->oom = true;
    s->n++;
}

static void set_free(file_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->files[i].text);
}

/* Checks every target first so that a refusal writes nothing, then writes. */
static int set_write(const char *cmd, const char *base, file_set *s, bool force)
{
    if (s->oom)
        return cli_error(CLI_FAIL, cmd, "out of memory or broken template");
    char full[PATH_MAX * 2];
    if (!force) {
        for (size_t i = 0; i < s->n; i++) {
            snprintf(full, sizeof(full), "%s/%s", base, s->files[i].path);
            if (cli_exists(full))
                return cli_error(CLI_FAIL, cmd, "%s already exists (use --force to overwrite)",
                                 full);
        }
    }
    for (size_t i = 0; i < s->n; i++) {
        snprintf(full, sizeof(full), "%s/%s", base, s->files[i].path);
        int rc = cli_write_file(cmd, full, s->files[i].text, true);
        if (rc != CLI_OK)
            return rc;
        cli_note("created", "%s", full);
    }
    return CLI_OK;
}

/* ---- plugins ---- */

typedef struct plugin_spec {
    const char *name;
    bool schema, config, handlers, middleware;
    const char *deps; /* "a,b" or NULL */
} plugin_spec;

static bool valid_dep(const char *s, size_t n)
{
    if (n == 0 || n > 40 || !(s[0] >= 'a' && s[0] <= 'z'))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

/* Builds the C snippets for --deps: the initialiser list, service fields and
 * look-ups. Returns CLI_OK or CLI_USAGE after one error line. */
static int deps_code(const char *cmd, const plugin_spec *p, char *list, size_t listlen,
                     char *fields, size_t fieldslen, char *lookup, size_t lookuplen)
{
    list[0] = fields[0] = lookup[0] = '\0';
    const char *s = p->deps;
    char seen[16][48];
    size_t nseen = 0;
    while (s != NULL && *s != '\0') {
        size_t n = strcspn(s, ",");
        if (!valid_dep(s, n))
            return cli_error(CLI_USAGE, cmd,
                             "invalid dependency name '%.*s' in --deps: plugin names are lowercase "
                             "letters, digits and '_', starting with a letter",
                             (int)n, s);
        if ((size_t)n == strlen(p->name) && strncmp(s, p->name, n) == 0)
            return cli_error(CLI_USAGE, cmd, "plugin '%s' cannot depend on itself", p->name);
        for (size_t i = 0; i < nseen; i++)
            if (strlen(seen[i]) == n && strncmp(seen[i], s, n) == 0)
                return cli_error(CLI_USAGE, cmd, "dependency '%.*s' listed twice", (int)n, s);
        if (nseen == sizeof(seen) / sizeof(seen[0]))
            return cli_error(CLI_USAGE, cmd, "too many dependencies");
        snprintf(seen[nseen++], sizeof(seen[0]), "%.*s", (int)n, s);
        size_t l = strlen(list), f = strlen(fields), k = strlen(lookup);
        snprintf(list + l, listlen - l, "\"%.*s\", ", (int)n, s);
        snprintf(fields + f, fieldslen - f,
                 "%s    void *dep_%.*s; /* service of plugin \"%.*s\" (NULL if it has none) */",
                 f ? "\n" : "", (int)n, s, (int)n, s);
        snprintf(lookup + k, lookuplen - k, "%s    svc->dep_%.*s = dk_plugin_dep(pctx, \"%.*s\");",
                 k ? "\n" : "", (int)n, s, (int)n, s);
        s += n;
        if (*s == ',')
            s++;
        if (*s == '\0' && s[-1] == ',')
            return cli_error(CLI_USAGE, cmd, "empty name in --deps");
    }
    if (p->deps != NULL && nseen == 0)
        return cli_error(CLI_USAGE, cmd, "--deps needs at least one plugin name");
    return CLI_OK;
}

/* Adds the plugin's files (source, header, migrations, test) to `s`. */
static int plugin_files(const char *cmd, const plugin_spec *p, bool with_test, file_set *s)
{
    char list[1024], fields[4096], lookup[4096], upper[64];
    int rc = deps_code(cmd, p, list, sizeof(list), fields, sizeof(fields), lookup, sizeof(lookup));
    if (rc != CLI_OK)
        return rc;
    size_t i = 0;
    for (; p->name[i] && i + 1 < sizeof(upper); i++)
        upper[i] = (char)(p->name[i] >= 'a' && p->name[i] <= 'z' ? p->name[i] - 32 : p->name[i]);
    upper[i] = '\0';
    const cli_var vars[] = {
        {"name", p->name},
        {"NAME", upper},
        {"schema", p->schema ? "1" : NULL},
        {"config", p->config ? "1" : NULL},
        {"deps", p->deps ? "1" : NULL},
        {"handlers", p->handlers ? "1" : NULL},
        {"middleware", p->middleware ? "1" : NULL},
        {"deps_list", list},
        {"deps_fields", fields},
        {"deps_lookup", lookup},
    };
    size_t nv = sizeof(vars) / sizeof(vars[0]);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "src/plugins/%s.c", p->name);
    set_add(s, path, "plugin/plugin.c", vars, nv);
    snprintf(path, sizeof(path), "src/plugins/%s.h", p->name);
    set_add(s, path, "plugin/plugin.h", vars, nv);
    if (p->schema) {
        snprintf(path, sizeof(path), "migrations/%s/001_init.sql", p->name);
        set_add(s, path, "plugin/init.sql", vars, nv);
    }
    if (with_test) {
        snprintf(path, sizeof(path), "tests/test_%s.c", p->name);
        set_add(s, path, "plugin/test.c", vars, nv);
    }
    return CLI_OK;
}

/* The plugin's migrations directory must exist (the build makes one
 * dk_migration array per directory), even while it is empty. */
static int ensure_migration_dir(const char *cmd, const char *base, const char *plugin)
{
    char dir[PATH_MAX * 2], keep[PATH_MAX * 2 + 16];
    snprintf(dir, sizeof(dir), "%s/migrations/%s", base, plugin);
    if (cli_mkdirs(dir) != 0)
        return cli_error(CLI_FAIL, cmd, "cannot create %s: %s", dir, strerror(errno));
    snprintf(keep, sizeof(keep), "%s/.gitkeep", dir);
    if (!cli_exists(keep)) {
        int rc = cli_write_file(cmd, keep, "", false);
        if (rc != CLI_OK)
            return rc;
    }
    return CLI_OK;
}

/* Names the project layout uses (src/app.c, src/routes/health.c, main) and
 * names that collide with the library's identifiers (dk_*, donkey_*), whose
 * generated <name>_plugin / <name>_router symbols would clash with it. */
static const char *reserved(const char *name)
{
    if (strcmp(name, "app") == 0 || strcmp(name, "health") == 0 || strcmp(name, "main") == 0)
        return "reserved by the project layout";
    if (strcmp(name, "dk") == 0 || strcmp(name, "donkey") == 0 || strncmp(name, "dk_", 3) == 0 ||
        strncmp(name, "donkey_", 7) == 0)
        return "it collides with the donkey library's names (dk_*, donkey_*)";
    return NULL;
}

/* The plugin names listed in src/plugins.def ("APP_PLUGIN(name," lines
 * outside comments), as one ",a,b," string so that a search for ",name," is
 * exact. Caller frees; NULL when the file cannot be read. */
static char *registered_plugins(const char *root)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/src/plugins.def", root);
    char *text = cli_read_file(path, NULL);
    if (text == NULL)
        return NULL;
    size_t cap = strlen(text) + 2;
    char *names = malloc(cap);
    if (names == NULL) {
        free(text);
        return NULL;
    }
    strcpy(names, ",");
    bool comment = false;
    for (const char *p = text; *p; p++) {
        if (comment) {
            if (p[0] == '*' && p[1] == '/')
                comment = false, p++;
            continue;
        }
        if (p[0] == '/' && p[1] == '*') {
            comment = true, p++;
            continue;
        }
        if (p[0] == '/' && p[1] == '/') {
            p += strcspn(p, "\n");
            if (*p == '\0')
                break;
            continue;
        }
        if (strncmp(p, "APP_PLUGIN(", 11) != 0 || (p > text && (p[-1] == '_' ||
                                                               (p[-1] >= 'A' && p[-1] <= 'Z'))))
            continue;
        p += 11;
        p += strspn(p, " \t");
        size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_");
        if (n > 0 && strlen(names) + n + 2 <= cap) {
            strncat(names, p, n);
            strcat(names, ",");
        }
        p += n > 0 ? n - 1 : 0;
    }
    free(text);
    return names;
}

static bool name_in(const char *names, const char *s, size_t n)
{
    for (const char *p = strchr(names, ','); p != NULL && p[1]; p = strchr(p + 1, ','))
        if (strncmp(p + 1, s, n) == 0 && p[1 + n] == ',')
            return true;
    return false;
}

/* Every --deps name must be a plugin of the project (listed in plugins.def). */
static int check_deps_exist(const char *cmd, const char *root, const char *deps)
{
    if (deps == NULL)
        return CLI_OK;
    char *names = registered_plugins(root);
    if (names == NULL)
        return cli_error(CLI_FAIL, cmd, "cannot read %s/src/plugins.def", root);
    int rc = CLI_OK;
    for (const char *s = deps; *s;) {
        size_t n = strcspn(s, ",");
        if (!name_in(names, s, n)) {
            size_t len = strlen(names);
            if (len > 1)
                names[len - 1] = '\0';
            rc = cli_error(CLI_FAIL, cmd,
                           "--deps: no plugin '%.*s' in src/plugins.def (plugins there: %s)",
                           (int)n, s, len > 1 ? names + 1 : "none");
            break;
        }
        s += n;
        if (*s == ',')
            s++;
    }
    free(names);
    return rc;
}

/* Appends the plugin's APP_PLUGIN line to src/plugins.def (once). */
static int register_plugin(const char *cmd, const char *root, const char *name, const char *line)
{
    char *names = registered_plugins(root);
    if (names == NULL)
        return cli_error(CLI_FAIL, cmd, "cannot read %s/src/plugins.def", root);
    bool already = name_in(names, name, strlen(name));
    free(names);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/src/plugins.def", root);
    if (already) {
        cli_note("kept", "%s (already lists %s)", path, name);
        return CLI_OK;
    }
    size_t len = 0;
    char *text = cli_read_file(path, &len);
    if (text == NULL)
        return cli_error(CLI_FAIL, cmd, "cannot read %s: %s", path, strerror(errno));
    bool nl = len == 0 || text[len - 1] == '\n';
    free(text);
    FILE *f = fopen(path, "a");
    if (f == NULL)
        return cli_error(CLI_FAIL, cmd, "cannot open %s: %s", path, strerror(errno));
    fprintf(f, "%s%s\n", nl ? "" : "\n", line);
    if (fclose(f) != 0)
        return cli_error(CLI_FAIL, cmd, "cannot write %s: %s", path, strerror(errno));
    cli_note("updated", "%s (%s)", path, line);
    return CLI_OK;
}

/* ---- init ---- */

int cli_cmd_init(int argc, char **argv)
{
    const char *cmd = "init";
    bool force = false;
    const cli_opt opts[] = {{"--force", CLI_OPT_FLAG, &force}, {NULL, 0, NULL}};
    const char *pos[1];
    int npos = 0;
    int rc = cli_parse(cmd, argc, argv, opts, pos, 1, &npos, NULL);
    if (rc < 0)
        return cli_usage(cmd);
    if (rc != CLI_OK)
        return rc;
    if (npos == 0)
        return cli_error(CLI_USAGE, cmd, "missing project name (usage: donkey init NAME)");
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", pos[0]);
    for (size_t n = strlen(dir); n > 1 && dir[n - 1] == '/'; n--)
        dir[n - 1] = '\0';
    /* `donkey init .`: the project is the working directory, named after it. */
    bool here = strcmp(dir, ".") == 0;
    char cwd[PATH_MAX];
    if (here && getcwd(cwd, sizeof(cwd)) == NULL)
        return cli_error(CLI_FAIL, cmd, "cannot read the working directory: %s", strerror(errno));
    const char *slash = strrchr(here ? cwd : dir, '/');
    const char *name = slash ? slash + 1 : dir;
    if (!cli_valid_name(name))
        return cli_error(CLI_USAGE, cmd,
                         here ? "the directory name '%s' is not a valid project name (lowercase "
                                "letters, digits and '_', starting with a letter, at most 40): "
                                "rename it, or use 'donkey init NAME' to create a subdirectory"
                              : "invalid project name '%s': use lowercase letters, digits and "
                                "'_', starting with a letter (at most 40)",
                         name);

    file_set s = {0};
    const cli_var vars[] = {{"name", name}, {"plugin", INIT_PLUGIN}};
    size_t nv = sizeof(vars) / sizeof(vars[0]);
    set_add(&s, "CMakeLists.txt", "project/CMakeLists.txt", vars, nv);
    set_add(&s, "cmake/embed_migrations.cmake", "project/embed_migrations.cmake", vars, nv);
    set_add(&s, "src/main.c", "project/main.c", vars, nv);
    set_add(&s, "src/app.h", "project/app.h", vars, nv);
    set_add(&s, "src/app.c", "project/app.c", vars, nv);
    set_add(&s, "src/plugins.def", "project/plugins.def", vars, nv);
    set_add(&s, "src/routes/health.c", "project/health.c", vars, nv);
    set_add(&s, "tests/test_app.c", "project/test_app.c", vars, nv);
    set_add(&s, "README.md", "project/README.md", vars, nv);
    set_add(&s, ".gitignore", "project/gitignore", vars, nv);
    plugin_spec p = {.name = INIT_PLUGIN, .schema = true};
    rc = plugin_files(cmd, &p, false, &s);
    if (rc == CLI_OK)
        rc = set_write(cmd, dir, &s, force);
    set_free(&s);
    if (rc != CLI_OK)
        return rc;
    bool c = cli_colour(stdout);
    if (here)
        printf("\n%sProject %s is ready.%s Next:\n\n", c ? "\033[1m" : "", name,
               c ? "\033[0m" : "");
    else
        printf("\n%sProject %s is ready.%s Next:\n\n  cd %s\n", c ? "\033[1m" : "", name,
               c ? "\033[0m" : "", dir);
    printf("  cmake -B build && cmake --build build\n"
           "  ./build/%s --port 3000\n"
           "  curl -s -XPOST localhost:3000/health.ping   # {\"ok\": true}\n"
           "  ctest --test-dir build\n\n"
           "Or `donkey dev -- --port 3000` to rebuild and restart on every change.\n",
           name);
    return CLI_OK;
}

/* ---- plugin new ---- */

int cli_cmd_plugin_new(int argc, char **argv)
{
    const char *cmd = "plugin new";
    plugin_spec p = {0};
    bool force = false, reg = false;
    const cli_opt opts[] = {
        {"--schema", CLI_OPT_FLAG, &p.schema},   {"--config", CLI_OPT_FLAG, &p.config},
        {"--deps", CLI_OPT_VALUE, &p.deps},      {"--handlers", CLI_OPT_FLAG, &p.handlers},
        {"--middleware", CLI_OPT_FLAG, &p.middleware}, {"--force", CLI_OPT_FLAG, &force},
        {"--register", CLI_OPT_FLAG, &reg},      {NULL, 0, NULL},
    };
    const char *pos[1];
    int npos = 0;
    int rc = cli_parse(cmd, argc, argv, opts, pos, 1, &npos, NULL);
    if (rc < 0)
        return cli_usage(cmd);
    if (rc != CLI_OK)
        return rc;
    if (npos == 0)
        return cli_error(CLI_USAGE, cmd, "missing plugin name (usage: donkey plugin new NAME)");
    p.name = pos[0];
    if (!cli_valid_name(p.name))
        return cli_error(CLI_USAGE, cmd,
                         "invalid plugin name '%s': use lowercase letters, digits and '_', "
                         "starting with a letter (at most 40)",
                         p.name);
    const char *why = reserved(p.name);
    if (why != NULL)
        return cli_error(CLI_USAGE, cmd, "plugin name '%s' is not allowed: %s; pick another name",
                         p.name, why);
    /* Arguments first (exit 2), then the project (exit 1). */
    char list[1024], fields[4096], lookup[4096];
    rc = deps_code(cmd, &p, list, sizeof(list), fields, sizeof(fields), lookup, sizeof(lookup));
    if (rc != CLI_OK)
        return rc;
    char root[PATH_MAX], project[128];
    if (cli_project_find(root, sizeof(root), project, sizeof(project)) != 0)
        return cli_error(CLI_FAIL, cmd, "not inside a donkey project (no src/plugins.def here or "
                         "above; create one with 'donkey init NAME')");
    rc = check_deps_exist(cmd, root, p.deps);
    if (rc != CLI_OK)
        return rc;

    file_set s = {0};
    rc = plugin_files(cmd, &p, true, &s);
    if (rc == CLI_OK)
        rc = set_write(cmd, root, &s, force);
    set_free(&s);
    if (rc == CLI_OK && !p.schema)
        rc = ensure_migration_dir(cmd, root, p.name);
    if (rc != CLI_OK)
        return rc;
    char line[256];
    if (p.config)
        snprintf(line, sizeof(line), "APP_PLUGIN(%s, \"{\\\"greeting\\\":\\\"Hello\\\"}\")",
                 p.name);
    else
        snprintf(line, sizeof(line), "APP_PLUGIN(%s, NULL)", p.name);
    bool c = cli_colour(stdout);
    if (reg) {
        rc = register_plugin(cmd, root, p.name, line);
        if (rc != CLI_OK)
            return rc;
        printf("\nRebuild (cmake --build build); its routes start with %s.\n", p.name);
        return CLI_OK;
    }
    printf("\nAdd this line to %s/src/plugins.def (or pass --register next time):\n\n    %s%s%s"
           "\n\nthen rebuild (cmake --build build); its routes start with %s.\n",
           root, c ? "\033[1m" : "", line, c ? "\033[0m" : "", p.name);
    return CLI_OK;
}

/* ---- migration new ---- */

static bool valid_migration_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 60)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

int cli_cmd_migration_new(int argc, char **argv)
{
    const char *cmd = "migration new";
    bool force = false;
    const cli_opt opts[] = {{"--force", CLI_OPT_FLAG, &force}, {NULL, 0, NULL}};
    const char *pos[2];
    int npos = 0;
    int rc = cli_parse(cmd, argc, argv, opts, pos, 2, &npos, NULL);
    if (rc < 0)
        return cli_usage(cmd);
    if (rc != CLI_OK)
        return rc;
    if (npos < 2)
        return cli_error(CLI_USAGE, cmd, "expected PLUGIN and NAME (usage: donkey migration new "
                         "PLUGIN NAME)");
    const char *plugin = pos[0], *name = pos[1];
    if (!cli_valid_name(plugin))
        return cli_error(CLI_USAGE, cmd, "invalid plugin name '%s'", plugin);
    if (!valid_migration_name(name))
        return cli_error(CLI_USAGE, cmd, "invalid migration name '%s': use lowercase letters, "
                         "digits and '_' (at most 60)", name);
    char root[PATH_MAX], project[128];
    if (cli_project_find(root, sizeof(root), project, sizeof(project)) != 0)
        return cli_error(CLI_FAIL, cmd, "not inside a donkey project (no src/plugins.def here or "
                         "above; create one with 'donkey init NAME')");
    char src[PATH_MAX * 2], dir[PATH_MAX * 2];
    snprintf(src, sizeof(src), "%s/src/plugins/%s.c", root, plugin);
    snprintf(dir, sizeof(dir), "%s/migrations/%s", root, plugin);
    if (!cli_exists(src) && !cli_exists(dir))
        return cli_error(CLI_FAIL, cmd, "no plugin '%s' (neither src/plugins/%s.c nor "
                         "migrations/%s/ exists)", plugin, plugin, plugin);

    /* Next number: one more than the largest NNN_ prefix in the directory. */
    long next = 1;
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            char *end;
            long n = strtol(e->d_name, &end, 10);
            if (end != e->d_name && *end == '_' && e->d_name[0] >= '0' && e->d_name[0] <= '9' &&
                n >= next)
                next = n + 1;
        }
        closedir(d);
    }
    if (next > 999)
        return cli_error(CLI_FAIL, cmd, "plugin '%s' already has migration 999", plugin);
    char number[24], rel[PATH_MAX], full[PATH_MAX * 3];
    snprintf(number, sizeof(number), "%03ld", next);
    snprintf(rel, sizeof(rel), "migrations/%s/%s_%s.sql", plugin, number, name);
    snprintf(full, sizeof(full), "%s/%s", root, rel);
    const cli_var vars[] = {{"plugin", plugin}, {"name", name}, {"number", number}};
    char *text = cli_render(cli_template("migration/migration.sql"), vars, 3);
    if (text == NULL)
        return cli_error(CLI_FAIL, cmd, "out of memory");
    rc = cli_write_file(cmd, full, text, force);
    free(text);
    if (rc != CLI_OK)
        return rc;
    cli_note("created", "%s", full);
    printf("\nWrite the SQL, then rebuild (cmake --build build): the migration is compiled in\n"
           "and runs at the next start, once per database.\n");
    return CLI_OK;
}
