/* HTTP error values, the standard table and the named-error registry. */
#include "donkey/error.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct dk_error {
    int status;
    char *code;
    char *message;
    json_t *details;
};

/* Copies a message, cut to DK_ERROR_MESSAGE_MAX bytes at a UTF-8 boundary:
 * a handler that puts input into a message cannot make the body huge. */
static char *message_copy(const char *m)
{
    size_t len = strlen(m);
    if (len <= DK_ERROR_MESSAGE_MAX)
        return strdup(m);
    len = DK_ERROR_MESSAGE_MAX;
    while (len > 0 && ((unsigned char)m[len] & 0xC0) == 0x80)
        len--; /* m[len] starts the first sequence left out */
    return strndup(m, len);
}

dk_error *dk_error_new(int status, const char *code, const char *message, json_t *details)
{
    dk_error *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        json_decref(details);
        return NULL;
    }
    e->status = (status >= 400 && status <= 599) ? status : 500;
    e->code = strdup(code ? code : "INTERNAL_SERVER_ERROR");
    e->message = message_copy(message ? message : "");
    e->details = details;
    if (e->code == NULL || e->message == NULL) {
        dk_error_free(e);
        return NULL;
    }
    return e;
}

const char *dk_http_default_message(int status)
{
    switch (status) {
#define DK_X_(st, code, name, msg)                                                                 \
    case st: return msg;
        DK_HTTP_ERRORS(DK_X_)
#undef DK_X_
    }
    return NULL;
}

const char *dk_http_code(int status)
{
    switch (status) {
#define DK_X_(st, code, name, msg)                                                                 \
    case st: return #code;
        DK_HTTP_ERRORS(DK_X_)
#undef DK_X_
    }
    return NULL;
}

const char *dk_http_reason(int status)
{
    const char *m = dk_http_default_message(status);
    if (m != NULL)
        return m;
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 402: return "Payment Required";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 418: return "I'm a teapot";
    case 423: return "Locked";
    case 428: return "Precondition Required";
    case 431: return "Request Header Fields Too Large";
    }
    return status < 400 ? "OK" : "Error";
}

dk_error *dk_error_std(int status, const char *message, json_t *details)
{
    const char *code = dk_http_code(status);
    if (code == NULL) {
        status = 500;
        code = "INTERNAL_SERVER_ERROR";
    }
    return dk_error_new(status, code, message ? message : dk_http_default_message(status), details);
}

void dk_error_free(dk_error *err)
{
    if (err == NULL)
        return;
    free(err->code);
    free(err->message);
    json_decref(err->details);
    free(err);
}

int dk_error_status(const dk_error *err) { return err->status; }

const char *dk_error_code(const dk_error *err) { return err->code; }

const char *dk_error_message(const dk_error *err) { return err->message; }

json_t *dk_error_details(const dk_error *err) { return err->details; }

json_t *dk_error_body(const dk_error *err)
{
    json_t *body = json_object();
    if (body == NULL)
        return NULL;
    json_object_set_new(body, "error", json_string(err->code));
    json_object_set_new(body, "message", json_string(err->message));
    if (err->details != NULL && !json_is_null(err->details) &&
        !(json_is_object(err->details) && json_object_size(err->details) == 0))
        json_object_set(body, "details", err->details);
    return body;
}

/* Keeps the leading issues whose compact JSON fits the budget; returns true
 * when some were dropped. Each issue is measured once. */
static bool issues_fit(json_t *issues)
{
    size_t used = 32, n = json_array_size(issues); /* {"issues":[],"truncated":true} */
    for (size_t i = 0; i < n; i++) {
        size_t sz = json_dumpb(json_array_get(issues, i), NULL, 0, JSON_COMPACT) + 1;
        if (used + sz > DK_ERROR_DETAILS_MAX) {
            while (json_array_size(issues) > i)
                json_array_remove(issues, json_array_size(issues) - 1);
            return true;
        }
        used += sz;
    }
    return false;
}

dk_error *dk_error_validation_ex(json_t *issues, bool truncated)
{
    json_t *details = json_object();
    if (details == NULL) {
        json_decref(issues);
        return NULL;
    }
    if (issues == NULL)
        issues = json_array();
    if (issues_fit(issues))
        truncated = true;
    json_object_set_new(details, "issues", issues);
    if (truncated)
        json_object_set_new(details, "truncated", json_true());
    return dk_error_new(400, "BAD_REQUEST", "Validation Failed", details);
}

