/* ECMAScript-flavoured `pattern` for PCRE2. JSON Schema says patterns are
 * ECMA-262 regular expressions (Ajv compiles them with the `u` flag); PCRE2 in
 * UTF mode already agrees on most of the syntax and on ASCII-only `\d`, `\w`
 * and `\b`. Three things are rewritten before pcre2_compile():
 *
 * - `\s` / `\S`: ECMAScript white space is Unicode (NBSP, U+FEFF, every Zs
 *   space, U+2028/2029). PCRE2_UCP would give that, but would also make `\d`
 *   and `\w` match non-ASCII digits and letters, which ECMAScript does not.
 *   Inside a character class `\S` stays PCRE2's (ASCII) one: PCRE2 10.42 has
 *   no way to negate a set within a class.
 * - `\p{Letter}`, `\p{General_Category=Letter}`, `\p{gc=L}`: PCRE2 10.42 only
 *   knows the short general-category names; `\p{Script=Greek}`, `\p{sc=Grek}`
 *   and `\p{scx=Greek}` become PCRE2's `sc:` / `scx:` forms.
 * - `\uXXXX` (a surrogate pair becomes one code point) and `\u{X...}`
 *   become `\x{...}`. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/internal.h"
#include "rpc/schema_internal.h"

#define ECMA_SPACE "\\t\\n\\x0b\\f\\r\\p{Zs}\\x{2028}\\x{2029}\\x{feff}"

static const char *const gc_names[][2] = {
    {"Other", "C"},
    {"Control", "Cc"},
    {"Format", "Cf"},
    {"Unassigned", "Cn"},
    {"Private_Use", "Co"},
    {"Surrogate", "Cs"},
    {"Letter", "L"},
    {"Cased_Letter", "LC"},
    {"Lowercase_Letter", "Ll"},
    {"Modifier_Letter", "Lm"},
    {"Other_Letter", "Lo"},
    {"Titlecase_Letter", "Lt"},
    {"Uppercase_Letter", "Lu"},
    {"Mark", "M"},
    {"Combining_Mark", "M"},
    {"Spacing_Mark", "Mc"},
    {"Enclosing_Mark", "Me"},
    {"Nonspacing_Mark", "Mn"},
    {"Number", "N"},
    {"Decimal_Number", "Nd"},
    {"digit", "Nd"},
    {"Letter_Number", "Nl"},
    {"Other_Number", "No"},
    {"Punctuation", "P"},
    {"punct", "P"},
    {"Connector_Punctuation", "Pc"},
    {"Dash_Punctuation", "Pd"},
    {"Close_Punctuation", "Pe"},
    {"Final_Punctuation", "Pf"},
    {"Initial_Punctuation", "Pi"},
    {"Other_Punctuation", "Po"},
    {"Open_Punctuation", "Ps"},
    {"Symbol", "S"},
    {"Currency_Symbol", "Sc"},
    {"Modifier_Symbol", "Sk"},
    {"Math_Symbol", "Sm"},
    {"Other_Symbol", "So"},
    {"Separator", "Z"},
    {"Line_Separator", "Zl"},
    {"Paragraph_Separator", "Zp"},
    {"Space_Separator", "Zs"},
};

static bool name_is(const char *s, size_t n, const char *name)
{
    return strlen(name) == n && strncmp(s, name, n) == 0;
}

static const char *gc_short(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof(gc_names) / sizeof(gc_names[0]); i++)
        if (name_is(s, n, gc_names[i][0]))
            return gc_names[i][1];
    return NULL;
}

/* Appends the PCRE2 spelling of the property `s` (n bytes, between braces). */
static int property(dk__buf *b, const char *s, size_t n)
{
    const char *eq = memchr(s, '=', n);
    if (eq == NULL) {
        const char *gc = gc_short(s, n);
        return gc ? dk__buf_appends(b, gc) : dk__buf_append(b, s, n);
    }
    size_t kl = (size_t)(eq - s), vl = n - kl - 1;
    const char *v = eq + 1;
    if (name_is(s, kl, "General_Category") || name_is(s, kl, "gc")) {
        const char *gc = gc_short(v, vl);
        return gc ? dk__buf_appends(b, gc) : dk__buf_append(b, v, vl);
    }
    const char *key = name_is(s, kl, "Script") || name_is(s, kl, "sc")                ? "sc:"
                      : name_is(s, kl, "Script_Extensions") || name_is(s, kl, "scx") ? "scx:"
                                                                                      : NULL;
    if (key == NULL) /* let PCRE2 refuse or accept it */
        return dk__buf_append(b, s, n);
    int rc = dk__buf_appends(b, key);
    return rc < 0 ? rc : dk__buf_append(b, v, vl);
}

static int hex4(const char *s, size_t avail, unsigned *out)
{
    if (avail < 4)
        return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + (unsigned)d;
    }
    *out = v;
    return 0;
}

char *dk__schema_regex(const char *src, size_t len, size_t *out_len)
{
    dk__buf b = {0};
    bool in_class = false;
    int rc = 0;
    for (size_t i = 0; i < len && rc == 0; i++) {
        char c = src[i];
        if (c != '\\' || i + 1 == len) {
            if (c == '[' && !in_class) {
                in_class = true;
            } else if (c == ']' && in_class) {
                in_class = false;
            }
            rc = dk__buf_append(&b, &c, 1);
            continue;
        }
        char e = src[++i];
        unsigned cp, lo;
        if (e == 's') {
            rc = dk__buf_appends(&b, in_class ? ECMA_SPACE : "[" ECMA_SPACE "]");
        } else if (e == 'S' && !in_class) {
            rc = dk__buf_appends(&b, "[^" ECMA_SPACE "]");
        } else if ((e == 'p' || e == 'P') && i + 1 < len && src[i + 1] == '{' &&
                   memchr(src + i + 2, '}', len - i - 2) != NULL) {
            const char *name = src + i + 2;
            size_t n = (size_t)((const char *)memchr(name, '}', len - i - 2) - name);
            rc = dk__buf_appendf(&b, "\\%c{", e);
            if (rc == 0)
                rc = property(&b, name, n);
            if (rc == 0)
                rc = dk__buf_appends(&b, "}");
            i += n + 2;
        } else if (e == 'u' && i + 1 < len && src[i + 1] == '{') {
            rc = dk__buf_appends(&b, "\\x"); /* \u{1F600} -> \x{1F600} */
        } else if (e == 'u' && hex4(src + i + 1, len - i - 1, &cp) == 0) {
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 < len && src[i + 1] == '\\' &&
                src[i + 2] == 'u' && hex4(src + i + 3, len - i - 3, &lo) == 0 && lo >= 0xDC00 &&
                lo <= 0xDFFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            }
            rc = dk__buf_appendf(&b, "\\x{%x}", cp);
        } else {
            char pair[2] = {'\\', e};
            rc = dk__buf_append(&b, pair, 2);
        }
    }
    if (rc == 0)
        rc = dk__buf_append(&b, "", 1); /* NUL, not counted */
    if (rc != 0) {
        dk__buf_free(&b);
        return NULL;
    }
    *out_len = b.len - 1;
    return b.data;
}
