/* TypeScript client generator (see gen_client.h and docs/client.md).
 *
 * index.ts and index.js come from the same emitter: every piece of output goes
 * through one code path, and the type annotations are written only when the
 * emitter runs in TypeScript mode. */
#define _POSIX_C_SOURCE 200809L

#include "gen_client.h"
#include "base/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef DK_HAVE_CLIENT_RUNTIME
#include "dk_client_runtime.h"
#else
/* Built without client/embed.cmake: the generator reports it at run time. */
static const unsigned char dk__client_runtime_ts[1];
static const size_t dk__client_runtime_ts_len = 0;
static const unsigned char dk__client_runtime_js[1];
static const size_t dk__client_runtime_js_len = 0;
#endif

#define MAX_SCHEMA_DEPTH 32

/* ------------------------------------------------------------------ */
/* Growing string buffer                                               */

/* dk__buf (src/base/buf.c) with a sticky failure flag: the emitters append
 * without checking, and the generator checks `oom` once at the end. */
typedef struct sbuf {
    dk__buf b;
    bool oom;
} sbuf;

static void sb_putn(sbuf *b, const char *s, size_t n)
{
    if (!b->oom && dk__buf_append(&b->b, s, n) < 0)
        b->oom = true;
}

static void sb_puts(sbuf *b, const char *s)
{
    sb_putn(b, s, strlen(s));
}

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (!b->oom && dk__buf_vappendf(&b->b, fmt, ap) < 0)
        b->oom = true;
    va_end(ap);
}

static void sb_indent(sbuf *b, int level)
{
    for (int i = 0; i < level; i++)
        sb_puts(b, "    ");
}

/* A JSON value as a JS/TS literal (strings quoted and escaped, ASCII only). */
static void sb_literal(sbuf *b, const json_t *v)
{
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_ENSURE_ASCII);
    if (s == NULL) {
        b->oom = true;
        return;
    }
    sb_puts(b, s);
    free(s);
}

static void sb_string_literal(sbuf *b, const char *s)
{
    json_t *j = json_string(s);
    if (j == NULL) {
        b->oom = true;
        return;
    }
    sb_literal(b, j);
    json_decref(j);
}

/* ------------------------------------------------------------------ */
/* Names                                                               */

static bool is_identifier(const char *s)
{
    if (s == NULL || *s == '\0')
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$';
        bool digit = c >= '0' && c <= '9';
        if (!alpha && !(digit && p != s))
            return false;
    }
    return true;
}

/* A property key: bare when it is an identifier, else a string literal. */
static void sb_key(sbuf *b, const char *key)
{
    if (is_identifier(key))
        sb_puts(b, key);
    else
        sb_string_literal(b, key);
}

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* PascalCase of a route name: pieces split on anything not alphanumeric
 * ('.', '-', '_'...), each with its first letter upper-cased; "conf.echo" ->
 * "ConfEcho", "users.get-by_id" -> "UsersGetById". */
static void pascal(sbuf *b, const char *name)
{
    bool up = true;
    if (name[0] >= '0' && name[0] <= '9')
        sb_puts(b, "Route");
    for (const char *p = name; *p; p++) {
        if (!is_alnum(*p)) {
            up = true;
            continue;
        }
        char c = *p;
        if (up && c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        up = false;
        sb_putn(b, &c, 1);
    }
}

/* ------------------------------------------------------------------ */
/* JSON Schema -> TypeScript type                                      */

static void emit_type(sbuf *b, const json_t *s, int ind, int depth);

static bool has_key(const json_t *s, const char *k)
{
    return json_object_get(s, k) != NULL;
}

/* Emits `t`, in parentheses when it is a union, an intersection or a function. */
static void emit_type_grouped(sbuf *b, const json_t *s, int ind, int depth)
{
    sbuf t = {0};
    emit_type(&t, s, ind, depth);
    if (t.oom) {
        b->oom = true;
        free(t.b.data);
        return;
    }
    bool group = strchr(t.b.data, '|') != NULL || strchr(t.b.data, '&') != NULL || strstr(t.b.data, "=>");
    if (group)
        sb_puts(b, "(");
    sb_puts(b, t.b.data);
    if (group)
        sb_puts(b, ")");
    free(t.b.data);
}

static bool is_required(const json_t *s, const char *prop)
{
    const json_t *req = json_object_get(s, "required");
    size_t i;
    const json_t *v;
    json_array_foreach(req, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), prop) == 0)
            return true;
    }
    return false;
}