dk_error *dk_error_validation(json_t *issues) { return dk_error_validation_ex(issues, false); }

/* ---- registry ---- */

typedef struct reg_entry {
    char *name, *code, *message;
    int status;
} reg_entry;

struct dk_errors {
    pthread_mutex_t lock;
    reg_entry *items;
    size_t n, cap;
};

static const char *const reserved[] = {
#define DK_X_(st, code, name, msg) #name,
    DK_HTTP_ERRORS(DK_X_)
#undef DK_X_
        "register",
    "custom", "isHttpError", NULL};

static int std_status(const char *name)
{
#define DK_X_(st, code, nm, msg)                                                                   \
    if (strcmp(name, #nm) == 0)                                                                    \
        return st;
    DK_HTTP_ERRORS(DK_X_)
#undef DK_X_
    return 0;
}

dk_errors *dk_errors_new(void)
{
    dk_errors *e = calloc(1, sizeof(*e));
    if (e != NULL)
        pthread_mutex_init(&e->lock, NULL);
    return e;
}

void dk_errors_free(dk_errors *errs)
{
    if (errs == NULL)
        return;
    for (size_t i = 0; i < errs->n; i++) {
        free(errs->items[i].name);
        free(errs->items[i].code);
        free(errs->items[i].message);
    }
    free(errs->items);
    pthread_mutex_destroy(&errs->lock);
    free(errs);
}

static reg_entry *find_locked(dk_errors *errs, const char *name)
{
    for (size_t i = 0; i < errs->n; i++)
        if (strcmp(errs->items[i].name, name) == 0)
            return &errs->items[i];
    return NULL;
}

static bool str_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

int dk_errors_register(dk_errors *errs, const char *name, int status, const char *code,
                       const char *default_message)
{
    if (name == NULL || *name == '\0' || code == NULL || *code == '\0' || status < 400 ||
        status > 599)
        return DK_EINVAL;
    for (const char *const *r = reserved; *r; r++)
        if (strcmp(*r, name) == 0)
            return DK_EINVAL;
    int rc = 0;
    pthread_mutex_lock(&errs->lock);
    reg_entry *old = find_locked(errs, name);
    if (old != NULL) {
        if (old->status != status || strcmp(old->code, code) != 0 ||
            !str_eq(old->message, default_message))
            rc = DK_EEXIST;
        goto out;
    }
    if (errs->n == errs->cap) {
        size_t cap = errs->cap ? errs->cap * 2 : 8;
        reg_entry *items = realloc(errs->items, cap * sizeof(*items));
        if (items == NULL) {
            rc = DK_ENOMEM;
            goto out;
        }
        errs->items = items;
        errs->cap = cap;
    }
    reg_entry *e = &errs->items[errs->n];
    e->name = strdup(name);
    e->code = strdup(code);
    e->message = default_message ? strdup(default_message) : NULL;
    e->status = status;
    if (e->name == NULL || e->code == NULL || (default_message && e->message == NULL)) {
        free(e->name);
        free(e->code);
        free(e->message);
        rc = DK_ENOMEM;
        goto out;
    }
    errs->n++;
out:
    pthread_mutex_unlock(&errs->lock);
    return rc;
}

dk_error *dk_errors_make(dk_errors *errs, const char *name, const char *message, json_t *details)
{
    int st = std_status(name);
    if (st != 0)
        return dk_error_std(st, message, details);
    pthread_mutex_lock(&errs->lock);
    reg_entry *e = find_locked(errs, name);
    if (e == NULL) {
        pthread_mutex_unlock(&errs->lock);
        json_decref(details);
        return NULL;
    }
    const char *msg = (message && *message) ? message : (e->message ? e->message : e->code);
    dk_error *err = dk_error_new(e->status, e->code, msg, details);
    pthread_mutex_unlock(&errs->lock);
    return err;
}

bool dk_errors_has(dk_errors *errs, const char *name)
{
    if (std_status(name) != 0)
        return true;
    pthread_mutex_lock(&errs->lock);
    bool found = find_locked(errs, name) != NULL;
    pthread_mutex_unlock(&errs->lock);
    return found;
}
