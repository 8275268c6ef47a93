/* Validation against a compiled schema tree. Reads only the tree, so any
 * number of threads may validate with one schema at the same time. */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rpc/schema_internal.h"

/* A step of the current path, kept on the C stack: building it costs nothing
 * until an issue needs it. `key` NULL means an array index. */
typedef struct seg {
    const struct seg *up;
    const char *key;
    size_t klen;
    size_t index;
} seg;

typedef struct vctx {
    const dk_schema *s;
    json_t *issues; /* created on the first issue */
    bool oom;
    /* The issue cap: `count` issues recorded so far (union branches
     * included); once one more is refused, `stop` unwinds the walk, so a
     * body of a million bad elements costs as much as `max` of them. */
    size_t max, count;
    bool stop, truncated;
    bool forbid_nul;
    pcre2_match_data *md;
} vctx;

/* Longest object key kept in an issue's path: paths stay small even when an
 * input key is huge (the error body is bounded, see dk_error_validation). */
#define PATH_KEY_MAX 128
/* Unknown keys listed in one unrecognized_keys issue. */
#define UNKNOWN_KEYS_MAX 20

#define SAFE_INT_MAX INT64_C(9007199254740991) /* 2^53 - 1 */

/* ---- match data: one per thread, reused by every validation ---- */

static pthread_key_t md_key;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static bool md_key_ok;

static void md_destroy(void *md)
{
    pcre2_match_data_free(md);
}

static void md_key_init(void)
{
    md_key_ok = pthread_key_create(&md_key, md_destroy) == 0;
}

static pcre2_match_data *thread_match_data(void)
{
    pthread_once(&md_once, md_key_init);
    if (!md_key_ok)
        return NULL;
    pcre2_match_data *md = pthread_getspecific(md_key);
    if (md == NULL) {
        /* One pair suffices: only "does it match" matters. */
        md = pcre2_match_data_create(1, NULL);
        if (md != NULL && pthread_setspecific(md_key, md) != 0) {
            pcre2_match_data_free(md);
            md = NULL;
        }
    }
    return md;
}

/* ---- issues ---- */

/* Cuts a truncated message back to a whole UTF-8 sequence so json_string() accepts it. */
static size_t utf8_trim(const char *buf, size_t len)
{
    size_t i = len;
    while (i > 0 && ((unsigned char)buf[i - 1] & 0xC0) == 0x80)
        i--;
    if (i == 0)
        return len;
    unsigned char lead = (unsigned char)buf[i - 1];
    size_t need = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    return len - (i - 1) < need ? i - 1 : len;
}

static bool append_path(json_t *arr, const seg *s)
{
    if (s == NULL)
        return true;
    if (!append_path(arr, s->up))
        return false;
    json_t *step;
    if (s->key != NULL)
        step = json_stringn(s->key, s->klen <= PATH_KEY_MAX ? s->klen
                                                            : utf8_trim(s->key, PATH_KEY_MAX));
    else
        step = json_integer((json_int_t)s->index);
    return json_array_append_new(arr, step) == 0;
}

/* Appends {"path", "message", "code"} and returns it (borrowed) for extra
 * fields; NULL when out of memory. */
static json_t *issue(vctx *c, const seg *at, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static json_t *issue(vctx *c, const seg *at, const char *code, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n >= sizeof(msg) ? utf8_trim(msg, sizeof(msg) - 1) : (size_t)n;

    if (c->count >= c->max) {
        c->stop = c->truncated = true;
        return NULL;
    }
    c->count++;
    if (c->issues == NULL && (c->issues = json_array()) == NULL)
        goto oom;
    json_t *path = json_array(), *it = json_object();
    if (path == NULL || it == NULL || !append_path(path, at)) {
        json_decref(path);
        json_decref(it);
        goto oom;
    }
    /* json_object_set_new and json_array_append_new take the value also
     * when they fail. */
    if (json_object_set_new(it, "path", path) != 0 ||
        json_object_set_new(it, "message", json_stringn(msg, len)) != 0 ||
        json_object_set_new(it, "code", json_string(code)) != 0) {
        json_decref(it);
        goto oom;
    }
    if (json_array_append_new(c->issues, it) != 0)
        goto oom;
    return it;
oom:
    c->oom = true;
    return NULL;
}

/* Adds a field to an issue; tolerates a NULL issue (out of memory) and steals `v`. */
static void put(vctx *c, json_t *it, const char *key, json_t *v)
{
    if (it == NULL) {
        json_decref(v);
        return;
    }
    if (v == NULL || json_object_set_new(it, key, v) != 0)
        c->oom = true;
}

static json_t *num_json(const dk__snum *n)
{
    return n->is_int ? json_integer(n->i) : json_real(n->d);
}

/* Shortest text that reads back as the same double, for messages. */
static const char *num_text(const dk__snum *n, char *buf, size_t len)
{
    if (n->is_int) {
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, n->i);
        return buf;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, n->d);
        if (strtod(buf, NULL) == n->d)
            break;
    }
    return buf;
}