/* JSDoc line from a schema's description (single line, no comment end). */
static void emit_doc(sbuf *b, const json_t *s, int ind)
{
    const char *d = json_string_value(json_object_get(s, "description"));
    if (d == NULL || *d == '\0')
        return;
    sb_indent(b, ind);
    sb_puts(b, "/** ");
    for (const char *p = d; *p; p++) {
        if (*p == '\n' || *p == '\r')
            sb_puts(b, " ");
        else if (p[0] == '*' && p[1] == '/')
            sb_puts(b, "* ");
        else
            sb_putn(b, p, 1);
    }
    sb_puts(b, " */\n");
}

/* An object type: `{ ... }` on several lines, or a one-line record. */
static void emit_object(sbuf *b, const json_t *s, int ind, int depth)
{
    const json_t *props = json_object_get(s, "properties");
    const json_t *extra = json_object_get(s, "additionalProperties");
    size_t nprops = json_is_object(props) ? json_object_size(props) : 0;

    if (nprops == 0) {
        if (json_is_false(extra)) {
            sb_puts(b, "Record<string, never>");
        } else {
            sb_puts(b, "{ [key: string]: ");
            emit_type(b, json_is_object(extra) ? extra : NULL, ind, depth + 1);
            sb_puts(b, " }");
        }
        return;
    }
    sb_puts(b, "{\n");
    const char *key;
    const json_t *ps;
    bool any_optional = false;
    json_object_foreach((json_t *)props, key, ps) {
        bool req = is_required(s, key);
        any_optional |= !req;
        emit_doc(b, ps, ind + 1);
        sb_indent(b, ind + 1);
        sb_key(b, key);
        sb_puts(b, req ? ": " : "?: ");
        emit_type(b, ps, ind + 1, depth + 1);
        sb_puts(b, ";\n");
    }
    if (json_is_object(extra)) {
        /* Declared properties must fit the index signature: widen it by their types. */
        sb_indent(b, ind + 1);
        sb_puts(b, "[key: string]: ");
        emit_type_grouped(b, extra, ind + 1, depth + 1);
        json_object_foreach((json_t *)props, key, ps) {
            sb_puts(b, " | ");
            emit_type_grouped(b, ps, ind + 1, depth + 1);
        }
        if (any_optional)
            sb_puts(b, " | undefined");
        sb_puts(b, ";\n");
    }
    sb_indent(b, ind);
    sb_puts(b, "}");
}

static void emit_array(sbuf *b, const json_t *s, int ind, int depth)
{
    const json_t *prefix = json_object_get(s, "prefixItems");
    const json_t *items = json_object_get(s, "items");
    const json_t *rest = items;
    if (json_is_array(items)) { /* draft-07 tuple form */
        prefix = items;
        rest = json_object_get(s, "additionalItems");
    }
    if (json_is_array(prefix)) {
        sb_puts(b, "[");
        size_t i;
        const json_t *v;
        json_array_foreach(prefix, i, v) {
            if (i > 0)
                sb_puts(b, ", ");
            emit_type(b, v, ind, depth + 1);
        }
        if (!json_is_false(rest)) {
            if (json_array_size(prefix) > 0)
                sb_puts(b, ", ");
            sb_puts(b, "...");
            emit_type_grouped(b, json_is_object(rest) ? rest : NULL, ind, depth + 1);
            sb_puts(b, "[]");
        }
        sb_puts(b, "]");
        return;
    }
    emit_type_grouped(b, json_is_object(items) ? items : NULL, ind, depth + 1);
    sb_puts(b, "[]");
}

/* One `type` value applied to the rest of the schema. */
static void emit_single(sbuf *b, const char *type, const json_t *s, int ind, int depth)
{
    if (strcmp(type, "string") == 0)
        sb_puts(b, "string");
    else if (strcmp(type, "integer") == 0 || strcmp(type, "number") == 0)
        sb_puts(b, "number");
    else if (strcmp(type, "boolean") == 0)
        sb_puts(b, "boolean");
    else if (strcmp(type, "null") == 0)
        sb_puts(b, "null");
    else if (strcmp(type, "array") == 0)
        emit_array(b, s, ind, depth);
    else if (strcmp(type, "object") == 0)
        emit_object(b, s, ind, depth);
    else
        sb_puts(b, "unknown");
}

