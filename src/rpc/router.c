/* Routers (prefix, sticky middleware, children, mounting) and the route table
 * built once at start-up. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- middleware lists ---- */

int dk__mw_list_push(dk__mw_list *l, const char *name, const json_t *config)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        dk__mw_ref *items = dk__realloc(l->items, cap * sizeof(*items));
        if (items == NULL)
            return DK_ENOMEM;
        l->items = items;
        l->cap = cap;
    }
    char *n = dk__strdup(name);
    if (n == NULL)
        return DK_ENOMEM;
    l->items[l->n].name = n;
    l->items[l->n].config = config ? json_deep_copy(config) : json_null();
    l->n++;
    return 0;
}

int dk__mw_list_copy(dk__mw_list *dst, const dk__mw_list *src)
{
    for (size_t i = 0; i < src->n; i++) {
        int rc = dk__mw_list_push(dst, src->items[i].name, src->items[i].config);
        if (rc < 0)
            return rc;
    }
    return 0;
}

void dk__mw_list_free(dk__mw_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        dk__free(l->items[i].name);
        json_decref(l->items[i].config);
    }
    dk__free(l->items);
    memset(l, 0, sizeof(*l));
}

/* ---- routers ---- */

dk_router *dk_router_new(const char *prefix)
{
    dk_router *r = dk__calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->prefix = dk__strdup(prefix ? prefix : "");
    if (r->prefix == NULL) {
        dk__free(r);
        return NULL;
    }
    return r;
}

void dk__route_free(dk_route *r)
{
    if (r == NULL)
        return;
    dk__free(r->name);
    dk__free(r->kind_name);
    dk_schema_free(r->input);
    dk_schema_free(r->output);
    json_decref(r->config);
    json_decref(r->doc);
    dk__mw_list_free(&r->mw);
    dk__free(r->mw_impl);
    dk__free(r);
}

void dk_router_free(dk_router *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nroutes; i++)
        dk__route_free(r->routes[i]);
    dk__free(r->routes);
    for (size_t i = 0; i < r->nchildren; i++)
        dk_router_free(r->children[i]);
    dk__free(r->children);
    dk__mw_list_free(&r->mw);
    dk__free(r->prefix);
    dk__free(r->error);
    dk__free(r);
}

static void router_error(dk_router *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void router_error(dk_router *r, const char *fmt, ...)
{
    if (r->error != NULL)
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    r->error = dk__strdup(buf);
}

int dk_router_use(dk_router *r, const char *name, const char *config_json)
{
    if (name == NULL || *name == '\0') {
        router_error(r, "router '%s': middleware with an empty name", r->prefix);
        return DK_EINVAL;
    }
    json_t *config = NULL;
    if (config_json != NULL) {
        json_error_t jerr;
        config = json_loads(config_json, JSON_DECODE_ANY, &jerr);
        if (config == NULL) {
            router_error(r, "router '%s': middleware '%s' has invalid configuration JSON: %s",
                         r->prefix, name, jerr.text);
            return DK_EINVAL;
        }
    }
    int rc = dk__mw_list_push(&r->mw, name, config);
    json_decref(config);
    return rc;
}

dk_router *dk_router_child(dk_router *parent, const char *sub)
{
    char *prefix;
    if (parent->prefix[0] == '\0')
        prefix = dk__strdup(sub ? sub : "");
    else if (asprintf(&prefix, "%s.%s", parent->prefix, sub ? sub : "") < 0)
        prefix = NULL;
    if (prefix == NULL)
        return NULL;
    dk_router *child = dk_router_new(prefix);
    dk__free(prefix);
    if (child == NULL)
        return NULL;
    if (dk__mw_list_copy(&child->mw, &parent->mw) < 0)
        goto fail;
    if (parent->nchildren == parent->ccap) {
        size_t cap = parent->ccap ? parent->ccap * 2 : 4;
        dk_router **c = dk__realloc(parent->children, cap * sizeof(*c));
        if (c == NULL)
            goto fail;
        parent->children = c;
        parent->ccap = cap;
    }
    parent->children[parent->nchildren++] = child;
    return child;
fail:
    dk_router_free(child);
    return NULL;
}

static char *full_name(const dk_router *r, const char *name)
{
    char *full;
    if (r->prefix[0] == '\0')
        return dk__strdup(name);
    if (asprintf(&full, "%s.%s", r->prefix, name) < 0)
        return NULL;
    return full;
}

/* A full route name is dot-separated segments of [A-Za-z0-9_]+ ("conf.echo",
 * "users.admin.list"): it is the URL path, the client method path and the
 * OpenAPI operation id, so nothing else may slip in. */
static bool valid_name(const char *name)
{
    size_t seg = 0;
    for (const char *p = name;; p++) {
        if (*p == '.' || *p == '\0') {
            if (seg == 0)
                return false;
            if (*p == '\0')
                return true;
            seg = 0;
        } else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                   (*p >= '0' && *p <= '9') || *p == '_') {
            seg++;
        } else {
            return false;
        }
    }
}