static unsigned value_type(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return DK__T_OBJ;
    case JSON_ARRAY:
        return DK__T_ARR;
    case JSON_STRING:
        return DK__T_STR;
    case JSON_INTEGER:
    case JSON_REAL:
        return DK__T_NUM;
    case JSON_TRUE:
    case JSON_FALSE:
        return DK__T_BOOL;
    case JSON_NULL:
        break;
    }
    return DK__T_NULL;
}

static const char *type_name(unsigned t)
{
    switch (t) {
    case DK__T_OBJ:
        return "object";
    case DK__T_ARR:
        return "array";
    case DK__T_STR:
        return "string";
    case DK__T_NUM:
        return "number";
    case DK__T_BOOL:
        return "boolean";
    default:
        return "null";
    }
}

static void size_issue(vctx *c, const seg *at, bool small, const char *origin, size_t limit,
                       const char *what)
{
    json_t *it = issue(c, at, small ? "too_small" : "too_big", "%c%s must contain at %s %zu %s",
                       origin[0] - 'a' + 'A', origin + 1, small ? "least" : "most", limit, what);
    put(c, it, small ? "minimum" : "maximum", json_integer((json_int_t)limit));
    put(c, it, "origin", json_string(origin));
    put(c, it, "inclusive", json_true());
}

/* ---- equality (JSON Schema: numbers compare by value) ---- */

bool dk__json_equal(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b)) {
        if (json_is_integer(a) && json_is_integer(b))
            return json_integer_value(a) == json_integer_value(b);
        return json_number_value(a) == json_number_value(b);
    }
    if (json_typeof(a) != json_typeof(b))
        return false;
    if (json_is_array(a)) {
        size_t n = json_array_size(a);
        if (n != json_array_size(b))
            return false;
        for (size_t i = 0; i < n; i++)
            if (!dk__json_equal(json_array_get(a, i), json_array_get(b, i)))
                return false;
        return true;
    }
    if (json_is_object(a)) {
        const char *key;
        size_t klen;
        json_t *av;
        if (json_object_size(a) != json_object_size(b))
            return false;
        json_object_keylen_foreach((json_t *)a, key, klen, av) {
            json_t *bv = json_object_getn(b, key, klen);
            if (bv == NULL || !dk__json_equal(av, bv))
                return false;
        }
        return true;
    }
    return json_equal(a, b);
}

/* ---- keyword groups ---- */

static json_t *check(vctx *c, const dk__snode *n, const json_t *v, const seg *at);

