/* Cron expressions: parse arbitrary text (both day rules), compute the next
 * run after an arbitrary instant in one of a few zones. The next run must be
 * strictly later; parsing the same text twice gives the same answer. Input:
 * 1 byte flags/zone, 8 bytes instant, then the expression. */
#include <donkey/donkey.h>

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const zones[] = {NULL, "UTC", "America/New_York", "Europe/Berlin",
                                    "Australia/Lord_Howe", "Asia/Kathmandu", "Pacific/Apia",
                                    "No/Such_Zone"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 9 || size > 512)
        return 0;
    unsigned flags = data[0] & 1 ? DK_CRON_DOM_AND_DOW : 0;
    const char *tz = zones[(data[0] >> 1) & 7];
    int64_t after = 0;
    memcpy(&after, data + 1, 8);
    /* Mostly realistic instants (1970..2100), sometimes anything. */
    if (!(data[0] & 0x80)) {
        after = (int64_t)((uint64_t)after % 4102444800000ull);
    }
    char *text = malloc(size - 9 + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data + 9, size - 9);
    text[size - 9] = '\0';
    dk_cron_expr *e = NULL;
    dk_err err = {0};
    int rc = dk_cron_expr_parse(text, flags, &e, &err);
    if (rc == 0) {
        int64_t next = 0;
        int nrc = dk_cron_expr_next(e, tz, after, &next, &err);
        if (nrc == 0 && next <= after)
            abort();
        int64_t next2 = 0;
        int nrc2 = dk_cron_next(text, tz, after, &next2, NULL);
        if (flags == 0 && (nrc2 != nrc || (nrc == 0 && next2 != next)))
            abort();
        dk_cron_expr_free(e);
    } else if (rc != DK_EINVAL || e != NULL || err.message[0] == '\0') {
        abort();
    }
    free(text);
    return 0;
}
