/* donkey CLI: a small template renderer for the scaffolds. {{key}} inserts a
 * value; {{#key}}..{{/key}} and {{^key}}..{{/key}} keep their content when
 * key is true / false. A section tag alone on its line takes the line with it,
 * so templates can put tags on lines of their own without leaving blanks. */
#include "cli.h"
#include "base/internal.h"

#include <stdlib.h>
#include <string.h>

/* dk__buf (src/base/buf.c) with a sticky failure flag, checked once at the end. */
typedef struct buf {
    dk__buf b;
    bool oom;
} buf;

static void buf_add(buf *b, const char *s, size_t n)
{
    if (!b->oom && dk__buf_append(&b->b, s, n) < 0)
        b->oom = true;
}

static const char *lookup(const cli_var *vars, size_t n, const char *key, size_t keylen)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(vars[i].key) == keylen && strncmp(vars[i].key, key, keylen) == 0)
            return vars[i].value;
    return NULL;
}

static bool truthy(const char *v)
{
    return v != NULL && *v != '\0' && strcmp(v, "0") != 0;
}

static bool is_ident(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '_'))
            return false;
    return true;
}

/* Where a section tag starting at `tag` and ending before `after` should cut
 * when it is alone on its line: [*from, *to) covers the whole line. */
static bool standalone(const char *start, const char *tag, const char *after, const char **from,
                       const char **to)
{
    const char *l = tag;
    while (l > start && (l[-1] == ' ' || l[-1] == '\t'))
        l--;
    if (l != start && l[-1] != '\n')
        return false;
    const char *r = after;
    while (*r == ' ' || *r == '\t')
        r++;
    if (*r == '\n')
        r++;
    else if (*r != '\0')
        return false;
    *from = l;
    *to = r;
    return true;
}

/* Renders from *pp until {{/name}} (or the end when name is NULL). Returns
 * false on an unbalanced section. */
static bool render(const char *start, const char **pp, const char *name, size_t namelen,
                   bool emit, const cli_var *vars, size_t nvars, buf *out)
{
    const char *p = *pp;
    for (;;) {
        const char *tag = strstr(p, "{{");
        if (tag == NULL) {
            if (name != NULL)
                return false;
            if (emit)
                buf_add(out, p, strlen(p));
            *pp = p + strlen(p);
            return true;
        }
        const char *end = strstr(tag + 2, "}}");
        if (end == NULL)
            return false;
        char kind = tag[2];
        bool section = kind == '#' || kind == '^' || kind == '/';
        const char *key = section ? tag + 3 : tag + 2;
        size_t keylen = (size_t)(end - key);
        if (!is_ident(key, keylen)) {
            /* Not a tag: C initialisers such as {{0}} are plain text. */
            if (emit)
                buf_add(out, p, (size_t)(tag + 2 - p));
            p = tag + 2;
            continue;
        }
        const char *from = tag, *to = end + 2;
        if (section)
            standalone(start, tag, end + 2, &from, &to);
        if (emit)
            buf_add(out, p, (size_t)(from - p));
        p = to;
        if (kind == '/') {
            if (name == NULL || keylen != namelen || strncmp(key, name, namelen) != 0)
                return false;
            *pp = p;
            return true;
        }
        if (kind == '#' || kind == '^') {
            bool on = truthy(lookup(vars, nvars, key, keylen));
            if (kind == '^')
                on = !on;
            if (!render(start, &p, key, keylen, emit && on, vars, nvars, out))
                return false;
            continue;
        }
        if (emit) {
            const char *v = lookup(vars, nvars, key, keylen);
            if (v != NULL)
                buf_add(out, v, strlen(v));
        }
    }
}

char *cli_render(const char *tmpl, const cli_var *vars, size_t nvars)
{
    buf out = {0};
    const char *p = tmpl;
    buf_add(&out, "", 0);
    if (!render(tmpl, &p, NULL, 0, true, vars, nvars, &out) || out.oom) {
        dk__buf_free(&out.b);
        return NULL;
    }
    return out.b.data;
}