/* The schema's own shape (type, enum, const, inferred object/array). Returns
 * false when it has none (the type is then unknown). */
static bool emit_base(sbuf *b, const json_t *s, int ind, int depth)
{
    const json_t *c = json_object_get(s, "const");
    if (c != NULL) {
        sb_literal(b, c);
        return true;
    }
    const json_t *en = json_object_get(s, "enum");
    if (json_is_array(en)) {
        if (json_array_size(en) == 0) {
            sb_puts(b, "never");
            return true;
        }
        size_t i;
        const json_t *v;
        json_array_foreach(en, i, v) {
            if (i > 0)
                sb_puts(b, " | ");
            sb_literal(b, v);
        }
        return true;
    }
    const json_t *type = json_object_get(s, "type");
    if (json_is_string(type)) {
        emit_single(b, json_string_value(type), s, ind, depth);
        return true;
    }
    if (json_is_array(type) && json_array_size(type) > 0) {
        size_t i;
        const json_t *v;
        json_array_foreach(type, i, v) {
            if (i > 0)
                sb_puts(b, " | ");
            emit_single(b, json_is_string(v) ? json_string_value(v) : "", s, ind, depth);
        }
        return true;
    }
    if (has_key(s, "properties") || has_key(s, "additionalProperties")) {
        emit_object(b, s, ind, depth);
        return true;
    }
    if (has_key(s, "items") || has_key(s, "prefixItems")) {
        emit_array(b, s, ind, depth);
        return true;
    }
    return false;
}

static void emit_combined(sbuf *b, const json_t *list, const char *op, int ind, int depth)
{
    size_t i;
    const json_t *v;
    json_array_foreach(list, i, v) {
        if (i > 0)
            sb_puts(b, op);
        emit_type_grouped(b, v, ind, depth + 1);
    }
}

static void emit_type(sbuf *b, const json_t *s, int ind, int depth)
{
    if (s == NULL || json_is_true(s) || json_is_null(s) || !json_is_object(s) ||
        depth > MAX_SCHEMA_DEPTH) {
        sb_puts(b, json_is_false(s) ? "never" : "unknown");
        return;
    }
    const json_t *any = json_object_get(s, "anyOf");
    if (!json_is_array(any) || json_array_size(any) == 0)
        any = json_object_get(s, "oneOf");
    if (json_is_array(any) && json_array_size(any) == 0)
        any = NULL;
    const json_t *all = json_object_get(s, "allOf");
    if (json_is_array(all) && json_array_size(all) == 0)
        all = NULL;

    sbuf base = {0};
    bool has_base = emit_base(&base, s, ind, depth);
    if (base.oom) {
        b->oom = true;
        free(base.b.data);
        return;
    }
    int parts = 0;
    if (has_base) {
        bool group = (any != NULL || all != NULL) && strchr(base.b.data, '|') != NULL;
        sb_puts(b, group ? "(" : "");
        sb_puts(b, base.b.data);
        sb_puts(b, group ? ")" : "");
        parts++;
    }
    free(base.b.data);
    if (any != NULL) {
        sb_puts(b, parts ? " & (" : "");
        emit_combined(b, any, " | ", ind, depth);
        sb_puts(b, parts ? ")" : "");
        parts++;
    }
    if (all != NULL) {
        if (parts)
            sb_puts(b, " & ");
        emit_combined(b, all, " & ", ind, depth);
        parts++;
    }
    if (parts == 0)
        sb_puts(b, "unknown");
    if (json_is_true(json_object_get(s, "nullable")))
        sb_puts(b, " | null");
}

/* Whether the schema's root is a plain object that reads well as an interface. */
static bool is_interface_schema(const json_t *s)
{
    if (!json_is_object(s))
        return false;
    const json_t *props = json_object_get(s, "properties");
    if (!json_is_object(props) || json_object_size(props) == 0)
        return false;
    const json_t *type = json_object_get(s, "type");
    if (type != NULL && !(json_is_string(type) && strcmp(json_string_value(type), "object") == 0))
        return false;
    static const char *const combining[] = {"anyOf", "oneOf", "allOf", "enum", "const",
                                            "nullable"};
    for (size_t i = 0; i < sizeof combining / sizeof combining[0]; i++) {
        if (has_key(s, combining[i]))
            return false;
    }
    return true;
}

