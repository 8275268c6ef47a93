/* JSON Schema compiler: turns the schema JSON into a dk__snode tree once, so
 * per-request validation (schema_check.c) never parses keywords. */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/schema_internal.h"

/* Bounds for PCRE2 so a pathological pattern cannot stall a request thread. */
#define MATCH_LIMIT 1000000u
#define DEPTH_LIMIT 10000u

typedef struct cctx {
    dk_schema *s;
    const dk_schema_options *o;
    dk_err *err;
    char path[256]; /* JSON pointer of the node being compiled */
    size_t plen;
    bool failed;
} cctx;

/* Validation keywords we know but do not implement: refusing them beats
 * silently accepting input the author meant to reject. */
static const char *const unsupported[] = {
    "$ref",          "$dynamicRef",          "allOf",           "not",
    "if",            "then",                 "else",            "patternProperties",
    "prefixItems",   "additionalItems",      "uniqueItems",     "contains",
    "minContains",   "maxContains",          "dependentRequired", "dependentSchemas",
    "dependencies",  "propertyNames",        "unevaluatedProperties", "unevaluatedItems",
};

/* Every other keyword must be one of these (or an extension, below): a
 * misspelt keyword ("minLenght") is a compile error, as in Ajv's strict mode,
 * instead of a constraint that silently never applies. */
static const char *const known[] = {
    /* implemented */
    "type", "properties", "required", "additionalProperties", "minProperties", "maxProperties",
    "items", "minItems", "maxItems", "minLength", "maxLength", "pattern", "format", "enum",
    "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
    "default", "anyOf", "oneOf",
    /* core, annotations and content (draft 2020-12), ignored */
    "$schema", "$id", "$anchor", "$dynamicAnchor", "$vocabulary", "$comment", "$defs",
    "definitions", "title", "description", "examples", "deprecated", "readOnly", "writeOnly",
    "contentEncoding", "contentMediaType", "contentSchema",
};

/* Extension keywords accepted by every schema of the process
 * (dk_schema_allow_keyword()); fixed storage, so nothing to free at exit. */
#define MAX_EXTENSIONS 64
static pthread_mutex_t ext_lock = PTHREAD_MUTEX_INITIALIZER;
static char ext_names[MAX_EXTENSIONS][64];
static size_t ext_count;

int dk_schema_allow_keyword(const char *name)
{
    if (name == NULL || *name == '\0' || strlen(name) >= sizeof(ext_names[0]))
        return DK_EINVAL;
    int rc = 0;
    pthread_mutex_lock(&ext_lock);
    size_t i = 0;
    while (i < ext_count && strcmp(ext_names[i], name) != 0)
        i++;
    if (i == ext_count) {
        if (ext_count == MAX_EXTENSIONS)
            rc = DK_ELIMIT;
        else
            strcpy(ext_names[ext_count++], name);
    }
    pthread_mutex_unlock(&ext_lock);
    return rc;
}

void dk_schema_options_init(dk_schema_options *o)
{
    if (o != NULL)
        *o = (dk_schema_options){0};
}

static bool keyword_allowed(const cctx *c, const char *k)
{
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(k, known[i]) == 0)
            return true;
    if (strncmp(k, "x-", 2) == 0) /* OpenAPI-style vendor extensions */
        return true;
    if (c->o != NULL) {
        if (c->o->allow_unknown_keywords)
            return true;
        for (const char *const *e = c->o->keywords; e != NULL && *e != NULL; e++)
            if (strcmp(k, *e) == 0)
                return true;
    }
    bool found = false;
    pthread_mutex_lock(&ext_lock);
    for (size_t i = 0; i < ext_count && !found; i++)
        found = strcmp(k, ext_names[i]) == 0;
    pthread_mutex_unlock(&ext_lock);
    return found;
}

