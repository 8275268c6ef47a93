/* dk_glob_match against a small reference matcher (memoised recursion):
 * both must agree on every pattern/text pair. Input: pattern NUL text. */
#include <donkey/donkey.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool ref(const char *p, size_t pi, size_t pn, const char *t, size_t ti, size_t tn,
                signed char *memo)
{
    signed char *m = &memo[pi * (tn + 1) + ti];
    if (*m >= 0)
        return *m;
    bool r;
    if (pi == pn)
        r = ti == tn;
    else if (p[pi] == '*')
        r = ref(p, pi + 1, pn, t, ti, tn, memo) || (ti < tn && ref(p, pi, pn, t, ti + 1, tn, memo));
    else if (ti < tn && (p[pi] == '?' || p[pi] == t[ti]))
        r = ref(p, pi + 1, pn, t, ti + 1, tn, memo);
    else
        r = false;
    *m = r;
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *f[2], *block;
    fz_split(data, size, f, 2, &block);
    if (block == NULL)
        return 0;
    size_t pn = strlen(f[0]), tn = strlen(f[1]);
    signed char *memo = malloc((pn + 1) * (tn + 1));
    if (memo != NULL) {
        memset(memo, -1, (pn + 1) * (tn + 1));
        bool want = ref(f[0], 0, pn, f[1], 0, tn, memo);
        if (dk_glob_match(f[0], f[1]) != want)
            abort();
        free(memo);
    }
    free(block);
    return 0;
}