/* `export interface Name {...}` or `export type Name = ...;` */
static void emit_decl(sbuf *b, const char *name, const json_t *schema)
{
    if (json_is_null(schema))
        schema = NULL;
    if (is_interface_schema(schema)) {
        sb_printf(b, "export interface %s ", name);
        emit_object(b, schema, 0, 0);
        sb_puts(b, "\n\n");
    } else {
        sb_printf(b, "export type %s = ", name);
        emit_type(b, schema, 0, 0);
        sb_puts(b, ";\n\n");
    }
}

/* Whether a call may omit the input: no schema, or an object with nothing required. */
static bool input_optional(const json_t *s)
{
    if (s == NULL || json_is_null(s) || json_is_true(s))
        return true;
    if (!json_is_object(s))
        return false;
    if (has_key(s, "anyOf") || has_key(s, "oneOf") || has_key(s, "allOf") ||
        has_key(s, "const") || has_key(s, "enum"))
        return false;
    const json_t *type = json_object_get(s, "type");
    bool object = (json_is_string(type) && strcmp(json_string_value(type), "object") == 0) ||
                  (type == NULL && (has_key(s, "properties") || has_key(s, "additionalProperties")));
    if (type == NULL && !object)
        return true; /* no constraint on the shape at all */
    return object && json_array_size(json_object_get(s, "required")) == 0;
}

/* ------------------------------------------------------------------ */
/* Route tree                                                          */

typedef struct route_info {
    const char *name;
    const char *handler;
    const json_t *input;
    const json_t *output;
    const json_t *methods;
    char *type_base; /* PascalCase, unique */
} route_info;

typedef struct node {
    char *seg;
    route_info *route;
    struct node **kids;
    size_t nkids;
    size_t capkids;
} node;

static void node_free(node *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->nkids; i++)
        node_free(n->kids[i]);
    free(n->kids);
    free(n->seg);
    free(n);
}

static node *node_child(node *n, const char *seg, size_t len)
{
    for (size_t i = 0; i < n->nkids; i++) {
        if (strlen(n->kids[i]->seg) == len && memcmp(n->kids[i]->seg, seg, len) == 0)
            return n->kids[i];
    }
    if (n->nkids == n->capkids) {
        size_t cap = n->capkids ? n->capkids * 2 : 8;
        node **k = realloc(n->kids, cap * sizeof *k);
        if (k == NULL)
            return NULL;
        n->kids = k;
        n->capkids = cap;
    }
    node *c = calloc(1, sizeof *c);
    if (c == NULL || (c->seg = strndup(seg, len)) == NULL) {
        free(c);
        return NULL;
    }
    n->kids[n->nkids++] = c;
    return c;
}

/* Names the generated ApiClient (and its Client base) already uses at the
 * root; a route segment with one of them gets a trailing "_". */
static const char *const ROOT_RESERVED[] = {"request", "rawRequest", "sse",       "baseUrl",
                                            "credentials", "url",      "headers", "send",
                                            "constructor", "__proto__", NULL};

static bool reserved(const char *seg, bool root)
{
    if (strcmp(seg, "__proto__") == 0)
        return true;
    if (!root)
        return false;
    for (size_t i = 0; ROOT_RESERVED[i] != NULL; i++) {
        if (strcmp(seg, ROOT_RESERVED[i]) == 0)
            return true;
    }
    return false;
}

/* ------------------------------------------------------------------ */
/* Client emitter (TypeScript or JavaScript from the same code)        */

typedef struct emitter {
    sbuf *b;
    bool ts;
} emitter;

static void methods_union(sbuf *b, const json_t *methods)
{
    size_t i;
    const json_t *v;
    size_t n = 0;
    json_array_foreach(methods, i, v) {
        if (!json_is_string(v))
            continue;
        if (n++ > 0)
            sb_puts(b, " | ");
        sb_literal(b, v);
    }
    if (n == 0)
        sb_puts(b, "\"POST\"");
}

static const char *default_method(const json_t *methods)
{
    size_t i;
    const json_t *v;
    const char *first = NULL;
    json_array_foreach(methods, i, v) {
        const char *m = json_string_value(v);
        if (m == NULL)
            continue;
        if (strcmp(m, "POST") == 0)
            return "POST";
        if (first == NULL)
            first = m;
    }
    return first != NULL ? first : "POST";
}