static int check_name(dk_router *r, const char *name)
{
    if (valid_name(name))
        return 0;
    router_error(r, "route '%s': invalid name (use segments of letters, digits and '_' "
                    "separated by dots, as in 'users.get')", name);
    return DK_EINVAL;
}

static int add_route(dk_router *r, dk_route *route)
{
    for (size_t i = 0; i < r->nroutes; i++) {
        if (strcmp(r->routes[i]->name, route->name) == 0) {
            router_error(r, "route '%s' is defined twice", route->name);
            dk__route_free(route);
            return DK_EEXIST;
        }
    }
    if (r->nroutes == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        dk_route **routes = dk__realloc(r->routes, cap * sizeof(*routes));
        if (routes == NULL) {
            dk__route_free(route);
            return DK_ENOMEM;
        }
        r->routes = routes;
        r->cap = cap;
    }
    r->routes[r->nroutes++] = route;
    return 0;
}

static dk_schema *compile_schema(dk_router *r, const char *route, const char *which,
                                 const char *text, int *rc)
{
    if (text == NULL)
        return NULL;
    dk_err err = {0};
    dk_schema *s = dk_schema_compile_str(text, &err);
    if (s == NULL && err.code == DK_ENOMEM) {
        *rc = DK_ENOMEM; /* like every other allocation failure: returned, not recorded */
    } else if (s == NULL) {
        router_error(r, "route '%s': invalid %s schema: %s", route, which, err.message);
        *rc = DK_EINVAL;
    }
    return s;
}

static const char *const reserved_keys[] = {"name", "handler", "middleware", NULL};

static dk_route *new_route(dk_router *r, const char *name, int kind, const char *kind_name,
                           unsigned methods, const char *in, const char *out,
                           const char *config_json, int *rc)
{
    *rc = 0;
    if (name == NULL) {
        router_error(r, "router '%s': route without a name", r->prefix);
        *rc = DK_EINVAL;
        return NULL;
    }
    dk_route *route = dk__calloc(1, sizeof(*route));
    if (route == NULL) {
        *rc = DK_ENOMEM;
        return NULL;
    }
    route->name = full_name(r, name);
    route->kind = kind;
    route->kind_name = dk__strdup(kind_name);
    route->methods = methods ? methods : DK_METHOD_POST;
    if (route->name == NULL || route->kind_name == NULL ||
        dk__mw_list_copy(&route->mw, &r->mw) < 0) {
        *rc = DK_ENOMEM;
        goto fail;
    }
    if ((*rc = check_name(r, route->name)) < 0)
        goto fail;
    route->input = compile_schema(r, route->name, "input", in, rc);
    route->output = compile_schema(r, route->name, "output", out, rc);
    if (*rc < 0)
        goto fail;
    if (config_json != NULL) {
        json_error_t jerr;
        route->config = json_loads(config_json, 0, &jerr);
        if (!json_is_object(route->config)) {
            router_error(r, "route '%s': configuration must be a JSON object", route->name);
            *rc = DK_EINVAL;
            goto fail;
        }
        for (const char *const *k = reserved_keys; *k; k++) {
            if (json_object_get(route->config, *k) != NULL) {
                router_error(r, "route '%s': configuration key '%s' is reserved", route->name,
                             *k);
                *rc = DK_EINVAL;
                goto fail;
            }
        }
    } else {
        route->config = json_object();
    }
    return route;
fail:
    dk__route_free(route);
    return NULL;
}

int dk_route_typed(dk_router *r, const char *name, const char *input_schema,
                   const char *output_schema, dk_typed_fn fn, void *user)
{
    int rc;
    dk_route *route = new_route(r, name, DK__KIND_TYPED, "typed", DK_METHOD_POST, input_schema,
                                output_schema, NULL, &rc);
    if (route == NULL)
        return rc;
    route->typed = fn;
    route->user = user;
    return add_route(r, route);
}

int dk_route_raw(dk_router *r, const char *name, unsigned methods, dk_raw_fn fn, void *user)
{
    int rc;
    dk_route *route = new_route(r, name, DK__KIND_RAW, "raw", methods, NULL, NULL, NULL, &rc);
    if (route == NULL)
        return rc;
    route->raw = fn;
    route->user = user;
    return add_route(r, route);
}