static bool check_string(vctx *c, const dk__snode *n, const json_t *v, const seg *at)
{
    const char *str = json_string_value(v);
    size_t len = json_string_length(v);
    bool ok = true;
    if (c->forbid_nul && memchr(str, '\0', len) != NULL) {
        json_t *it = issue(c, at, "invalid_string", "String must not contain NUL (U+0000)");
        put(c, it, "validation", json_string("no_nul"));
        ok = false;
    }
    if (n->flags & DK__F_STRING) {
        size_t cp = dk__utf8_len(str, len);
        if ((n->flags & DK__F_MINLEN) && cp < n->min_len) {
            size_issue(c, at, true, "string", n->min_len, "character(s)");
            ok = false;
        }
        if ((n->flags & DK__F_MAXLEN) && cp > n->max_len) {
            size_issue(c, at, false, "string", n->max_len, "character(s)");
            ok = false;
        }
    }
    if (n->re != NULL) {
        if (c->md == NULL)
            c->md = thread_match_data();
        int rc = c->md ? pcre2_match(n->re, (PCRE2_SPTR)str, len, 0, 0, c->md, c->s->mctx)
                       : PCRE2_ERROR_NOMEMORY;
        if (rc == PCRE2_ERROR_NOMEMORY) {
            c->oom = true;
            return false;
        }
        if (rc < 0) { /* no match, or a match limit hit: refuse either way */
            json_t *it = issue(c, at, "invalid_format", "String must match pattern %s", n->re_src);
            put(c, it, "format", json_string("regex"));
            put(c, it, "pattern", json_string(n->re_src));
            ok = false;
        }
    }
    if (n->format != DK__FMT_NONE && !dk__fmt_check(n->format, str, len)) {
        json_t *it = issue(c, at, "invalid_format", "Invalid %s", n->format_name);
        put(c, it, "format", json_string(n->format_name));
        ok = false;
    }
    return ok;
}

static int num_cmp(const json_t *v, const dk__snum *b)
{
    if (json_is_integer(v) && b->is_int) {
        json_int_t a = json_integer_value(v);
        return (a > b->i) - (a < b->i);
    }
    double a = json_number_value(v);
    return (a > b->d) - (a < b->d);
}

static bool is_multiple(const json_t *v, const dk__snum *m)
{
    if (json_is_integer(v) && m->is_int)
        return json_integer_value(v) % m->i == 0; /* m > 0, checked at compile time */
    double q = json_number_value(v) / m->d;
    if (!isfinite(q))
        return false;
    /* Decimal steps such as 0.1 are inexact in binary; allow rounding noise
     * proportional to the quotient, far below any real fraction. */
    return fabs(q - nearbyint(q)) <= 1e-12 * fmax(1.0, fabs(q));
}

static void bound_issue(vctx *c, const seg *at, bool small, const dk__snum *b, bool inclusive)
{
    char buf[40];
    json_t *it = issue(c, at, small ? "too_small" : "too_big", "Number must be %s %s%s",
                       small ? "greater than" : "less than", inclusive ? "or equal to " : "",
                       num_text(b, buf, sizeof(buf)));
    put(c, it, small ? "minimum" : "maximum", num_json(b));
    put(c, it, "origin", json_string("number"));
    put(c, it, "inclusive", json_boolean(inclusive));
}

static bool check_number(vctx *c, const dk__snode *n, const json_t *v, const seg *at)
{
    bool ok = true;
    if ((n->flags & DK__F_MIN) && num_cmp(v, &n->min) < 0) {
        bound_issue(c, at, true, &n->min, true);
        ok = false;
    }
    if ((n->flags & DK__F_XMIN) && num_cmp(v, &n->xmin) <= 0) {
        bound_issue(c, at, true, &n->xmin, false);
        ok = false;
    }
    if ((n->flags & DK__F_MAX) && num_cmp(v, &n->max) > 0) {
        bound_issue(c, at, false, &n->max, true);
        ok = false;
    }
    if ((n->flags & DK__F_XMAX) && num_cmp(v, &n->xmax) >= 0) {
        bound_issue(c, at, false, &n->xmax, false);
        ok = false;
    }
    if ((n->flags & DK__F_MULT) && !is_multiple(v, &n->mult)) {
        char buf[40];
        json_t *it = issue(c, at, "not_multiple_of", "Number must be a multiple of %s",
                           num_text(&n->mult, buf, sizeof(buf)));
        put(c, it, "divisor", num_json(&n->mult));
        ok = false;
    }
    return ok;
}

/* "integer": integral, and within ±(2^53-1) so every client reads it exactly. */
static bool is_integral(const json_t *v)
{
    if (json_is_integer(v))
        return true;
    double d = json_real_value(v);
    return isfinite(d) && d == nearbyint(d);
}