static size_t path_push(cctx *c, const char *tok, size_t len)
{
    size_t old = c->plen;
    if (c->plen + 1 < sizeof(c->path))
        c->path[c->plen++] = '/';
    for (size_t i = 0; i < len && c->plen + 2 < sizeof(c->path); i++) {
        if (tok[i] == '~' || tok[i] == '/') { /* RFC 6901 escapes */
            c->path[c->plen++] = '~';
            c->path[c->plen++] = tok[i] == '~' ? '0' : '1';
        } else {
            c->path[c->plen++] = tok[i];
        }
    }
    c->path[c->plen] = '\0';
    return old;
}

static void path_pop(cctx *c, size_t old)
{
    c->plen = old;
    c->path[old] = '\0';
}

/* Records the first error as "<keyword> at <pointer to keyword>: <why>"; returns false. */
static bool fail(cctx *c, const char *kw, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static bool fail(cctx *c, const char *kw, const char *fmt, ...)
{
    if (c->failed)
        return false;
    c->failed = true;
    char why[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    if (kw != NULL)
        dk_err_set(c->err, DK_EINVAL, "invalid schema: %s at %s/%s: %s", kw, c->path, kw, why);
    else
        dk_err_set(c->err, DK_EINVAL, "invalid schema at %s: %s",
                   c->plen ? c->path : "(root)", why);
    return false;
}

static bool nomem(cctx *c)
{
    if (!c->failed)
        dk_err_set(c->err, DK_ENOMEM, "out of memory compiling schema");
    c->failed = true;
    return false;
}

/* 0 absent, 1 read, -1 refused. JSON Schema allows 3.0 where an integer is due. */
static int get_count(cctx *c, const json_t *j, const char *kw, size_t *out)
{
    const json_t *v = json_object_get(j, kw);
    if (v == NULL)
        return 0;
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (size_t)json_integer_value(v);
        return 1;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d >= 0 && d <= 9e15 && d == floor(d)) {
            *out = (size_t)d;
            return 1;
        }
    }
    fail(c, kw, "must be a non-negative integer");
    return -1;
}

static int get_num(cctx *c, const json_t *j, const char *kw, dk__snum *out)
{
    const json_t *v = json_object_get(j, kw);
    if (v == NULL)
        return 0;
    if (!json_is_number(v)) {
        fail(c, kw, "must be a number");
        return -1;
    }
    out->d = json_number_value(v);
    if (json_is_integer(v)) {
        out->i = json_integer_value(v);
        out->is_int = true;
    } else if (fabs(out->d) < 9e18 && out->d == floor(out->d)) {
        /* Integral bounds compare exactly against integer input. */
        out->i = (json_int_t)out->d;
        out->is_int = true;
    }
    return 1;
}

static void node_free(dk__snode *n)
{
    if (n == NULL)
        return;
    node_free(n->items);
    for (size_t i = 0; i < n->nprops; i++)
        node_free(n->props[i].schema);
    dk__free(n->props);
    dk__free(n->by_key);
    node_free(n->addl_schema);
    for (size_t i = 0; i < n->nbranches; i++)
        node_free(n->branches[i]);
    dk__free(n->branches);
    json_decref(n->def);
    pcre2_code_free(n->re);
    dk__free(n->expected);
    dk__free(n);
}

static dk__snode *compile_node(cctx *c, const json_t *j);

static dk__snode *compile_child(cctx *c, const json_t *j, const char *kw, const char *key,
                                size_t klen)
{
    size_t old = path_push(c, kw, strlen(kw));
    if (key != NULL)
        path_push(c, key, klen);
    dk__snode *n = compile_node(c, j);
    path_pop(c, old);
    return n;
}