int dk_route_custom(dk_router *r, const char *kind, const char *name, unsigned methods,
                    const char *input_schema, const char *output_schema, const char *config_json,
                    dk_handler_fn fn, void *user)
{
    if (kind == NULL || *kind == '\0') {
        router_error(r, "route '%s': empty handler kind", name ? name : "");
        return DK_EINVAL;
    }
    int k = strcmp(kind, "typed") == 0 ? DK__KIND_TYPED
            : strcmp(kind, "raw") == 0 ? DK__KIND_RAW
                                       : DK__KIND_CUSTOM;
    int rc;
    dk_route *route =
        new_route(r, name, k, kind, methods, input_schema, output_schema, config_json, &rc);
    if (route == NULL)
        return rc;
    route->custom = fn;
    if (k == DK__KIND_TYPED)
        route->typed = (dk_typed_fn)(void (*)(void))fn;
    else if (k == DK__KIND_RAW)
        route->raw = (dk_raw_fn)(void (*)(void))fn;
    route->user = user;
    return add_route(r, route);
}

int dk_route_document(dk_router *r, const char *name, const dk_route_doc *doc)
{
    if (r == NULL || name == NULL || doc == NULL)
        return DK_EINVAL;
    char *full = full_name(r, name);
    if (full == NULL)
        return DK_ENOMEM;
    dk_route *route = NULL;
    for (size_t i = 0; i < r->nroutes && route == NULL; i++)
        if (strcmp(r->routes[i]->name, full) == 0)
            route = r->routes[i];
    if (route == NULL) {
        router_error(r, "dk_route_document: no route '%s' on this router", full);
        dk__free(full);
        return DK_ENOTFOUND;
    }
    dk__free(full);
    json_t *d = json_object();
    if (d == NULL)
        return DK_ENOMEM;
    if (doc->summary != NULL && *doc->summary != '\0')
        json_object_set_new(d, "summary", json_string(doc->summary));
    if (doc->description != NULL && *doc->description != '\0')
        json_object_set_new(d, "description", json_string(doc->description));
    if (doc->sse)
        json_object_set_new(d, "sse", json_true());
    json_decref(route->doc);
    route->doc = d;
    return 0;
}

dk_route *dk__route_clone(const dk_route *src)
{
    dk_route *r = dk__calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    *r = *src;
    r->name = dk__strdup(src->name);
    r->kind_name = dk__strdup(src->kind_name);
    r->config = json_deep_copy(src->config);
    r->doc = src->doc ? json_deep_copy(src->doc) : NULL;
    r->input = src->input ? dk_schema_compile(dk_schema_json(src->input), NULL) : NULL;
    r->output = src->output ? dk_schema_compile(dk_schema_json(src->output), NULL) : NULL;
    memset(&r->mw, 0, sizeof(r->mw));
    r->mw_impl = NULL;
    r->kind_impl = NULL;
    if (r->name == NULL || r->kind_name == NULL || r->config == NULL || (src->doc && !r->doc) ||
        (src->input && !r->input) || (src->output && !r->output) ||
        dk__mw_list_copy(&r->mw, &src->mw) < 0) {
        dk__route_free(r);
        return NULL;
    }
    return r;
}

static int collect(const dk_router *r, dk_route ***out, size_t *n, size_t *cap)
{
    for (size_t i = 0; i < r->nroutes; i++) {
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 16;
            dk_route **v = dk__realloc(*out, *cap * sizeof(*v));
            if (v == NULL)
                return DK_ENOMEM;
            *out = v;
        }
        (*out)[(*n)++] = r->routes[i];
    }
    for (size_t i = 0; i < r->nchildren; i++) {
        int rc = collect(r->children[i], out, n, cap);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int dk_router_mount(dk_router *r, const dk_router *other)
{
    dk_route **list = NULL;
    size_t n = 0, cap = 0;
    int rc = collect(other, &list, &n, &cap);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        dk_route *c = dk__route_clone(list[i]);
        if (c == NULL) {
            rc = DK_ENOMEM;
            break;
        }
        char *name = full_name(r, list[i]->name);
        dk__mw_list mw = {0};
        if (name == NULL || dk__mw_list_copy(&mw, &r->mw) < 0 ||
            dk__mw_list_copy(&mw, &list[i]->mw) < 0) {
            dk__free(name);
            dk__mw_list_free(&mw);
            dk__route_free(c);
            rc = DK_ENOMEM;
            break;
        }
        dk__free(c->name);
        c->name = name;
        dk__mw_list_free(&c->mw);
        c->mw = mw;
        rc = check_name(r, c->name);
        if (rc < 0) {
            dk__route_free(c);
            break;
        }
        rc = add_route(r, c);
    }
    dk__free(list);
    return rc;
}