static bool check_safe_int(vctx *c, const json_t *v, const seg *at)
{
    bool big;
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i >= -SAFE_INT_MAX && i <= SAFE_INT_MAX)
            return true;
        big = i > 0;
    } else {
        double d = json_real_value(v);
        if (fabs(d) <= (double)SAFE_INT_MAX)
            return true;
        big = d > 0;
    }
    json_t *it = issue(c, at, big ? "too_big" : "too_small",
                       "Integer must be within the safe integer range");
    put(c, it, big ? "maximum" : "minimum", json_integer(big ? SAFE_INT_MAX : -SAFE_INT_MAX));
    put(c, it, "origin", json_string("number"));
    put(c, it, "inclusive", json_true());
    return false;
}

/* The normalised copy of an array or object, made lazily: while every member
 * so far comes back unchanged and in the input's own order, nothing is
 * allocated, and a value that changes nothing is returned as itself (a new
 * reference). `same` is true until the first difference; `pos` counts the
 * members matched so far (arrays) or points at the next input key (objects). */
typedef struct lazy {
    bool want;   /* a copy is wanted (the node may transform, all valid so far) */
    bool same;   /* nothing differs yet: `copy` not made */
    json_t *copy;
    size_t pos;  /* arrays: elements matched */
    void *iter;  /* objects: the input's next key */
} lazy;

/* Makes the copy of an array from the first `upto` elements of `v`. */
static void lazy_array_materialise(vctx *c, lazy *z, const json_t *v)
{
    z->same = false;
    z->copy = json_array();
    if (z->copy == NULL) {
        c->oom = true;
        return;
    }
    for (size_t i = 0; i < z->pos; i++)
        if (json_array_append(z->copy, json_array_get(v, i)) != 0)
            c->oom = true;
}

/* Builds the copy only while everything so far is valid: once an issue is
 * known the copy is discarded anyway, but all elements are still checked. */
static bool check_array(vctx *c, const dk__snode *n, const json_t *v, const seg *at, bool ok,
                        json_t **out)
{
    size_t len = json_array_size(v);
    if ((n->flags & DK__F_MINITEMS) && len < n->min_items) {
        size_issue(c, at, true, "array", n->min_items, "element(s)");
        ok = false;
    }
    if ((n->flags & DK__F_MAXITEMS) && len > n->max_items) {
        size_issue(c, at, false, "array", n->max_items, "element(s)");
        ok = false;
    }
    if (n->items == NULL)
        return ok;
    lazy z = {.want = n->rebuild_arr && ok, .same = true};
    for (size_t i = 0; i < len && !c->stop; i++) {
        seg s = {at, NULL, 0, i};
        json_t *orig = json_array_get(v, i);
        json_t *e = check(c, n->items, orig, &s);
        if (e == NULL) {
            ok = false;
            continue;
        }
        if (!z.want || !ok) {
            json_decref(e);
            continue;
        }
        if (z.same && e == orig) {
            z.pos++;
            json_decref(e);
            continue;
        }
        if (z.same)
            lazy_array_materialise(c, &z, v);
        if (z.copy == NULL || json_array_append_new(z.copy, e) != 0)
            c->oom = true;
    }
    if (!ok || c->oom || !z.want)
        json_decref(z.copy);
    else
        *out = z.same ? json_incref((json_t *)v) : z.copy;
    return ok;
}

/* Makes the copy of an object from the input's members before `z->iter`. */
static void lazy_object_materialise(vctx *c, lazy *z, const json_t *v)
{
    z->same = false;
    z->copy = json_object();
    if (z->copy == NULL) {
        c->oom = true;
        return;
    }
    for (void *it = json_object_iter((json_t *)v); it != NULL && it != z->iter;
         it = json_object_iter_next((json_t *)v, it)) {
        if (json_object_setn_nocheck(z->copy, json_object_iter_key(it),
                                     json_object_iter_key_len(it),
                                     json_object_iter_value(it)) != 0)
            c->oom = true;
    }
}

/* Adds member `key` = `r` (a new reference, stolen) to the object's copy.
 * `orig` is the input's own value under that key (NULL for a default); `at`
 * the input's iterator it was read from (NULL when looked up by key) and
 * `after` the one following it. */