/* The arrow function of one route. */
static void emit_method(emitter *e, const route_info *r, int ind)
{
    sbuf *b = e->b;
    bool typed = strcmp(r->handler, "typed") == 0;
    if (typed) {
        bool opt = input_optional(r->input);
        if (e->ts)
            sb_printf(b, "(input%s: %sInput, options?: CallOptions): Promise<%sOutput> =>\n",
                      opt ? "?" : "", r->type_base, r->type_base);
        else
            sb_puts(b, "(input, options) =>\n");
        sb_indent(b, ind + 1);
        sb_puts(b, "this.request");
        if (e->ts)
            sb_printf(b, "<%sOutput>", r->type_base);
        sb_puts(b, "(");
        sb_string_literal(b, r->name);
        sb_puts(b, ", input, options)");
        return;
    }
    if (e->ts) {
        sb_puts(b, "(options?: RawOptions<");
        methods_union(b, r->methods);
        sb_puts(b, ">): Promise<Response> =>\n");
    } else {
        sb_puts(b, "(options) =>\n");
    }
    sb_indent(b, ind + 1);
    sb_puts(b, "this.rawRequest(");
    sb_string_literal(b, r->name);
    sb_puts(b, ", options, ");
    sb_string_literal(b, default_method(r->methods));
    sb_puts(b, ")");
}

static void emit_node_value(emitter *e, const node *n, int ind);

static void emit_members(emitter *e, const node *n, int ind)
{
    sbuf *b = e->b;
    sb_puts(b, "{\n");
    for (size_t i = 0; i < n->nkids; i++) {
        const node *k = n->kids[i];
        sb_indent(b, ind + 1);
        sb_key(b, k->seg);
        if (reserved(k->seg, false))
            sb_puts(b, "_");
        sb_puts(b, ": ");
        emit_node_value(e, k, ind + 1);
        sb_puts(b, ",\n");
    }
    sb_indent(b, ind);
    sb_puts(b, "}");
}

/* A node: its route's method, its namespace object, or both (the method
 * carrying the namespace's members). */
static void emit_node_value(emitter *e, const node *n, int ind)
{
    if (n->route != NULL && n->nkids > 0) {
        sb_puts(e->b, "Object.assign(\n");
        sb_indent(e->b, ind + 1);
        emit_method(e, n->route, ind + 1);
        sb_puts(e->b, ",\n");
        sb_indent(e->b, ind + 1);
        emit_members(e, n, ind + 1);
        sb_puts(e->b, ")");
    } else if (n->route != NULL) {
        emit_method(e, n->route, ind);
    } else {
        emit_members(e, n, ind);
    }
}

static const char *event_name(const json_t *ev)
{
    if (json_is_string(ev))
        return json_string_value(ev);
    return json_string_value(json_object_get(ev, "name"));
}

static const json_t *event_schema(const json_t *ev)
{
    const json_t *s = json_object_get(ev, "schema");
    if (s == NULL)
        s = json_object_get(ev, "data");
    return s;
}

static void emit_header(sbuf *b)
{
    sb_puts(b, "// Generated by donkey from the server's route table (--routes-json).\n"
               "// Do not edit: regenerate with `donkey generate client --out DIR --force`.\n\n");
}

