/* dk_duration_parse on arbitrary text: no crash, no overflow wrapped into a
 * small value silently accepted beyond what the text says. */
#include <donkey/donkey.h>

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    uint64_t ms = 0;
    dk_err err = {0};
    int rc = dk_duration_parse(s, &ms, &err);
    if (rc != 0 && rc != DK_EINVAL)
        abort();
    if (rc == DK_EINVAL && err.message[0] == '\0')
        abort(); /* a refusal always says why */
    free(s);
    return 0;
}