static const char *first_error(const dk_router *r)
{
    if (r->error)
        return r->error;
    for (size_t i = 0; i < r->nchildren; i++) {
        const char *e = first_error(r->children[i]);
        if (e)
            return e;
    }
    return NULL;
}

/* ---- route accessors ---- */

const char *dk_route_name(const dk_route *route) { return route->name; }
const char *dk_route_kind(const dk_route *route) { return route->kind_name; }
const dk_schema *dk_route_input(const dk_route *route) { return route->input; }
const dk_schema *dk_route_output(const dk_route *route) { return route->output; }
const json_t *dk_route_config(const dk_route *route) { return route->config; }
dk_handler_fn dk_route_handler(const dk_route *route) { return route->custom; }
void *dk_route_user(const dk_route *route) { return route->user; }

/* ---- route table ---- */

const dk_route *dk__route_table_get(const dk__route_table *t, const char *name, size_t len)
{
    if (t->slots == NULL)
        return NULL;
    size_t i = dk__hash(name, len) & t->mask;
    for (;;) {
        const dk_route *r = t->slots[i];
        if (r == NULL)
            return NULL;
        if (strncmp(r->name, name, len) == 0 && r->name[len] == '\0')
            return r;
        i = (i + 1) & t->mask;
    }
}

static void methods_text(unsigned m, char *buf, size_t len)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{DK_METHOD_GET, "GET"},       {DK_METHOD_HEAD, "HEAD"},
                 {DK_METHOD_POST, "POST"},     {DK_METHOD_PUT, "PUT"},
                 {DK_METHOD_PATCH, "PATCH"},   {DK_METHOD_DELETE, "DELETE"},
                 {DK_METHOD_OPTIONS, "OPTIONS"}};
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (m & names[i].bit) {
            if (buf[0])
                strncat(buf, ", ", len - strlen(buf) - 1);
            strncat(buf, names[i].name, len - strlen(buf) - 1);
        }
    }
}

void dk__routes_free(dk_app *app)
{
    dk__free(app->table.slots);
    dk__free(app->table.list);
    memset(&app->table, 0, sizeof(app->table));
}

int dk__routes_build(dk_app *app, dk_err *err)
{
    dk_route **list = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < app->nrouters; i++) {
        const char *e = first_error(app->routers[i]);
        if (e) {
            dk__free(list);
            return dk_err_set(err, DK_EINVAL, "%s", e);
        }
        if (collect(app->routers[i], &list, &n, &cap) < 0) {
            dk__free(list);
            return dk_err_set(err, DK_ENOMEM, "out of memory building routes");
        }
    }
    size_t size = 16;
    while (size < n * 2)
        size *= 2;
    dk_route **slots = dk__calloc(size, sizeof(*slots));
    if (slots == NULL) {
        dk__free(list);
        return dk_err_set(err, DK_ENOMEM, "out of memory building routes");
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        dk_route *r = list[i];
        r->index = i;
        size_t len = strlen(r->name);
        size_t s = dk__hash(r->name, len) & (size - 1);
        while (slots[s] != NULL) {
            if (strcmp(slots[s]->name, r->name) == 0) {
                rc = dk_err_set(err, DK_EEXIST, "duplicate route '%s'", r->name);
                break;
            }
            s = (s + 1) & (size - 1);
        }
        if (rc)
            break;
        slots[s] = r;
        /* Resolve middleware names and handler kinds now: nothing fails open. */
        dk__free(r->mw_impl);
        r->mw_impl = dk__calloc(r->mw.n + 1, sizeof(*r->mw_impl));
        if (r->mw_impl == NULL) {
            rc = dk_err_set(err, DK_ENOMEM, "out of memory");
            break;
        }
        for (size_t m = 0; m < r->mw.n; m++) {
            r->mw_impl[m] = dk__app_find_mw(app, r->mw.items[m].name);
            if (r->mw_impl[m] == NULL) {
                rc = dk_err_set(err, DK_ENOTFOUND,
                                "route '%s' uses unknown middleware '%s' (no plugin provides it)",
                                r->name, r->mw.items[m].name);
                break;
            }
            const char *why = app->wire.mw_config_error != NULL
                                  ? app->wire.mw_config_error(r->mw_impl[m]->fn,
                                                              r->mw.items[m].config)
                                  : NULL;
            if (why != NULL) {
                rc = dk_err_set(err, DK_EINVAL, "route '%s': middleware '%s': %s", r->name,
                                r->mw.items[m].name, why);
                break;
            }
        }
        if (rc)
            break;
        if (r->kind == DK__KIND_CUSTOM) {
            r->kind_impl = dk__app_find_kind(app, r->kind_name);
            if (r->kind_impl == NULL) {
                rc = dk_err_set(err, DK_ENOTFOUND,
                                "route '%s' uses unknown handler kind '%s' (no plugin provides it)",
                                r->name, r->kind_name);
                break;
            }
        }
        methods_text(r->methods, r->allow, sizeof(r->allow));
    }
    if (rc < 0) {
        dk__free(slots);
        dk__free(list);
        return rc;
    }
    dk__routes_free(app);
    app->table.slots = slots;
    app->table.mask = size - 1;
    app->table.list = list;
    app->table.n = n;
    return 0;
}