static void emit_client(emitter *e, node *root, route_info *routes, size_t nroutes,
                        const json_t *doc, const char *sse_route)
{
    sbuf *b = e->b;
    emit_header(b);
    if (e->ts)
        sb_puts(b, "import { Client } from \"./runtime.js\";\n"
                   "import type { CallOptions, ClientConfig, RawOptions } from \"./runtime.js\";\n");
    else
        sb_puts(b, "import { Client } from \"./runtime.js\";\n");
    sb_puts(b, "export * from \"./runtime.js\";\n\n");

    if (e->ts) {
        sb_puts(b, "/* ---- Route types ---- */\n\n");
        for (size_t i = 0; i < nroutes; i++) {
            route_info *r = &routes[i];
            if (strcmp(r->handler, "typed") != 0)
                continue;
            sb_puts(b, "/** Input of ");
            sb_puts(b, r->name);
            sb_puts(b, ". */\n");
            char name[1024];
            snprintf(name, sizeof name, "%sInput", r->type_base);
            emit_decl(b, name, r->input);
            sb_puts(b, "/** Output of ");
            sb_puts(b, r->name);
            sb_puts(b, ". */\n");
            snprintf(name, sizeof name, "%sOutput", r->type_base);
            emit_decl(b, name, r->output);
        }
    }

    /* Server-sent events: declared event names and channels. */
    const json_t *events = json_object_get(doc, "events");
    const json_t *channels = json_object_get(doc, "sseChannels");
    size_t i;
    const json_t *v;
    if (e->ts) {
        sb_puts(b, "/* ---- Server-sent events ---- */\n\n"
                   "/** Data type of each declared event (others are `unknown`). */\n"
                   "export interface SseEvents {\n");
        json_array_foreach(events, i, v) {
            const char *n = event_name(v);
            if (n == NULL)
                continue;
            sb_indent(b, 1);
            sb_string_literal(b, n);
            sb_puts(b, ": ");
            emit_type(b, event_schema(v), 1, 0);
            sb_puts(b, ";\n");
        }
        sb_puts(b, "}\n\n");
    }
    sb_puts(b, "/** Channels the server declares. */\nexport const SSE_CHANNELS = [");
    size_t nch = 0;
    json_array_foreach(channels, i, v) {
        const char *n = event_name(v);
        if (n == NULL)
            continue;
        sb_puts(b, nch++ ? ", " : "");
        sb_string_literal(b, n);
    }
    sb_puts(b, e->ts ? "] as const;\n" : "];\n");
    if (e->ts)
        sb_puts(b, "export type SseChannel = (typeof SSE_CHANNELS)[number];\n");
    sb_puts(b, "\n/* ---- Client ---- */\n\n");

    sb_puts(b, "/** One method per route, grouped by the dot-separated segments of its name. */\n");
    sb_puts(b, e->ts ? "export class ApiClient extends Client<SseEvents> {\n"
                     : "export class ApiClient extends Client {\n");
    sb_puts(b, e->ts ? "    constructor(config: ClientConfig) {\n" : "    constructor(config) {\n");
    sb_puts(b, "        super(config, { sseRoute: ");
    sb_string_literal(b, sse_route);
    sb_puts(b, " });\n    }\n");
    for (size_t k = 0; k < root->nkids; k++) {
        const node *n = root->kids[k];
        sb_puts(b, "\n");
        sb_indent(b, 1);
        if (e->ts)
            sb_puts(b, "readonly ");
        sb_key(b, n->seg);
        if (reserved(n->seg, true))
            sb_puts(b, "_");
        sb_puts(b, " = ");
        emit_node_value(e, n, 1);
        sb_puts(b, ";\n");
    }
    sb_puts(b, "}\n\n");
    sb_puts(b, "/** A client for the server at `config.baseUrl`. */\n");
    sb_puts(b, e->ts ? "export function createApiClient(config: ClientConfig): ApiClient {\n"
                     : "export function createApiClient(config) {\n");
    sb_puts(b, "    return new ApiClient(config);\n}\n");
}

/* ------------------------------------------------------------------ */
/* Files                                                               */

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int mkdir_p(const char *dir)
{
    char *p = strdup(dir);
    if (p == NULL)
        return -1;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            free(p);
            return -1;
        }
        *s = '/';
    }
    int rc = mkdir(p, 0777) != 0 && errno != EEXIST ? -1 : 0;
    free(p);
    return rc;
}

static int write_file(const char *path, const char *data, size_t len, bool force)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL), 0644);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            close(fd);
            return -1;
        }
        off += (size_t)n;
    }
    return close(fd);
}

/* ------------------------------------------------------------------ */

static bool valid_route_name(const char *name)
{
    if (name == NULL || *name == '\0' || name[0] == '.' || name[strlen(name) - 1] == '.' ||
        strstr(name, "..") != NULL)
        return false;
    for (const char *p = name; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == '/' || *p == '?' || *p == '#')
            return false;
    }
    return true;
}

