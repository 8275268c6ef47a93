/* donkey CLI: `donkey dev`. Builds the project, runs it, and on every change
 * under src/, migrations/ or to CMakeLists.txt rebuilds; a successful build
 * restarts the application, a failed one leaves the last good build running.
 *
 * One poll loop over an inotify descriptor and a signalfd (SIGINT, SIGTERM,
 * SIGCHLD blocked and read as data), so no work happens in signal handlers.
 * Builds run as children while the loop keeps watching; changes that arrive
 * during a build trigger one more build when it ends. */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEBOUNCE_MS 250
#define STOP_GRACE_MS 5000
#define MAX_WATCHES 4096

typedef struct dev {
    char root[PATH_MAX];
    char build_dir[PATH_MAX * 2];
    char binary[PATH_MAX * 3];
    char **app_args; /* after "--" */
    int napp_args;
    int ifd, sfd;
    char *watch_path[MAX_WATCHES]; /* by watch descriptor */
    sigset_t mask;
    pid_t app, build;
    bool pending;      /* a change not yet built */
    long long due;     /* when to start that build */
    bool colour;
} dev;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void say(dev *d, const char *colour, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(dev *d, const char *colour, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s[donkey dev]%s ", d->colour ? colour : "", d->colour ? "\033[0m" : "");
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

#define GREEN "\033[32m"
#define RED "\033[31m"
#define YELLOW "\033[33m"

/* Watches `path` and, recursively, its subdirectories. */
static void watch_tree(dev *d, const char *path)
{
    int wd = inotify_add_watch(d->ifd, path,
                               IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM |
                                   IN_MOVED_TO | IN_ONLYDIR);
    if (wd < 0)
        return;
    if (wd < MAX_WATCHES) {
        free(d->watch_path[wd]);
        d->watch_path[wd] = strdup(path);
    }
    DIR *dir = opendir(path);
    if (dir == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char sub[PATH_MAX];
        if (snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) >= (int)sizeof(sub))
            continue;
        struct stat st;
        if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode))
            watch_tree(d, sub);
    }
    closedir(dir);
}

/* Editor droppings (swap files, backups, vim's 4913 probe) are not changes. */
static bool ignored(const char *name)
{
    size_t n = strlen(name);
    return name[0] == '.' || (n > 0 && name[n - 1] == '~') || strcmp(name, "4913") == 0 ||
           (n > 4 && (strcmp(name + n - 4, ".swp") == 0 || strcmp(name + n - 4, ".swx") == 0 ||
                      strcmp(name + n - 4, ".tmp") == 0));
}

/* Reads inotify events; returns true when one of them is a relevant change. */
static bool read_changes(dev *d)
{
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool changed = false;
    for (;;) {
        ssize_t n = read(d->ifd, buf, sizeof(buf));
        if (n <= 0)
            break;
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            p += sizeof(*ev) + ev->len;
            if (ev->len == 0 || ignored(ev->name))
                continue;
            const char *dir = ev->wd >= 0 && ev->wd < MAX_WATCHES ? d->watch_path[ev->wd] : NULL;
            if (dir == NULL)
                continue;
            /* At the top level only CMakeLists.txt counts. */
            if (strcmp(dir, d->root) == 0) {
                if (strcmp(ev->name, "CMakeLists.txt") == 0)
                    changed = true;
                continue;
            }
            if ((ev->mask & IN_ISDIR) && (ev->mask & (IN_CREATE | IN_MOVED_TO))) {
                char sub[PATH_MAX];
                if (snprintf(sub, sizeof(sub), "%s/%s", dir, ev->name) < (int)sizeof(sub))
                    watch_tree(d, sub);
            }
            changed = true;
        }
    }
    return changed;
}