json_t *dk__route_json(const dk_route *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(r->name));
    json_object_set_new(o, "handler", json_string(r->kind_name));
    json_t *methods = json_array();
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{DK_METHOD_GET, "GET"},     {DK_METHOD_HEAD, "HEAD"},   {DK_METHOD_POST, "POST"},
                 {DK_METHOD_PUT, "PUT"},     {DK_METHOD_PATCH, "PATCH"}, {DK_METHOD_DELETE, "DELETE"},
                 {DK_METHOD_OPTIONS, "OPTIONS"}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (r->methods & names[i].bit)
            json_array_append_new(methods, json_string(names[i].name));
    json_object_set_new(o, "methods", methods);
    json_object_set_new(o, "input",
                        r->input ? json_deep_copy(dk_schema_json(r->input)) : json_null());
    json_object_set_new(o, "output",
                        r->output ? json_deep_copy(dk_schema_json(r->output)) : json_null());
    json_t *mw = json_array();
    for (size_t i = 0; i < r->mw.n; i++)
        json_array_append_new(mw, json_string(r->mw.items[i].name));
    json_object_set_new(o, "middleware", mw);
    if (json_object_size(r->config) > 0)
        json_object_set(o, "config", r->config);
    if (r->doc != NULL)
        json_object_update(o, r->doc); /* summary, description, sse */
    return o;
}

/* ---- the registry of middleware and handler kinds ---- */

int dk_app_add_middleware(dk_app *app, const char *name, dk_middleware_fn fn, void *user)
{
    if (name == NULL || fn == NULL)
        return DK_EINVAL;
    if (dk__app_find_mw(app, name) != NULL)
        return DK_EEXIST;
    if (app->nmws == app->mwcap) {
        size_t cap = app->mwcap ? app->mwcap * 2 : 8;
        dk__mw_impl *v = dk__realloc(app->mws, cap * sizeof(*v));
        if (v == NULL)
            return DK_ENOMEM;
        app->mws = v;
        app->mwcap = cap;
    }
    app->mws[app->nmws] = (dk__mw_impl){.name = dk__strdup(name), .fn = fn, .user = user};
    if (app->mws[app->nmws].name == NULL)
        return DK_ENOMEM;
    app->nmws++;
    return 0;
}

int dk_app_add_kind(dk_app *app, const char *name, dk_kind_fn fn, void *user)
{
    if (name == NULL || fn == NULL || strcmp(name, "typed") == 0 || strcmp(name, "raw") == 0)
        return DK_EINVAL;
    if (dk__app_find_kind(app, name) != NULL)
        return DK_EEXIST;
    if (app->nkinds == app->kcap) {
        size_t cap = app->kcap ? app->kcap * 2 : 4;
        dk__kind_impl *v = dk__realloc(app->kinds, cap * sizeof(*v));
        if (v == NULL)
            return DK_ENOMEM;
        app->kinds = v;
        app->kcap = cap;
    }
    app->kinds[app->nkinds] = (dk__kind_impl){.name = dk__strdup(name), .fn = fn, .user = user};
    if (app->kinds[app->nkinds].name == NULL)
        return DK_ENOMEM;
    app->nkinds++;
    return 0;
}

const dk__mw_impl *dk__app_find_mw(const dk_app *app, const char *name)
{
    /* Pointers into app->mws are taken at start-up, after every plugin
     * registered its middleware, so the array no longer moves. */
    for (size_t i = 0; i < app->nmws; i++)
        if (strcmp(app->mws[i].name, name) == 0)
            return &app->mws[i];
    return NULL;
}

const dk__kind_impl *dk__app_find_kind(const dk_app *app, const char *name)
{
    for (size_t i = 0; i < app->nkinds; i++)
        if (strcmp(app->kinds[i].name, name) == 0)
            return &app->kinds[i];
    return NULL;
}