static void copy_member(vctx *c, lazy *z, const json_t *v, const char *key, size_t klen,
                        json_t *r, const json_t *orig, void *at, void *after)
{
    if (z->same) {
        void *it = z->iter;
        if (r == orig && it != NULL &&
            (it == at || (json_object_iter_value(it) == orig &&
                          json_object_iter_key_len(it) == klen &&
                          memcmp(json_object_iter_key(it), key, klen) == 0))) {
            z->iter = it == at ? after : json_object_iter_next((json_t *)v, it);
            json_decref(r);
            return;
        }
        lazy_object_materialise(c, z, v);
    }
    if (z->copy == NULL || json_object_setn_new_nocheck(z->copy, key, klen, r) != 0) {
        if (z->copy == NULL)
            json_decref(r);
        c->oom = true;
    }
}

static bool check_object(vctx *c, const dk__snode *n, const json_t *v, const seg *at, bool ok,
                         json_t **out)
{
    size_t size = json_object_size(v);
    if ((n->flags & DK__F_MINPROPS) && size < n->min_props) {
        size_issue(c, at, true, "object", n->min_props, "property(ies)");
        ok = false;
    }
    if ((n->flags & DK__F_MAXPROPS) && size > n->max_props) {
        size_issue(c, at, false, "object", n->max_props, "property(ies)");
        ok = false;
    }
    lazy z = {.want = n->rebuild_obj && ok, .same = true};
    if (z.want)
        z.iter = json_object_iter((json_t *)v);

    /* Declared properties in schema order, so issues and output follow it.
     * Members in that same order are read by walking the input (no hashing);
     * the others are looked up by key. */
    void *cur = size > 0 ? json_object_iter((json_t *)v) : NULL;
    size_t present = 0;
    for (size_t i = 0; i < n->nprops && !c->stop; i++) {
        const dk__sprop *p = &n->props[i];
        json_t *pv;
        void *from = NULL, *after = NULL;
        if (cur != NULL && json_object_iter_key_len(cur) == p->klen &&
            memcmp(json_object_iter_key(cur), p->key, p->klen) == 0) {
            from = cur;
            pv = json_object_iter_value(cur);
            cur = after = json_object_iter_next((json_t *)v, cur);
        } else {
            pv = json_object_getn(v, p->key, p->klen);
        }
        seg s = {at, p->key, p->klen, 0};
        if (pv != NULL) {
            present++;
            json_t *r = p->schema ? check(c, p->schema, pv, &s) : json_incref(pv);
            if (r == NULL)
                ok = false;
            else if (z.want && ok)
                copy_member(c, &z, v, p->key, p->klen, r, pv, from, after);
            else
                json_decref(r);
        } else if (p->schema != NULL && p->schema->def != NULL) {
            /* A fresh copy: the caller may change its output, the schema is shared. */
            if (z.want && ok) {
                json_t *d = json_deep_copy(p->schema->def);
                if (d == NULL)
                    c->oom = true;
                else
                    copy_member(c, &z, v, p->key, p->klen, d, NULL, NULL, NULL);
            }
        } else if (p->required) {
            json_t *it = issue(c, &s, "invalid_type", "Required");
            if (p->schema != NULL && p->schema->expected != NULL)
                put(c, it, "expected", json_string(p->schema->expected));
            put(c, it, "received", json_string("undefined"));
            ok = false;
        }
    }

    /* Undeclared keys: dropped (strip) without even looking at them, unless
     * the schema keeps, validates or refuses them. Keys are unique, so when
     * every input key was a declared property there is nothing to look at. */
    bool scan = n->addl == DK__ADDL_DENY || n->addl == DK__ADDL_SCHEMA ||
                (n->addl == DK__ADDL_ALLOW && z.want);
    if (scan && size > present && !c->stop) {
        json_t *unknown = NULL;
        const char *key;
        size_t klen;
        json_t *pv;
        json_object_keylen_foreach((json_t *)v, key, klen, pv) {
            if (dk__schema_prop(n, key, klen) != NULL)
                continue;
            if (c->stop)
                break;
            if (n->addl == DK__ADDL_DENY) {
                ok = false;
                if (unknown == NULL)
                    unknown = json_array();
                if (unknown == NULL) {
                    c->oom = true;
                } else if (json_array_size(unknown) < UNKNOWN_KEYS_MAX) {
                    size_t kl = klen <= PATH_KEY_MAX ? klen : utf8_trim(key, PATH_KEY_MAX);
                    if (json_array_append_new(unknown, json_stringn(key, kl)) != 0)
                        c->oom = true;
                } else {
                    break; /* enough to name: the issue says the list is cut */
                }
                continue;
            }
            seg s = {at, key, klen, 0};
            json_t *r = n->addl == DK__ADDL_SCHEMA ? check(c, n->addl_schema, pv, &s)
                                                    : json_incref(pv);
            if (r == NULL)
                ok = false;
            else if (z.want && ok)
                copy_member(c, &z, v, key, klen, r, pv, NULL, NULL);
            else
                json_decref(r);
        }
        if (unknown != NULL) {
            char list[200];
            size_t used = 0;
            list[0] = '\0';
            for (size_t i = 0; i < json_array_size(unknown) && used < sizeof(list); i++) {
                int w = snprintf(list + used, sizeof(list) - used, "%s'%s'", i ? ", " : "",
                                 json_string_value(json_array_get(unknown, i)));
                used += w < 0 ? 0 : (size_t)w;
            }
            bool cut = json_array_size(unknown) >= UNKNOWN_KEYS_MAX;
            json_t *it = issue(c, at, "unrecognized_keys", "Unrecognized key(s) in object: %s%s",
                               list, cut ? ", ..." : "");
            put(c, it, "keys", unknown);
            if (cut)
                put(c, it, "truncated", json_true());
            ok = false;
        }
    }
    /* Input keys left over were stripped: the copy differs after all. */
    if (z.want && ok && !c->oom && z.same && z.iter != NULL)
        lazy_object_materialise(c, &z, v);
    if (!ok || c->oom || !z.want)
        json_decref(z.copy);
    else
        *out = z.same ? json_incref((json_t *)v) : z.copy;
    return ok;
}

