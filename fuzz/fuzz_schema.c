/* JSON Schema: compile arbitrary schemas, validate arbitrary documents.
 * Input: schema JSON NUL document JSON. A document that passed validates
 * again to the same verdict (validation is read-only and deterministic). */
#include <donkey/donkey.h>

#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    char *f[2], *block;
    fz_split(data, size, f, 2, &block);
    if (block == NULL)
        return 0;
    json_error_t jerr;
    json_t *sj = json_loads(f[0], JSON_DECODE_ANY, &jerr);
    if (sj != NULL) {
        dk_err err = {0};
        dk_schema *s = dk_schema_compile(sj, &err);
        if (s == NULL && err.message[0] == '\0')
            abort();
        if (s != NULL) {
            json_t *doc = f[1][0] ? json_loads(f[1], JSON_DECODE_ANY, &jerr) : NULL;
            json_t *out = NULL, *issues = NULL;
            int rc = dk_schema_validate(s, doc, &out, &issues);
            if (rc == 0 && out == NULL)
                abort();
            if (rc == DK_EINVAL && !json_is_array(issues))
                abort();
            json_t *out2 = NULL, *issues2 = NULL;
            int rc2 = dk_schema_validate(s, doc, &out2, &issues2);
            if (rc2 != rc)
                abort();
            if (rc == 0 && !json_equal(out, out2))
                abort();
            json_decref(out);
            json_decref(out2);
            json_decref(issues);
            json_decref(issues2);
            json_decref(doc);
            dk_schema_free(s);
        }
        json_decref(sj);
    }
    free(block);
    return 0;
}