int dk_cli_generate_client(const json_t *routes_doc, const char *out_dir, bool force, char *err,
                           size_t errlen)
{
    if (dk__client_runtime_ts_len == 0 || dk__client_runtime_js_len == 0)
        return fail(err, errlen,
                    "built without the client runtime (include client/embed.cmake)");
    if (out_dir == NULL || *out_dir == '\0')
        return fail(err, errlen, "no output directory");
    const json_t *list = json_object_get(routes_doc, "routes");
    if (!json_is_object(routes_doc) || !json_is_array(list))
        return fail(err, errlen, "route table: expected an object with a \"routes\" array");

    size_t nroutes = json_array_size(list);
    route_info *routes = calloc(nroutes ? nroutes : 1, sizeof *routes);
    node *root = calloc(1, sizeof *root);
    json_t *used = json_object();
    sbuf ts = {0}, js = {0};
    int rc = -1;
    char *paths[4] = {0};
    if (routes == NULL || root == NULL || used == NULL) {
        fail(err, errlen, "out of memory");
        goto out;
    }

    const char *sse_route = NULL;
    for (size_t i = 0; i < nroutes; i++) {
        const json_t *r = json_array_get(list, i);
        route_info *ri = &routes[i];
        ri->name = json_string_value(json_object_get(r, "name"));
        ri->handler = json_string_value(json_object_get(r, "handler"));
        ri->input = json_object_get(r, "input");
        ri->output = json_object_get(r, "output");
        ri->methods = json_object_get(r, "methods");
        if (!valid_route_name(ri->name)) {
            fail(err, errlen, "route table: route %zu has an invalid name", i);
            goto out;
        }
        if (ri->handler == NULL)
            ri->handler = "typed";
        if (strcmp(ri->handler, "typed") != 0 && sse_route == NULL) {
            const char *dot = strrchr(ri->name, '.');
            if (strcmp(dot != NULL ? dot + 1 : ri->name, "sse") == 0)
                sse_route = ri->name;
        }
        /* Unique PascalCase type name. */
        sbuf tn = {0};
        pascal(&tn, ri->name);
        if (tn.oom || tn.b.data == NULL) {
            free(tn.b.data);
            fail(err, errlen, tn.oom ? "out of memory" : "route %s: no usable type name",
                 ri->name);
            goto out;
        }
        size_t base_len = tn.b.len;
        for (int k = 2; json_object_get(used, tn.b.data) != NULL; k++) {
            tn.b.len = base_len;
            sb_printf(&tn, "%d", k);
        }
        json_object_set_new(used, tn.b.data, json_true());
        ri->type_base = tn.b.data;

        node *n = root;
        const char *seg = ri->name;
        for (;;) {
            const char *dot = strchr(seg, '.');
            size_t len = dot != NULL ? (size_t)(dot - seg) : strlen(seg);
            n = node_child(n, seg, len);
            if (n == NULL) {
                fail(err, errlen, "out of memory");
                goto out;
            }
            if (dot == NULL)
                break;
            seg = dot + 1;
        }
        if (n->route != NULL) {
            fail(err, errlen, "route table: duplicate route %s", ri->name);
            goto out;
        }
        n->route = ri;
    }

    emitter ets = {&ts, true}, ejs = {&js, false};
    emit_client(&ets, root, routes, nroutes, routes_doc, sse_route ? sse_route : "sse");
    emit_client(&ejs, root, routes, nroutes, routes_doc, sse_route ? sse_route : "sse");
    if (ts.oom || js.oom) {
        fail(err, errlen, "out of memory");
        goto out;
    }

    static const char *const names[4] = {"index.ts", "runtime.ts", "index.js", "runtime.js"};
    for (int i = 0; i < 4; i++) {
        size_t n = strlen(out_dir) + strlen(names[i]) + 2;
        paths[i] = malloc(n);
        if (paths[i] == NULL) {
            fail(err, errlen, "out of memory");
            goto out;
        }
        snprintf(paths[i], n, "%s/%s", out_dir, names[i]);
        if (!force && access(paths[i], F_OK) == 0) {
            fail(err, errlen, "%s already exists (use --force to overwrite)", paths[i]);
            goto out;
        }
    }
    if (mkdir_p(out_dir) != 0) {
        fail(err, errlen, "cannot create %s: %s", out_dir, strerror(errno));
        goto out;
    }
    const char *data[4] = {ts.b.data, (const char *)dk__client_runtime_ts, js.b.data,
                           (const char *)dk__client_runtime_js};
    size_t lens[4] = {ts.b.len, dk__client_runtime_ts_len, js.b.len, dk__client_runtime_js_len};
    for (int i = 0; i < 4; i++) {
        if (write_file(paths[i], data[i], lens[i], force) != 0) {
            fail(err, errlen, "cannot write %s: %s", paths[i], strerror(errno));
            goto out;
        }
    }
    rc = 0;
out:
    for (int i = 0; i < 4; i++)
        free(paths[i]);
    for (size_t i = 0; routes != NULL && i < nroutes; i++)
        free(routes[i].type_base);
    free(routes);
    node_free(root);
    json_decref(used);
    free(ts.b.data);
    free(js.b.data);
    return rc;
}
