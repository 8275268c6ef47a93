/* dk_sse_format with arbitrary ids, event names and data. Input: id NUL
 * event NUL data (data may hold further NULs? no: the rest after the second
 * NUL, including NULs, is the payload). Checks the frame parses back: one
 * id/event line without CR/LF, data lines that rebuild the payload with
 * line endings normalised to LF. */
#include <donkey/donkey.h>

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *dup_n(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *z1 = memchr(data, 0, size);
    if (z1 == NULL)
        return 0;
    const uint8_t *rest = z1 + 1;
    size_t rlen = size - (size_t)(rest - data);
    const uint8_t *z2 = memchr(rest, 0, rlen);
    if (z2 == NULL)
        return 0;
    char *id = dup_n(data, (size_t)(z1 - data));
    char *ev = dup_n(rest, (size_t)(z2 - rest));
    const char *payload = (const char *)z2 + 1;
    size_t plen = size - (size_t)(z2 + 1 - data);
    /* An empty event name means "use the default" for this target. */
    const char *event = ev && ev[0] ? ev : NULL;
    dk_buf *b = NULL;
    int rc = dk_sse_format(id, event, payload, plen, &b);
    bool bad = (id && strpbrk(id, "\r\n")) || (event && strpbrk(event, "\r\n"));
    if (bad != (rc == DK_EINVAL))
        abort();
    if (rc == 0) {
        size_t len;
        const char *f = dk_buf_data(b, &len);
        if (len < 2 || f[len - 1] != '\n' || f[len - 2] != '\n')
            abort();
        /* Rebuild the payload from the data lines. */
        char *want = malloc(plen + 1), *got = malloc(len + 1);
        size_t wn = 0, gn = 0;
        for (size_t i = 0; i < plen; i++) {
            if (payload[i] == '\r') {
                want[wn++] = '\n';
                if (i + 1 < plen && payload[i + 1] == '\n')
                    i++;
            } else {
                want[wn++] = payload[i];
            }
        }
        size_t pos = 0;
        int datalines = 0;
        while (pos < len - 1) {
            const char *nl = memchr(f + pos, '\n', len - 1 - pos);
            if (nl == NULL)
                abort();
            size_t ll = (size_t)(nl - (f + pos));
            if (memchr(f + pos, '\r', ll) != NULL)
                abort();
            if (ll >= 6 && memcmp(f + pos, "data: ", 6) == 0) {
                if (datalines++)
                    got[gn++] = '\n';
                memcpy(got + gn, f + pos + 6, ll - 6);
                gn += ll - 6;
            } else if (!(ll >= 4 && memcmp(f + pos, "id: ", 4) == 0) &&
                       !(ll >= 7 && memcmp(f + pos, "event: ", 7) == 0)) {
                abort();
            }
            pos += ll + 1;
        }
        if (datalines == 0 || gn != wn || memcmp(got, want, wn) != 0)
            abort();
        free(want);
        free(got);
        dk_buf_unref(b);
    }
    free(id);
    free(ev);
    return 0;
}
