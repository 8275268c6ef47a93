/* startup_probe: start-up time to the first answered request, and idle RSS.
 *
 *   startup_probe PORT IDLE_MS -- COMMAND [ARGS...]
 *
 * Starts COMMAND, then tries every 200 us to connect to 127.0.0.1:PORT and
 * POST /conf.echo {"name":"probe"}; stops the clock at the first complete
 * "HTTP/1.1 200" answer. Then waits IDLE_MS, reads the server's VmRSS, sends
 * SIGTERM and reaps it. Prints "STARTUP ms=<ms> idle_rss_kb=<kB>". */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static long rss_kb(int pid)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

static int try_once(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
        static const char req[] = "POST /conf.echo HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                  "Content-Type: application/json\r\nContent-Length: 16\r\n"
                                  "Connection: close\r\n\r\n{\"name\":\"probe\"}";
        char buf[256];
        if (write(fd, req, sizeof(req) - 1) == (ssize_t)sizeof(req) - 1) {
            ssize_t n = read(fd, buf, sizeof(buf) - 1);
            ok = n >= 12 && memcmp(buf, "HTTP/1.1 200", 12) == 0;
        }
    }
    close(fd);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc < 5 || strcmp(argv[3], "--") != 0) {
        fprintf(stderr, "usage: startup_probe PORT IDLE_MS -- COMMAND [ARGS...]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    int idle_ms = atoi(argv[2]);
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid == 0) {
        execvp(argv[4], argv + 4);
        _exit(127);
    }
    double t1 = -1;
    while (now_ms() - t0 < 10000) {
        if (try_once(port)) {
            t1 = now_ms();
            break;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            fprintf(stderr, "startup_probe: server exited\n");
            return 1;
        }
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
    if (t1 < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fprintf(stderr, "startup_probe: no answer within 10 s\n");
        return 1;
    }
    struct timespec ts = {idle_ms / 1000, (long)(idle_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    long rss = rss_kb(pid);
    kill(pid, SIGTERM);
    int st;
    double k0 = now_ms();
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (now_ms() - k0 > 5000) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            break;
        }
        struct timespec s = {0, 1000000};
        nanosleep(&s, NULL);
    }
    printf("STARTUP ms=%.2f idle_rss_kb=%ld\n", t1 - t0, rss);
    return 0;
}