static pid_t spawn(dev *d, char *const *argv)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        sigprocmask(SIG_UNBLOCK, &d->mask, NULL);
        execvp(argv[0], argv);
        fprintf(stderr, "donkey dev: error: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

/* Waits for `pid` up to `ms`; returns its wait status or -1 on timeout. */
static int wait_for(pid_t pid, int ms)
{
    long long until = now_ms() + ms;
    for (;;) {
        int ws;
        pid_t r = waitpid(pid, &ws, WNOHANG);
        if (r == pid)
            return ws;
        if (r < 0 && errno != EINTR)
            return 0;
        if (now_ms() >= until)
            return -1;
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
}

static void stop_child(pid_t *pid)
{
    if (*pid <= 0)
        return;
    kill(*pid, SIGTERM);
    if (wait_for(*pid, STOP_GRACE_MS) < 0) {
        kill(*pid, SIGKILL);
        wait_for(*pid, STOP_GRACE_MS);
    }
    *pid = -1;
}

static void start_app(dev *d)
{
    char **argv = calloc((size_t)d->napp_args + 2, sizeof(char *));
    if (argv == NULL)
        return;
    argv[0] = d->binary;
    for (int i = 0; i < d->napp_args; i++)
        argv[i + 1] = d->app_args[i];
    d->app = spawn(d, argv);
    free(argv);
    if (d->app > 0)
        say(d, GREEN, "started %s (pid %ld)", d->binary, (long)d->app);
}

static void start_build(dev *d)
{
    d->pending = false;
    say(d, YELLOW, "building...");
    char *argv[] = {"cmake", "--build", d->build_dir, NULL};
    d->build = spawn(d, argv);
}

/* A child ended: the build (restart on success) or the application. */
static void reap(dev *d)
{
    for (;;) {
        int ws;
        pid_t pid = waitpid(-1, &ws, WNOHANG);
        if (pid <= 0)
            return;
        int code = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
        if (pid == d->build) {
            d->build = -1;
            if (code == 0) {
                if (d->app > 0) {
                    say(d, GREEN, "build succeeded, restarting");
                    stop_child(&d->app);
                } else {
                    say(d, GREEN, "build succeeded");
                }
                start_app(d);
            } else {
                say(d, RED, "build failed%s; waiting for changes",
                    d->app > 0 ? ", the last good build keeps running" : "");
            }
        } else if (pid == d->app) {
            d->app = -1;
            say(d, RED, "the application exited (status %d); waiting for changes", code);
        }
    }
}

/* Configures the build directory when it has never been configured. */
static int configure(dev *d)
{
    char cache[PATH_MAX * 3];
    snprintf(cache, sizeof(cache), "%s/CMakeCache.txt", d->build_dir);
    if (cli_exists(cache))
        return CLI_OK;
    say(d, YELLOW, "configuring %s", d->build_dir);
    char *argv[] = {"cmake", "-S", d->root, "-B", d->build_dir, NULL};
    pid_t pid = spawn(d, argv);
    if (pid < 0)
        return cli_error(CLI_FAIL, "dev", "cannot run cmake: %s", strerror(errno));
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
        return cli_error(CLI_FAIL, "dev", "cmake could not configure %s", d->build_dir);
    return CLI_OK;
}

static int run(dev *d)
{
    int rc = configure(d);
    if (rc != CLI_OK)
        return rc;
    char path[PATH_MAX * 2];
    snprintf(path, sizeof(path), "%s/src", d->root);
    watch_tree(d, path);
    snprintf(path, sizeof(path), "%s/migrations", d->root);
    watch_tree(d, path);
    /* The project root, for CMakeLists.txt only (not recursively). */
    int wd = inotify_add_watch(d->ifd, d->root, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE);
    if (wd >= 0 && wd < MAX_WATCHES)
        d->watch_path[wd] = strdup(d->root);
    say(d, GREEN, "watching src/, migrations/ and CMakeLists.txt in %s (Ctrl-C stops)", d->root);
    start_build(d);

    for (;;) {
        int timeout = -1;
        if (d->pending && d->build < 0) {
            long long left = d->due - now_ms();
            timeout = left > 0 ? (int)left : 0;
        }
        struct pollfd fds[2] = {{.fd = d->ifd, .events = POLLIN}, {.fd = d->sfd, .events = POLLIN}};
        int n = poll(fds, 2, timeout);
        if (n < 0 && errno != EINTR)
            return cli_error(CLI_FAIL, "dev", "poll: %s", strerror(errno));
        if (n > 0 && (fds[1].revents & POLLIN)) {
            struct signalfd_siginfo si;
            bool quit = false;
            while (read(d->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                if (si.ssi_signo == SIGCHLD)
                    reap(d);
                else
                    quit = true;
            }
            if (quit) {
                say(d, YELLOW, "stopping");
                stop_child(&d->build);
                stop_child(&d->app);
                return CLI_OK;
            }
        }
        if (n > 0 && (fds[0].revents & POLLIN) && read_changes(d)) {
            d->pending = true;
            d->due = now_ms() + DEBOUNCE_MS;
        }
        if (d->pending && d->build < 0 && now_ms() >= d->due)
            start_build(d);
    }
}

int cli_cmd_dev(int argc, char **argv)
{
    const char *cmd = "dev";
    const char *build_dir = "build";
    const cli_opt opts[] = {{"--build-dir", CLI_OPT_VALUE, &build_dir}, {NULL, 0, NULL}};
    int npos = 0, rest = argc;
    int rc = cli_parse(cmd, argc, argv, opts, NULL, 0, &npos, &rest);
    if (rc < 0)
        return cli_usage(cmd);
    if (rc != CLI_OK)
        return rc;

    dev *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return cli_error(CLI_FAIL, cmd, "out of memory");
    d->app = d->build = -1;
    d->colour = cli_colour(stdout);
    d->app_args = argv + rest;
    d->napp_args = argc - rest;
    char name[128];
    if (cli_project_find(d->root, sizeof(d->root), name, sizeof(name)) != 0) {
        free(d);
        return cli_error(CLI_FAIL, cmd, "not inside a donkey project (no src/plugins.def here "
                         "or above)");
    }
    if (build_dir[0] == '/')
        snprintf(d->build_dir, sizeof(d->build_dir), "%s", build_dir);
    else
        snprintf(d->build_dir, sizeof(d->build_dir), "%s/%s", d->root, build_dir);
    snprintf(d->binary, sizeof(d->binary), "%s/%s", d->build_dir, name);

    sigemptyset(&d->mask);
    sigaddset(&d->mask, SIGINT);
    sigaddset(&d->mask, SIGTERM);
    sigaddset(&d->mask, SIGCHLD);
    sigset_t old;
    sigprocmask(SIG_BLOCK, &d->mask, &old);
    d->sfd = signalfd(-1, &d->mask, SFD_NONBLOCK | SFD_CLOEXEC);
    d->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (d->sfd < 0 || d->ifd < 0) {
        rc = cli_error(CLI_FAIL, cmd, "cannot watch files: %s", strerror(errno));
    } else {
        rc = run(d);
    }
    if (d->sfd >= 0)
        close(d->sfd);
    if (d->ifd >= 0)
        close(d->ifd);
    sigprocmask(SIG_SETMASK, &old, NULL);
    for (int i = 0; i < MAX_WATCHES; i++)
        free(d->watch_path[i]);
    free(d);
    return rc;
}