/* anyOf: the first branch that passes wins. oneOf: exactly one may pass. Each
 * branch collects its issues apart; they are reported only if all fail. */
static json_t *check_union(vctx *c, const dk__snode *n, const json_t *v, const seg *at)
{
    json_t *saved = c->issues, *errors = json_array(), *chosen = NULL;
    size_t matched = 0, saved_count = c->count;
    bool saved_truncated = c->truncated;
    if (errors == NULL) {
        c->oom = true;
        return NULL;
    }
    for (size_t i = 0; i < n->nbranches && !c->oom; i++) {
        c->issues = NULL;
        /* A branch stopped by the cap has failed; the next one may still
         * pass (it stops at its own first issue, the cap being reached). */
        c->stop = false;
        json_t *r = check(c, n->branches[i], v, at);
        if (r != NULL) {
            matched++;
            if (chosen == NULL)
                chosen = r;
            else
                json_decref(r);
            if (!n->one_of)
                break;
        } else if (json_array_append_new(errors, c->issues ? c->issues : json_array()) != 0) {
            c->oom = true;
        }
    }
    c->issues = saved;
    if (c->oom || matched == 1 || (matched > 1 && !n->one_of)) {
        /* The failed branches' issues are discarded: they no longer count. */
        c->count = saved_count;
        c->truncated = saved_truncated;
        c->stop = false;
        json_decref(errors);
        if (c->oom) {
            json_decref(chosen);
            return NULL;
        }
        return chosen;
    }
    const char *kw = n->one_of ? "oneOf" : "anyOf";
    if (matched == 0) {
        json_t *it = issue(c, at, "invalid_union", "Invalid input: no schema in %s matched", kw);
        put(c, it, "unionErrors", errors);
    } else {
        json_decref(errors);
        issue(c, at, "invalid_union", "Invalid input: more than one schema in %s matched", kw);
    }
    json_decref(chosen);
    return NULL;
}

