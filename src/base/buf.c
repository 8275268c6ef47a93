/* The growable byte buffer (dk__buf, src/base/internal.h). Depends on libc
 * and the allocation wrapper only, so the command-line tool (cli/) compiles it
 * too instead of keeping its own. */
#include "donkey/common.h"
#include "base/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int dk__buf_append(dk__buf *b, const void *data, size_t len)
{
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len + 1)
            cap *= 2;
        char *n = dk__realloc(b->data, cap);
        if (n == NULL)
            return DK_ENOMEM;
        b->data = n;
        b->cap = cap;
    }
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int dk__buf_appends(dk__buf *b, const char *s) { return dk__buf_append(b, s, strlen(s)); }

int dk__buf_vappendf(dk__buf *b, const char *fmt, va_list ap)
{
    char tmp[512];
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    if (n < 0 || (size_t)n < sizeof(tmp)) {
        va_end(again);
        return n < 0 ? DK_EINVAL : dk__buf_append(b, tmp, (size_t)n);
    }
    char *big = dk__malloc((size_t)n + 1);
    if (big == NULL) {
        va_end(again);
        return DK_ENOMEM;
    }
    vsnprintf(big, (size_t)n + 1, fmt, again);
    va_end(again);
    int rc = dk__buf_append(b, big, (size_t)n);
    dk__free(big);
    return rc;
}

int dk__buf_appendf(dk__buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = dk__buf_vappendf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void dk__buf_free(dk__buf *b)
{
    dk__free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