static unsigned type_bit(const char *name)
{
    static const struct {
        const char *name;
        unsigned bit;
    } table[] = {
        {"null", DK__T_NULL},     {"boolean", DK__T_BOOL}, {"integer", DK__T_INT},
        {"number", DK__T_NUM},    {"string", DK__T_STR},   {"array", DK__T_ARR},
        {"object", DK__T_OBJ},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (strcmp(name, table[i].name) == 0)
            return table[i].bit;
    return 0;
}

static bool compile_type(cctx *c, dk__snode *n, const json_t *j)
{
    const json_t *t = json_object_get(j, "type");
    if (t == NULL)
        return true;
    size_t count = json_is_array(t) ? json_array_size(t) : 1;
    if (!json_is_string(t) && !(json_is_array(t) && count > 0))
        return fail(c, "type", "must be a type name or a non-empty array of type names");
    char expected[128] = "";
    for (size_t i = 0; i < count; i++) {
        const json_t *e = json_is_array(t) ? json_array_get(t, i) : t;
        if (!json_is_string(e))
            return fail(c, "type", "must contain only type names");
        unsigned bit = type_bit(json_string_value(e));
        if (bit == 0)
            return fail(c, "type", "unknown type name '%s'", json_string_value(e));
        if (n->types & bit)
            continue;
        n->types |= bit;
        /* Seven names at most, so this always fits. */
        if (expected[0] != '\0')
            strcat(expected, " | ");
        strcat(expected, json_string_value(e));
    }
    n->expected = dk__strdup(expected);
    return n->expected != NULL || nomem(c);
}

static bool compile_string(cctx *c, dk__snode *n, const json_t *j)
{
    int rc;
    if ((rc = get_count(c, j, "minLength", &n->min_len)) < 0)
        return false;
    n->flags |= rc ? DK__F_MINLEN : 0;
    if ((rc = get_count(c, j, "maxLength", &n->max_len)) < 0)
        return false;
    n->flags |= rc ? DK__F_MAXLEN : 0;
    if ((n->flags & DK__F_MINLEN) && (n->flags & DK__F_MAXLEN) && n->min_len > n->max_len)
        return fail(c, "maxLength", "is smaller than minLength");

    const json_t *p = json_object_get(j, "pattern");
    if (p != NULL) {
        if (!json_is_string(p))
            return fail(c, "pattern", "must be a string");
        int code;
        PCRE2_SIZE off;
        n->re_src = json_string_value(p);
        /* ECMAScript syntax rewritten for PCRE2 (schema_regex.c); UTF mode so
         * "." and lengths work on code points; unanchored, as JSON Schema
         * patterns are searches, not whole-string matches. */
        size_t elen;
        char *ecma = dk__schema_regex(n->re_src, json_string_length(p), &elen);
        if (ecma == NULL)
            return nomem(c);
        bool same = elen == json_string_length(p) && memcmp(ecma, n->re_src, elen) == 0;
        n->re = pcre2_compile((PCRE2_SPTR)ecma, elen,
                              PCRE2_UTF | PCRE2_ALLOW_EMPTY_CLASS | PCRE2_DOLLAR_ENDONLY, &code,
                              &off, NULL);
        free(ecma);
        if (n->re == NULL) {
            PCRE2_UCHAR msg[120];
            pcre2_get_error_message(code, msg, sizeof(msg));
            if (!same) /* the offset is into the rewritten text */
                return fail(c, "pattern", "invalid regular expression: %s", (const char *)msg);
            return fail(c, "pattern", "invalid regular expression at offset %zu: %s",
                        (size_t)off, (const char *)msg);
        }
        pcre2_jit_compile(n->re, PCRE2_JIT_COMPLETE); /* optional speed-up; interpreter otherwise */
    }

    const json_t *f = json_object_get(j, "format");
    if (f != NULL) {
        if (!json_is_string(f))
            return fail(c, "format", "must be a string");
        n->format_name = json_string_value(f);
        n->format = dk__fmt_parse(n->format_name);
        if (n->format == DK__FMT_NONE)
            return fail(c, "format", "unknown format '%s' (supported: email, uuid, date-time, "
                                     "date, uri)", n->format_name);
    }
    return true;
}

static bool compile_number(cctx *c, dk__snode *n, const json_t *j)
{
    static const struct {
        const char *kw;
        unsigned flag;
        size_t offset;
    } bounds[] = {
        {"minimum", DK__F_MIN, offsetof(dk__snode, min)},
        {"maximum", DK__F_MAX, offsetof(dk__snode, max)},
        {"exclusiveMinimum", DK__F_XMIN, offsetof(dk__snode, xmin)},
        {"exclusiveMaximum", DK__F_XMAX, offsetof(dk__snode, xmax)},
        {"multipleOf", DK__F_MULT, offsetof(dk__snode, mult)},
    };
    for (size_t i = 0; i < sizeof(bounds) / sizeof(bounds[0]); i++) {
        int rc = get_num(c, j, bounds[i].kw, (dk__snum *)((char *)n + bounds[i].offset));
        if (rc < 0)
            return false;
        n->flags |= rc ? bounds[i].flag : 0;
    }
    if ((n->flags & DK__F_MULT) && !(n->mult.d > 0))
        return fail(c, "multipleOf", "must be greater than 0");
    if ((n->flags & DK__F_MIN) && (n->flags & DK__F_MAX) && n->min.d > n->max.d)
        return fail(c, "maximum", "is smaller than minimum");
    if ((n->flags & DK__F_XMIN) && (n->flags & DK__F_XMAX) && n->xmin.d >= n->xmax.d)
        return fail(c, "exclusiveMaximum", "leaves no number above exclusiveMinimum");
    return true;
}

static bool compile_array(cctx *c, dk__snode *n, const json_t *j)
{
    int rc;
    if ((rc = get_count(c, j, "minItems", &n->min_items)) < 0)
        return false;
    n->flags |= rc ? DK__F_MINITEMS : 0;
    if ((rc = get_count(c, j, "maxItems", &n->max_items)) < 0)
        return false;
    n->flags |= rc ? DK__F_MAXITEMS : 0;
    if ((n->flags & DK__F_MINITEMS) && (n->flags & DK__F_MAXITEMS) && n->min_items > n->max_items)
        return fail(c, "maxItems", "is smaller than minItems");

    const json_t *items = json_object_get(j, "items");
    if (items == NULL)
        return true;
    if (json_is_array(items))
        return fail(c, "items", "must be a schema (the array form is not supported)");
    n->items = compile_child(c, items, "items", NULL, 0);
    return n->items != NULL;
}

static int key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return alen < blen ? -1 : 1;
    return memcmp(a, b, alen);
}

