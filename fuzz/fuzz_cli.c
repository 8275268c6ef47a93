/* The `donkey` command's argument parsing: dk_cli_main() with arbitrary argv
 * (fields separated by NUL bytes, at most 12), run in a private temporary
 * directory that is emptied after every input. Commands that start other
 * programs (dev, routes, generate) are only fuzzed up to their --help answer
 * so the fuzzer never executes a name it made up. */
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char dir[64];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    if (ftw->level > 0)
        remove(path);
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    strcpy(dir, "/tmp/dk-fuzz-cli-XXXXXX");
    if (mkdtemp(dir) == NULL || chdir(dir) != 0)
        abort();
    unsetenv("DONKEY_PREFIX");
    return 0;
}

static bool starts_programs(const char *cmd)
{
    return strcmp(cmd, "dev") == 0 || strcmp(cmd, "routes") == 0 || strcmp(cmd, "generate") == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *f[12], *block;
    size_t n = fz_split(data, size, f, 12, &block);
    if (block == NULL)
        return 0;
    char *argv[14];
    argv[0] = "donkey";
    for (size_t i = 0; i < n; i++)
        argv[i + 1] = f[i];
    argv[n + 1] = NULL;
    int argc = (int)n + 1;
    bool run = true;
    if (argc >= 2 && starts_programs(argv[1])) {
        /* Only when --help comes before anything that could run a program. */
        run = false;
        for (int i = 2; i < argc; i++) {
            if (strcmp(argv[i], "--") == 0)
                break;
            if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
                run = true;
                break;
            }
        }
        /* "--server" with a value swallows the next word: keep it simple. */
        for (int i = 2; run && i < argc; i++)
            if (strncmp(argv[i], "--server", 8) == 0 || strncmp(argv[i], "--build-dir", 11) == 0)
                run = false;
    }
    if (run) {
        int rc = dk_cli_main(argc, argv);
        if (rc < 0 || rc > 3)
            abort();
        fflush(stdout);
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    }
    free(block);
    return 0;
}