static json_t *check(vctx *c, const dk__snode *n, const json_t *v, const seg *at)
{
    unsigned vt = value_type(v);
    bool ok = true;
    json_t *out = NULL;

    if (c->stop)
        return NULL;

    if (n->flags & DK__F_NEVER) {
        json_t *it = issue(c, at, "invalid_type", "Expected never, received %s", type_name(vt));
        put(c, it, "expected", json_string("never"));
        put(c, it, "received", json_string(type_name(vt)));
        return NULL;
    }
    if (n->types != 0 && !(n->types & vt)) {
        /* Only "integer" (without "number") can still accept a number. */
        if (vt != DK__T_NUM || !(n->types & DK__T_INT) || !is_integral(v)) {
            json_t *it = issue(c, at, "invalid_type", "Expected %s, received %s", n->expected,
                               type_name(vt));
            put(c, it, "expected", json_string(n->expected));
            put(c, it, "received", json_string(type_name(vt)));
            return NULL;
        }
        ok = check_safe_int(c, v, at);
        /* 1.0 is an integer: the handler reads it as one. */
        if (ok && json_is_real(v) && (out = json_integer((json_int_t)json_real_value(v))) == NULL)
            c->oom = true;
    }
    if ((n->flags & DK__F_CONST) && !dk__json_equal(v, n->const_val)) {
        json_t *it = issue(c, at, "invalid_value", "Invalid value: expected the constant value");
        /* Copies, so the issue never shares the (any-thread) schema's values. */
        json_t *values = json_array();
        if (values != NULL && json_array_append_new(values, json_deep_copy(n->const_val)) != 0)
            c->oom = true;
        put(c, it, "values", values);
        ok = false;
    }
    if (n->flags & DK__F_ENUM) {
        bool found = false;
        for (size_t i = 0; i < json_array_size(n->enum_vals) && !found; i++)
            found = dk__json_equal(v, json_array_get(n->enum_vals, i));
        if (!found) {
            json_t *it = issue(c, at, "invalid_value",
                               "Invalid value: expected one of the allowed values");
            put(c, it, "values", json_deep_copy(n->enum_vals));
            ok = false;
        }
    }
    switch (vt) {
    case DK__T_STR:
        ok = check_string(c, n, v, at) && ok;
        break;
    case DK__T_NUM:
        if (n->flags & DK__F_NUMBER)
            ok = check_number(c, n, v, at) && ok;
        break;
    case DK__T_ARR:
        ok = check_array(c, n, v, at, ok, &out);
        break;
    case DK__T_OBJ:
        ok = check_object(c, n, v, at, ok, &out);
        break;
    default:
        break;
    }
    if (n->nbranches > 0) {
        json_t *u = check_union(c, n, v, at);
        if (u == NULL)
            ok = false;
        else if (out == NULL)
            out = u; /* the node itself changed nothing: the branch's copy stands */
        else
            json_decref(u);
    }
    if (!ok || c->oom) {
        json_decref(out);
        return NULL;
    }
    return out != NULL ? out : json_incref((json_t *)v);
}

json_t *dk__schema_check(const dk_schema *s, const dk__snode *n, const json_t *v,
                         const dk__vopts *o, json_t **issues, bool *oom)
{
    vctx c = {.s = s, .max = o->max_issues, .forbid_nul = o->forbid_nul};
    json_t *r;
    if (v == NULL) {
        json_t *it = issue(&c, NULL, "invalid_type", "Required");
        if (n->expected != NULL)
            put(&c, it, "expected", json_string(n->expected));
        put(&c, it, "received", json_string("undefined"));
        r = NULL;
    } else {
        r = check(&c, n, v, NULL);
    }
    if (r != NULL && c.oom) {
        json_decref(r);
        r = NULL;
    }
    *oom = c.oom;
    if (o->truncated != NULL)
        *o->truncated = r == NULL && c.truncated;
    if (r != NULL) {
        json_decref(c.issues); /* only left by failed union branches' bookkeeping */
        *issues = NULL;
    } else {
        *issues = c.issues;
    }
    return r;
}