const dk__sprop *dk__schema_prop(const dk__snode *n, const char *key, size_t klen)
{
    size_t lo = 0, hi = n->nprops;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const dk__sprop *p = &n->props[n->by_key[mid]];
        int r = key_cmp(key, klen, p->key, p->klen);
        if (r == 0)
            return p;
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static bool compile_object(cctx *c, dk__snode *n, const json_t *j)
{
    const json_t *props = json_object_get(j, "properties");
    const json_t *req = json_object_get(j, "required");
    const json_t *addl = json_object_get(j, "additionalProperties");
    int rc;

    if ((rc = get_count(c, j, "minProperties", &n->min_props)) < 0)
        return false;
    n->flags |= rc ? DK__F_MINPROPS : 0;
    if ((rc = get_count(c, j, "maxProperties", &n->max_props)) < 0)
        return false;
    n->flags |= rc ? DK__F_MAXPROPS : 0;
    if ((n->flags & DK__F_MINPROPS) && (n->flags & DK__F_MAXPROPS) && n->min_props > n->max_props)
        return fail(c, "maxProperties", "is smaller than minProperties");

    if (props != NULL && !json_is_object(props))
        return fail(c, "properties", "must be an object of schemas");
    if (req != NULL && !json_is_array(req))
        return fail(c, "required", "must be an array of property names");
    size_t cap = json_object_size(props) + json_array_size(req);
    if (cap > 0) {
        n->props = dk__calloc(cap, sizeof(*n->props));
        n->by_key = dk__calloc(cap, sizeof(*n->by_key));
        if (n->props == NULL || n->by_key == NULL)
            return nomem(c);
    }
    if (props != NULL) {
        const char *key;
        size_t klen;
        json_t *ps;
        json_object_keylen_foreach((json_t *)props, key, klen, ps) {
            dk__sprop *p = &n->props[n->nprops];
            p->key = key;
            p->klen = klen;
            if ((p->schema = compile_child(c, ps, "properties", key, klen)) == NULL)
                return false;
            n->nprops++;
        }
    }
    for (size_t i = 0; i < json_array_size(req); i++) {
        const json_t *name = json_array_get(req, i);
        if (!json_is_string(name))
            return fail(c, "required", "must contain only strings");
        const char *key = json_string_value(name);
        size_t klen = json_string_length(name), k;
        for (k = 0; k < n->nprops; k++)
            if (key_cmp(key, klen, n->props[k].key, n->props[k].klen) == 0)
                break;
        if (k == n->nprops) { /* required but undeclared: any value, kept when present */
            n->props[k].key = key;
            n->props[k].klen = klen;
            n->nprops++;
        }
        n->props[k].required = true;
    }
    /* Insertion sort: property tables are small and this runs once. */
    for (size_t i = 0; i < n->nprops; i++) {
        size_t k = i;
        while (k > 0 && key_cmp(n->props[i].key, n->props[i].klen, n->props[n->by_key[k - 1]].key,
                                n->props[n->by_key[k - 1]].klen) < 0) {
            n->by_key[k] = n->by_key[k - 1];
            k--;
        }
        n->by_key[k] = i;
    }
    if (props != NULL || req != NULL)
        n->flags |= DK__F_PROPS;

    /* Without "properties" there is nothing to strip down to, so an object
     * schema that declares no members keeps every key (a free-form object). */
    if (addl == NULL) {
        n->addl = props != NULL ? DK__ADDL_STRIP : DK__ADDL_ALLOW;
    } else if (json_is_boolean(addl)) {
        n->addl = json_is_true(addl) ? DK__ADDL_ALLOW : DK__ADDL_DENY;
    } else if (json_is_object(addl)) {
        n->addl = DK__ADDL_SCHEMA;
        if ((n->addl_schema = compile_child(c, addl, "additionalProperties", NULL, 0)) == NULL)
            return false;
    } else {
        return fail(c, "additionalProperties", "must be a boolean or a schema");
    }
    return true;
}

static bool compile_union(cctx *c, dk__snode *n, const json_t *j)
{
    const json_t *any = json_object_get(j, "anyOf"), *one = json_object_get(j, "oneOf");
    if (any != NULL && one != NULL)
        return fail(c, "oneOf", "cannot be combined with anyOf in one schema");
    const json_t *list = any ? any : one;
    const char *kw = any ? "anyOf" : "oneOf";
    if (list == NULL)
        return true;
    if (!json_is_array(list) || json_array_size(list) == 0)
        return fail(c, kw, "must be a non-empty array of schemas");
    n->one_of = one != NULL;
    n->branches = dk__calloc(json_array_size(list), sizeof(*n->branches));
    if (n->branches == NULL)
        return nomem(c);
    for (size_t i = 0; i < json_array_size(list); i++) {
        char idx[24];
        int len = snprintf(idx, sizeof(idx), "%zu", i);
        dk__snode *b = compile_child(c, json_array_get(list, i), kw, idx, (size_t)len);
        if (b == NULL)
            return false;
        n->branches[n->nbranches++] = b;
    }
    return true;
}

/* Decides once which nodes may change a value, so validation shares the
 * input's unchanged subtrees instead of copying them. */
static void compute_transforms(dk__snode *n)
{
    bool members = n->addl == DK__ADDL_STRIP ||
                   (n->addl == DK__ADDL_SCHEMA && n->addl_schema->transforms);
    for (size_t i = 0; i < n->nprops; i++) {
        const dk__snode *p = n->props[i].schema;
        if (p != NULL && (p->transforms || p->def != NULL))
            members = true;
    }
    n->rebuild_obj = members;
    n->rebuild_arr = n->items != NULL && n->items->transforms;
    /* An integral real (1.0) comes out of an "integer" node as an integer. */
    bool to_int = (n->types & DK__T_INT) && !(n->types & DK__T_NUM);
    n->transforms = n->rebuild_obj || n->rebuild_arr || to_int;
    for (size_t i = 0; i < n->nbranches; i++)
        n->transforms = n->transforms || n->branches[i]->transforms;
}

/* The default is stored normalised (its own nested defaults filled) so a
 * request only has to copy it. */
static bool compile_default(cctx *c, dk__snode *n, const json_t *j)
{
    const json_t *d = json_object_get(j, "default");
    if (d == NULL)
        return true;
    json_t *issues = NULL;
    bool oom = false;
    dk__vopts vo = {.max_issues = 1};
    n->def = dk__schema_check(c->s, n, d, &vo, &issues, &oom);
    if (n->def != NULL)
        return true;
    if (oom) {
        json_decref(issues);
        return nomem(c);
    }
    const json_t *first = json_array_get(issues, 0);
    char *where = json_dumps(json_object_get(first, "path"), JSON_COMPACT);
    fail(c, "default", "does not validate against its schema (%s at %s: %s)",
         json_string_value(json_object_get(first, "code")), where ? where : "[]",
         json_string_value(json_object_get(first, "message")));
    dk__free(where);
    json_decref(issues);
    return false;
}

static dk__snode *compile_node(cctx *c, const json_t *j)
{
    dk__snode *n = dk__calloc(1, sizeof(*n));
    if (n == NULL) {
        nomem(c);
        return NULL;
    }
    if (json_is_true(j))
        return n;
    if (json_is_false(j)) {
        n->flags = DK__F_NEVER;
        return n;
    }
    if (!json_is_object(j)) {
        fail(c, NULL, "a schema must be an object or a boolean");
        goto fail;
    }
    for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
        if (json_object_get(j, unsupported[i]) != NULL) {
            fail(c, unsupported[i], "keyword is not supported");
            goto fail;
        }
    }
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)j, key, val) {
        if (!keyword_allowed(c, key)) {
            fail(c, key, "unknown keyword (a typo? extension keywords must be allowed with "
                         "dk_schema_allow_keyword())");
            goto fail;
        }
    }
    if (!compile_type(c, n, j))
        goto fail;
    const json_t *e = json_object_get(j, "enum");
    if (e != NULL) {
        if (!json_is_array(e) || json_array_size(e) == 0) {
            fail(c, "enum", "must be a non-empty array");
            goto fail;
        }
        n->enum_vals = e;
        n->flags |= DK__F_ENUM;
    }
    if ((n->const_val = json_object_get(j, "const")) != NULL)
        n->flags |= DK__F_CONST;
    if (!compile_string(c, n, j) || !compile_number(c, n, j) || !compile_array(c, n, j) ||
        !compile_object(c, n, j) || !compile_union(c, n, j))
        goto fail;
    compute_transforms(n);
    if (!compile_default(c, n, j))
        goto fail;
    return n;
