/* Helpers shared by the libFuzzer targets: split an input into fields. */
#ifndef DK_FUZZ_UTIL_H
#define DK_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Splits `data` at NUL bytes into at most `max` fields, each a new
 * NUL-terminated string in one allocation (*block, caller frees). Returns the
 * field count; missing fields are "". */
static inline size_t fz_split(const uint8_t *data, size_t size, char **fields, size_t max,
                              char **block)
{
    char *b = malloc(size + max + 1);
    *block = b;
    if (b == NULL)
        return 0;
    memcpy(b, data, size);
    b[size] = '\0';
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= size && n < max; i++) {
        if (i == size || b[i] == '\0') {
            b[i] = '\0';
            fields[n++] = b + start;
            start = i + 1;
        }
    }
    size_t got = n;
    char *empty = b + size + 1;
    for (size_t k = 0; k < max; k++)
        empty[k] = '\0';
    for (; n < max; n++)
        fields[n] = empty;
    return got;
}

#endif