fail:
    node_free(n);
    return NULL;
}

dk_schema *dk_schema_compile(const json_t *schema, dk_err *err)
{
    return dk_schema_compile_ex(schema, NULL, err);
}

dk_schema *dk_schema_compile_ex(const json_t *schema, const dk_schema_options *o, dk_err *err)
{
    if (schema == NULL) {
        dk_err_set(err, DK_EINVAL, "no schema given");
        return NULL;
    }
    dk_schema *s = dk__calloc(1, sizeof(*s));
    if (s == NULL || (s->json = json_deep_copy(schema)) == NULL ||
        (s->mctx = pcre2_match_context_create(NULL)) == NULL) {
        dk_schema_free(s);
        dk_err_set(err, DK_ENOMEM, "out of memory compiling schema");
        return NULL;
    }
    pcre2_set_match_limit(s->mctx, MATCH_LIMIT);
    pcre2_set_depth_limit(s->mctx, DEPTH_LIMIT);
    /* Compile from our own copy: the tree borrows its keys and enum values. */
    cctx c = {.s = s, .o = o, .err = err};
    s->root = compile_node(&c, s->json);
    if (s->root == NULL) {
        dk_schema_free(s);
        return NULL;
    }
    return s;
}

dk_schema *dk_schema_compile_str(const char *json_text, dk_err *err)
{
    if (json_text == NULL) {
        dk_err_set(err, DK_EINVAL, "no schema given");
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loads(json_text, JSON_DECODE_ANY, &je);
    /* jansson gives no text when it could not even set up its parser. */
    if (j == NULL && (json_error_code(&je) == json_error_out_of_memory || je.text[0] == '\0')) {
        dk_err_set(err, DK_ENOMEM, "out of memory");
        return NULL;
    }
    if (j == NULL) {
        dk_err_set(err, DK_EINVAL, "schema is not valid JSON (line %d, column %d): %s", je.line,
                   je.column, je.text);
        return NULL;
    }
    dk_schema *s = dk_schema_compile(j, err);
    json_decref(j);
    return s;
}

void dk_schema_free(dk_schema *s)
{
    if (s == NULL)
        return;
    node_free(s->root);
    pcre2_match_context_free(s->mctx);
    json_decref(s->json);
    dk__free(s);
}

const json_t *dk_schema_json(const dk_schema *s)
{
    return s ? s->json : NULL;
}

void dk_validate_options_init(dk_validate_options *o)
{
    if (o != NULL)
        *o = (dk_validate_options){0};
}

void dk_schema_set_max_issues(dk_schema *s, size_t max)
{
    if (s != NULL)
        s->max_issues = max;
}

size_t dk_schema_max_issues(const dk_schema *s)
{
    return s == NULL || s->max_issues == 0 ? DK_SCHEMA_MAX_ISSUES : s->max_issues;
}

int dk_schema_validate_ex(const dk_schema *s, const json_t *value, const dk_validate_options *o,
                          json_t **out, json_t **issues, bool *truncated)
{
    if (out != NULL)
        *out = NULL;
    if (issues != NULL)
        *issues = NULL;
    if (truncated != NULL)
        *truncated = false;
    if (s == NULL)
        return DK_EINVAL;
    dk__vopts vo = {.max_issues = o != NULL && o->max_issues > 0 ? o->max_issues
                                                                  : dk_schema_max_issues(s),
                    .forbid_nul = o != NULL && o->forbid_nul,
                    .truncated = truncated};
    json_t *found = NULL;
    bool oom = false;
    json_t *r = dk__schema_check(s, s->root, value, &vo, &found, &oom);
    if (r != NULL) {
        if (out != NULL)
            *out = r;
        else
            json_decref(r);
        return 0;
    }
    if (oom) {
        json_decref(found);
        if (truncated != NULL)
            *truncated = false;
        return DK_ENOMEM;
    }
    if (issues != NULL)
        *issues = found;
    else
        json_decref(found);
    return DK_EINVAL;
}

int dk_schema_validate(const dk_schema *s, const json_t *value, json_t **out, json_t **issues)
{
    return dk_schema_validate_ex(s, value, NULL, out, issues, NULL);
}

int dk_json_depth(const json_t *value)
{
    int max = 0;
    if (json_is_array(value)) {
        for (size_t i = 0; i < json_array_size(value); i++) {
            int d = dk_json_depth(json_array_get(value, i));
            max = d > max ? d : max;
        }
        return max + 1;
    }
    if (json_is_object(value)) {
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)value, key, v) {
            int d = dk_json_depth(v);
            max = d > max ? d : max;
        }
        return max + 1;
    }
    return 0;
}
