/* donkey: structured logger (include/donkey/log.h, docs/logger.md).
 *
 * A logger family (a root and all its children) shares one `log_family`: the
 * transport list, the redaction keys, the console writer and a reference count
 * of the loggers using it. Each dk_logger only owns its level and context. */
#include "donkey/log.h"
#include "base/internal.h"
#include "base/trace.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_QUEUE_LINES 8192
#define LOG_WRITER_BATCH 256
#define LOG_MAX_DEPTH 64

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char *const level_padded[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};
static const char *const level_colors[] = {"\x1b[90m", "\x1b[36m", "\x1b[33m", "\x1b[31m"};
#define COLOR_GRAY "\x1b[90m"
#define COLOR_RESET "\x1b[0m"

/* Keys whose values carry credentials in the requests and configs donkey
 * applications usually log (docs/logger.md). Matched case-insensitively. */
static const char *const default_redact[] = {
    "password",
    "token",
    "authorization",
    "proxy-authorization",
    "secret",
    "client_secret",
    "api_key",
    "apikey",
    "api-key",
    "x-api-key",
    "access_token",
    "refresh_token",
    "cookie",
    "set-cookie",
    NULL,
};

typedef struct log_node {
    dk_log_fn fn;
    void *user;
    dk_free_fn user_free;
    bool serialise;
    pthread_mutex_t lock;
    struct log_node *_Atomic next;
} log_node;

typedef struct log_line {
    char *text;
    size_t len;
} log_line;

typedef struct log_console {
    FILE *out;
    dk_log_format format;
    bool color;
    pthread_mutex_t lock;
    pthread_cond_t work;
    pthread_cond_t done;
    log_line *ring;
    size_t cap, head, count;
    uint64_t pushed, written;
    bool stop;
    bool idle;    /* the writer waits for work: the next push wakes it */
    int flushers; /* threads waiting in console_flush */
    atomic_uint_fast64_t dropped;
    pthread_t thread;
} log_console;

typedef struct log_family {
    atomic_size_t refs;
    pthread_mutex_t list_lock;
    log_node *_Atomic head;
    log_node *tail;
    pthread_rwlock_t redact_lock;
    char **redact;
    size_t nredact;
    log_console *console;
    atomic_uint reopen_gen;
} log_family;

struct dk_logger {
    log_family *fam;
    int level;       /* accessed with __atomic builtins so const getters work */
    json_t *context; /* immutable after creation; NULL when empty */
};

/* Families whose transports are running on this thread; a transport that logs
 * back into its own family would deadlock, so such entries are dropped. */
typedef struct dispatch_frame {
    const log_family *fam;
    struct dispatch_frame *prev;
} dispatch_frame;
static _Thread_local dispatch_frame *tls_dispatch;

/* ---- levels ---------------------------------------------------------------------------- */

static bool level_ok(int level) { return level >= DK_LOG_DEBUG && level <= DK_LOG_ERROR; }

int dk_log_level_parse(const char *text, dk_log_level *out)
{
    if (text == NULL || out == NULL)
        return DK_EINVAL;
    for (int i = DK_LOG_DEBUG; i <= DK_LOG_ERROR; i++) {
        if (dk__strieq_n(text, strlen(text), level_names[i])) {
            *out = (dk_log_level)i;
            return 0;
        }
    }
    return DK_EINVAL;
}

const char *dk_log_level_name(dk_log_level level)
{
    return level_ok((int)level) ? level_names[level] : "unknown";
}

/* ---- UTF-8 and cleaning ------------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at `s` (n bytes left), 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t cp, min;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

static bool utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t l = utf8_seq(p + i, n - i);
        if (l == 0)
            return false;
        i += l;
    }
    return true;
}

/* Copy of `s` with every invalid byte replaced by U+FFFD; NUL-terminated,
 * caller frees. NULL if out of memory. */
static char *utf8_fix(const char *s, size_t n, size_t *out_len)
{
    const unsigned char *p = (const unsigned char *)s;
    dk__buf b = {0};
    for (size_t i = 0; i < n;) {
        size_t l = utf8_seq(p + i, n - i);
        int rc = l ? dk__buf_append(&b, p + i, l) : dk__buf_append(&b, "\xEF\xBF\xBD", 3);
        if (rc < 0) {
            dk__buf_free(&b);
            return NULL;
        }
        i += l ? l : 1;
    }
    if (b.data == NULL && dk__buf_append(&b, "", 0) < 0)
        return NULL;
    if (out_len)
        *out_len = b.len;
    return b.data;
}

typedef struct clean_opts {
    char *const *keys;
    size_t nkeys;
    const json_t *stack[LOG_MAX_DEPTH];
} clean_opts;

static bool key_redacted(const clean_opts *o, const char *key)
{
    size_t n = strlen(key);
    for (size_t i = 0; i < o->nkeys; i++)
        if (dk__strieq_n(key, n, o->keys[i]))
            return true;
    return false;
}

static json_t *clean(json_t *v, clean_opts *o, int depth);

static json_t *clean_object(json_t *v, clean_opts *o, int depth)
{
    json_t *copy = NULL, *val;
    const char *key;
    size_t i = 0;

    json_object_foreach(v, key, val)
    {
        json_t *nv = key_redacted(o, key) ? json_string("[REDACTED]") : clean(val, o, depth + 1);
        char *fixed = utf8_valid(key, strlen(key)) ? NULL : utf8_fix(key, strlen(key), NULL);
        if (nv == NULL || (fixed == NULL && !utf8_valid(key, strlen(key))))
            goto fail;
        if (copy == NULL && (nv != val || fixed != NULL)) {
            const char *k2;
            json_t *v2;
            size_t j = 0;
            copy = json_object();
            if (copy == NULL)
                goto fail;
            json_object_foreach(v, k2, v2)
            {
                if (j++ == i)
                    break;
                if (json_object_set(copy, k2, v2) < 0)
                    goto fail;
            }
        }
        if (copy != NULL) {
            int rc = json_object_set_new(copy, fixed ? fixed : key, nv);
            nv = NULL;
            if (rc < 0)
                goto fail;
        }
        json_decref(nv);
        free(fixed);
        i++;
        continue;
    fail:
        json_decref(nv);
        free(fixed);
        json_decref(copy);
        return NULL;
    }
    return copy ? copy : json_incref(v);
}

static json_t *clean_array(json_t *v, clean_opts *o, int depth)
{
    json_t *copy = NULL;
    size_t n = json_array_size(v);

    for (size_t i = 0; i < n; i++) {
        json_t *val = json_array_get(v, i);
        json_t *nv = clean(val, o, depth + 1);
        if (nv == NULL)
            goto fail;
        if (copy == NULL && nv != val) {
            copy = json_array();
            if (copy == NULL)
                goto fail_nv;
            for (size_t j = 0; j < i; j++)
                if (json_array_append(copy, json_array_get(v, j)) < 0)
                    goto fail_nv;
        }
        if (copy != NULL) {
            if (json_array_append_new(copy, nv) < 0)
                goto fail;
        } else {
            json_decref(nv);
        }
        continue;
    fail_nv:
        json_decref(nv);
        goto fail;
    }
    return copy ? copy : json_incref(v);
fail:
    json_decref(copy);
    return NULL;
}

/* Returns a new reference to `v`, or to a copy in which redacted keys carry
 * "[REDACTED]", invalid UTF-8 is replaced with U+FFFD, and cycles or nesting
 * beyond LOG_MAX_DEPTH are cut. Shared subtrees are never modified. */
static json_t *clean(json_t *v, clean_opts *o, int depth)
{
    if (depth >= LOG_MAX_DEPTH)
        return json_string("[TOO DEEP]");
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v), fixed_len;
        if (utf8_valid(s, n))
            return json_incref(v);
        char *fixed = utf8_fix(s, n, &fixed_len);
        json_t *r = fixed ? json_stringn(fixed, fixed_len) : NULL;
        free(fixed);
        return r;
    }
    if (!json_is_object(v) && !json_is_array(v))
        return json_incref(v);
    for (int i = 0; i < depth; i++)
        if (o->stack[i] == v)
            return json_string("[CIRCULAR]");
    o->stack[depth] = v;
    return json_is_object(v) ? clean_object(v, o, depth) : clean_array(v, o, depth);
}

/* ---- formatting -------------------------------------------------------------------------- */

static bool reserved_key(const char *key)
{
    return strcmp(key, "timestamp") == 0 || strcmp(key, "level") == 0 ||
           strcmp(key, "message") == 0;
}

static int add_fields(json_t *line, const json_t *fields, const char *prefix)
{
    const char *key;
    json_t *val;

    if (!json_is_object(fields))
        return 0;
    json_object_foreach((json_t *)fields, key, val)
    {
        int rc;
        if (reserved_key(key)) {
            dk__buf name = {0};
            rc = dk__buf_appendf(&name, "%s%s", prefix, key);
            if (rc == 0)
                rc = json_object_set(line, name.data, val);
            dk__buf_free(&name);
        } else {
            rc = json_object_set(line, key, val);
        }
        if (rc < 0)
            return DK_ENOMEM;
    }
    return 0;
}

static int format_json(dk__buf *b, const dk_log_entry *e)
{
    char ts[32];
    json_t *line = json_object();
    int rc = line ? 0 : DK_ENOMEM;

    dk_iso8601(e->wall_ms, ts, sizeof(ts));
    if (rc == 0 &&
        (json_object_set_new(line, "timestamp", json_string(ts)) < 0 ||
         json_object_set_new(line, "level", json_string(dk_log_level_name(e->level))) < 0 ||
         json_object_set_new(line, "message", json_string(e->message)) < 0))
        rc = DK_ENOMEM;
    if (rc == 0)
        rc = add_fields(line, e->data, "data.");
    if (rc == 0)
        rc = add_fields(line, e->context, "context.");
    if (rc == 0)
        rc = dk__json_write(b, line); /* the bytes json_dumps(JSON_COMPACT) would give */
    json_decref(line);
    return rc;
}

/* Pretty messages are one line: CR/LF become \r \n, other control bytes \xHH,
 * so a message cannot forge extra lines or terminal escape sequences. */
static int append_escaped(dk__buf *b, const char *s)
{
    int rc = 0;
    const char *run = s; /* start of the bytes not written yet */
    for (const char *p = s; *p && rc == 0; p++) {
        unsigned char c = (unsigned char)*p;
        if (!((c < 0x20 && c != '\t') || c == 0x7f))
            continue;
        if (p > run)
            rc = dk__buf_append(b, run, (size_t)(p - run));
        if (rc == 0 && c == '\n')
            rc = dk__buf_append(b, "\\n", 2);
        else if (rc == 0 && c == '\r')
            rc = dk__buf_append(b, "\\r", 2);
        else if (rc == 0)
            rc = dk__buf_appendf(b, "\\x%02x", c);
        run = p + 1;
    }
    if (rc == 0 && *run)
        rc = dk__buf_append(b, run, strlen(run));
    return rc;
}

/* Writes "key":value for each member of `o` not overridden by `over`
 * (values of `over` win, in `o`'s position), as the compact JSON of the two
 * objects merged would read. */
static int put_members(dk__buf *b, const json_t *o, const json_t *over, bool *first)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        json_t *w = over != NULL ? json_object_get(over, k) : NULL;
        if (dk__buf_append(b, *first ? "{" : ",", 1) < 0 ||
            dk__json_write_string(b, k, strlen(k)) < 0 || dk__buf_append(b, ":", 1) < 0 ||
            dk__json_write(b, w != NULL ? w : v) < 0)
            return DK_ENOMEM;
        *first = false;
    }
    return 0;
}

static int format_pretty(dk__buf *b, const dk_log_entry *e, bool color)
{
    char ts[32];
    int lv = level_ok((int)e->level) ? (int)e->level : DK_LOG_ERROR;
    int rc;

    dk_iso8601(e->wall_ms, ts, sizeof(ts));
    rc = dk__buf_appendf(b, "%s[%.12s] %s%s ", color ? level_colors[lv] : "", ts + 11,
                         level_ok((int)e->level) ? level_padded[lv] : "?????",
                         color ? COLOR_RESET : "");
    if (rc == 0)
        rc = append_escaped(b, e->message);
    if (rc < 0)
        return rc;

    /* data, then the context's keys that data does not have: the compact
     * JSON of the two merged (context wins a shared key). */
    const json_t *data = json_is_object(e->data) ? e->data : NULL;
    const json_t *ctx = json_is_object(e->context) ? e->context : NULL;
    if (json_object_size(data) + json_object_size(ctx) == 0)
        return 0;
    bool first = true;
    if (dk__buf_appends(b, color ? " " COLOR_GRAY : " ") < 0)
        return DK_ENOMEM;
    if (data != NULL && put_members(b, data, ctx, &first) < 0)
        return DK_ENOMEM;
    if (ctx != NULL) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)ctx, k, v)
        {
            if (data != NULL && json_object_get(data, k) != NULL)
                continue;
            if (dk__buf_append(b, first ? "{" : ",", 1) < 0 ||
                dk__json_write_string(b, k, strlen(k)) < 0 || dk__buf_append(b, ":", 1) < 0 ||
                dk__json_write(b, v) < 0)
                return DK_ENOMEM;
            first = false;
        }
    }
    return dk__buf_appends(b, color ? "}" COLOR_RESET : "}");
}

/* Formats an entry whose strings are known to be valid UTF-8. */
static int format_into(dk__buf *b, const dk_log_entry *e, dk_log_format format, bool color)
{
    return format == DK_LOG_JSON ? format_json(b, e) : format_pretty(b, e, color);
}

char *dk_log_format_entry(const dk_log_entry *entry, dk_log_format format, bool color)
{
    if (entry == NULL)
        return NULL;
    clean_opts o = {.keys = NULL, .nkeys = 0};
    dk_log_entry e = *entry;
    const char *msg = entry->message ? entry->message : "";
    char *fixed = utf8_valid(msg, strlen(msg)) ? NULL : utf8_fix(msg, strlen(msg), NULL);
    json_t *data = e.data ? clean((json_t *)e.data, &o, 0) : NULL;
    json_t *ctx = e.context ? clean((json_t *)e.context, &o, 0) : NULL;
    dk__buf b = {0};
    int rc = DK_ENOMEM;

    if ((fixed || utf8_valid(msg, strlen(msg))) && (data || !e.data) && (ctx || !e.context)) {
        e.message = fixed ? fixed : msg;
        e.data = data;
        e.context = ctx;
        rc = format_into(&b, &e, format, color);
        if (rc == 0 && b.data == NULL)
            rc = dk__buf_append(&b, "", 0);
    }
    free(fixed);
    json_decref(data);
    json_decref(ctx);
    if (rc < 0) {
        dk__buf_free(&b);
        return NULL;
    }
    return b.data;
}

/* ---- console: bounded queue and writer thread -------------------------------------------- */

static void *console_main(void *arg)
{
    log_console *c = arg;
    log_line batch[LOG_WRITER_BATCH];

    dk__thread_name("dk-log");
    pthread_mutex_lock(&c->lock);
    for (;;) {
        while (c->count == 0 && !c->stop) {
            c->idle = true;
            pthread_cond_wait(&c->work, &c->lock);
        }
        c->idle = false;
        if (c->count == 0)
            break;
        size_t n = c->count < LOG_WRITER_BATCH ? c->count : LOG_WRITER_BATCH;
        for (size_t i = 0; i < n; i++) {
            batch[i] = c->ring[c->head];
            c->head = (c->head + 1) % c->cap;
        }
        c->count -= n;
        pthread_mutex_unlock(&c->lock);

        /* Outside the lock: a stalled terminal only stalls this thread. */
        for (size_t i = 0; i < n; i++) {
            fwrite(batch[i].text, 1, batch[i].len, c->out);
            free(batch[i].text);
        }
        fflush(c->out);

        pthread_mutex_lock(&c->lock);
        c->written += n;
        if (c->flushers > 0)
            pthread_cond_broadcast(&c->done);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

static void console_push(log_console *c, char *text, size_t len)
{
    pthread_mutex_lock(&c->lock);
    if (c->count == c->cap || c->stop) {
        pthread_mutex_unlock(&c->lock);
        atomic_fetch_add(&c->dropped, 1);
        free(text);
        return;
    }
    c->ring[(c->head + c->count) % c->cap] = (log_line){text, len};
    c->count++;
    c->pushed++;
    /* One wake-up per burst: a busy writer takes what is queued when it
     * comes back for more (a futex wake per line halved request rates). */
    if (c->idle) {
        c->idle = false;
        pthread_cond_signal(&c->work);
    }
    pthread_mutex_unlock(&c->lock);
}

static void console_log(const dk_log_entry *entry, void *user)
{
    log_console *c = user;
    dk__buf b = {0};

    if (format_into(&b, entry, c->format, c->color) < 0 || dk__buf_append(&b, "\n", 1) < 0) {
        dk__buf_free(&b);
        atomic_fetch_add(&c->dropped, 1);
        return;
    }
    console_push(c, b.data, b.len);
}

static void console_flush(log_console *c)
{
    pthread_mutex_lock(&c->lock);
    uint64_t target = c->pushed;
    c->flushers++;
    while (c->written < target)
        pthread_cond_wait(&c->done, &c->lock);
    c->flushers--;
    pthread_mutex_unlock(&c->lock);
}

static bool want_color(FILE *out)
{
    const char *no_color = getenv("NO_COLOR");
    if (no_color != NULL && no_color[0] != '\0')
        return false;
    return isatty(fileno(out)) == 1;
}

static log_console *console_new(FILE *out, dk_log_format format, size_t cap)
{
    log_console *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->ring = calloc(cap, sizeof(*c->ring));
    if (c->ring == NULL)
        goto fail_free;
    c->cap = cap;
    c->out = out;
    c->format = format;
    c->color = format == DK_LOG_PRETTY && want_color(out);
    atomic_init(&c->dropped, 0);
    if (pthread_mutex_init(&c->lock, NULL) != 0)
        goto fail_ring;
    if (pthread_cond_init(&c->work, NULL) != 0)
        goto fail_lock;
    if (pthread_cond_init(&c->done, NULL) != 0)
        goto fail_work;

    /* The writer blocks every signal: SIGHUP and friends go to the application's
     * threads, and a closed pipe yields EPIPE here instead of killing the process. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&c->thread, NULL, console_main, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        goto fail_done;
    return c;

fail_done:
    pthread_cond_destroy(&c->done);
fail_work:
    pthread_cond_destroy(&c->work);
fail_lock:
    pthread_mutex_destroy(&c->lock);
fail_ring:
    free(c->ring);
fail_free:
    free(c);
    return NULL;
}

/* Writes out everything still queued, then stops and joins the writer. */
static void console_free(log_console *c)
{
    pthread_mutex_lock(&c->lock);
    c->stop = true;
    pthread_cond_signal(&c->work);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    pthread_cond_destroy(&c->done);
    pthread_cond_destroy(&c->work);
    pthread_mutex_destroy(&c->lock);
    free(c->ring);
    free(c);
}

/* ---- families and loggers ---------------------------------------------------------------- */

static void free_keys(char **keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
}

static int copy_keys(const char *const *keys, char ***out, size_t *out_n)
{
    size_t n = 0;
    while (keys != NULL && keys[n] != NULL)
        n++;
    char **copy = calloc(n + 1, sizeof(*copy));
    if (copy == NULL)
        return DK_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        copy[i] = strdup(keys[i]);
        if (copy[i] == NULL) {
            free_keys(copy, i);
            return DK_ENOMEM;
        }
    }
    *out = copy;
    *out_n = n;
    return 0;
}

static log_family *family_new(void)
{
    log_family *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    if (copy_keys(default_redact, &f->redact, &f->nredact) < 0)
        goto fail_free;
    if (pthread_mutex_init(&f->list_lock, NULL) != 0)
        goto fail_keys;
    if (pthread_rwlock_init(&f->redact_lock, NULL) != 0)
        goto fail_list;
    atomic_init(&f->refs, 1);
    atomic_init(&f->head, NULL);
    atomic_init(&f->reopen_gen, 0);
    return f;

fail_list:
    pthread_mutex_destroy(&f->list_lock);
fail_keys:
    free_keys(f->redact, f->nredact);
fail_free:
    free(f);
    return NULL;
}

static void family_release(log_family *f)
{
    if (atomic_fetch_sub(&f->refs, 1) != 1)
        return;
    /* Drain the console first: it may still hold lines formatted earlier. */
    if (f->console != NULL)
        console_free(f->console);
    log_node *n = atomic_load(&f->head);
    while (n != NULL) {
        log_node *next = atomic_load(&n->next);
        if (n->user_free != NULL)
            n->user_free(n->user);
        pthread_mutex_destroy(&n->lock);
        free(n);
        n = next;
    }
    pthread_rwlock_destroy(&f->redact_lock);
    pthread_mutex_destroy(&f->list_lock);
    free_keys(f->redact, f->nredact);
    free(f);
}

static int family_add(log_family *f, dk_log_fn fn, void *user, dk_free_fn user_free, bool serialise)
{
    log_node *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return DK_ENOMEM;
    if (pthread_mutex_init(&n->lock, NULL) != 0) {
        free(n);
        return DK_ENOMEM;
    }
    n->fn = fn;
    n->user = user;
    n->user_free = user_free;
    n->serialise = serialise;
    atomic_init(&n->next, NULL);

    /* Readers walk the list without the lock; nodes are only ever appended and
     * are published with release stores after they are fully initialised. */
    pthread_mutex_lock(&f->list_lock);
    if (f->tail == NULL)
        atomic_store_explicit(&f->head, n, memory_order_release);
    else
        atomic_store_explicit(&f->tail->next, n, memory_order_release);
    f->tail = n;
    pthread_mutex_unlock(&f->list_lock);
    return 0;
}

static dk_logger *logger_new(log_family *f, int level, json_t *context)
{
    dk_logger *lg = calloc(1, sizeof(*lg));
    if (lg == NULL)
        return NULL;
    lg->fam = f;
    lg->level = level;
    lg->context = context;
    return lg;
}

dk_logger *dk_logger_new_empty(dk_log_level level)
{
    log_family *f = family_new();
    if (f == NULL)
        return NULL;
    dk_logger *lg = logger_new(f, level_ok((int)level) ? (int)level : DK_LOG_INFO, NULL);
    if (lg == NULL)
        family_release(f);
    return lg;
}

dk_logger *dk_logger_new(dk_log_level level, dk_log_format format, FILE *out)
{
    dk_logger *lg = dk_logger_new_empty(level);
    if (lg == NULL)
        return NULL;
    log_console *c = console_new(out ? out : stdout, format, LOG_QUEUE_LINES);
    if (c == NULL) {
        dk_logger_free(lg);
        return NULL;
    }
    lg->fam->console = c;
    /* The console formats on the caller's thread and only locks its queue, so
     * concurrent callers are not serialised around it. */
    if (family_add(lg->fam, console_log, c, NULL, false) < 0) {
        dk_logger_free(lg);
        return NULL;
    }
    return lg;
}

int dk_logger_add_transport(dk_logger *lg, dk_log_fn fn, void *user, dk_free_fn user_free)
{
    int rc =
        (lg == NULL || fn == NULL) ? DK_EINVAL : family_add(lg->fam, fn, user, user_free, true);
    if (rc < 0 && user_free != NULL)
        user_free(user);
    return rc;
}

int dk_logger_set_redact(dk_logger *lg, const char *const *keys)
{
    char **copy;
    size_t n;

    if (lg == NULL)
        return DK_EINVAL;
    if (copy_keys(keys, &copy, &n) < 0)
        return DK_ENOMEM;
    log_family *f = lg->fam;
    pthread_rwlock_wrlock(&f->redact_lock);
    char **old = f->redact;
    size_t old_n = f->nredact;
    f->redact = copy;
    f->nredact = n;
    pthread_rwlock_unlock(&f->redact_lock);
    free_keys(old, old_n);
    return 0;
}

int dk_logger_add_redact(dk_logger *lg, const char *const *keys)
{
    if (lg == NULL)
        return DK_EINVAL;
    size_t add = 0;
    while (keys != NULL && keys[add] != NULL)
        add++;
    log_family *f = lg->fam;
    pthread_rwlock_wrlock(&f->redact_lock);
    char **grown = realloc(f->redact, (f->nredact + add + 1) * sizeof(*grown));
    int rc = 0;
    if (grown == NULL) {
        rc = DK_ENOMEM;
    } else {
        f->redact = grown;
        for (size_t i = 0; i < add; i++) {
            if ((grown[f->nredact] = strdup(keys[i])) == NULL) {
                rc = DK_ENOMEM;
                break;
            }
            f->nredact++;
        }
        grown[f->nredact] = NULL;
    }
    pthread_rwlock_unlock(&f->redact_lock);
    return rc;
}

dk_logger *dk_logger_child(dk_logger *parent, const json_t *context)
{
    if (parent == NULL)
        return NULL;
    json_t *merged = json_object();
    if (merged == NULL)
        return NULL;
    /* Parent values are shared (never modified); the caller's are copied since
     * they are only borrowed. Overridden keys keep the parent's position. */
    if (parent->context != NULL && json_object_update(merged, parent->context) < 0)
        goto fail;
    if (json_is_object(context)) {
        json_t *own = json_deep_copy(context);
        int rc = own ? json_object_update(merged, own) : -1;
        json_decref(own);
        if (rc < 0)
            goto fail;
    }
    if (json_object_size(merged) == 0) {
        json_decref(merged);
        merged = NULL;
    }
    dk_logger *lg = logger_new(parent->fam, dk_logger_level(parent), merged);
    if (lg == NULL)
        goto fail;
    atomic_fetch_add(&parent->fam->refs, 1);
    return lg;

fail:
    json_decref(merged);
    return NULL;
}

void dk_logger_free(dk_logger *lg)
{
    if (lg == NULL)
        return;
    log_family *f = lg->fam;
    json_decref(lg->context);
    free(lg);
    family_release(f);
}

void dk_logger_set_level(dk_logger *lg, dk_log_level level)
{
    if (lg != NULL && level_ok((int)level))
        __atomic_store_n(&lg->level, (int)level, __ATOMIC_RELAXED);
}

dk_log_level dk_logger_level(const dk_logger *lg)
{
    if (lg == NULL)
        return DK_LOG_INFO;
    return (dk_log_level)__atomic_load_n(&lg->level, __ATOMIC_RELAXED);
}

bool dk_logger_enabled(const dk_logger *lg, dk_log_level level)
{
    return lg != NULL && level_ok((int)level) &&
           (int)level >= __atomic_load_n(&lg->level, __ATOMIC_RELAXED);
}

/* ---- logging ----------------------------------------------------------------------------- */

static bool dispatching(const log_family *f)
{
    for (const dispatch_frame *fr = tls_dispatch; fr != NULL; fr = fr->prev)
        if (fr->fam == f)
            return true;
    return false;
}

void dk_log(dk_logger *lg, dk_log_level level, const char *message, json_t *data)
{
    if (!dk_logger_enabled(lg, level)) {
        json_decref(data);
        return;
    }
    log_family *f = lg->fam;
    log_node *head = atomic_load_explicit(&f->head, memory_order_acquire);
    if (head == NULL || dispatching(f)) {
        json_decref(data);
        return;
    }

    int64_t now = dk_wall_ms();
    if (data != NULL && !json_is_object(data)) {
        json_t *wrap = json_object();
        if (wrap != NULL && json_object_set_new(wrap, "data", data) < 0) {
            json_decref(wrap);
            wrap = NULL;
        } else if (wrap == NULL) {
            json_decref(data);
        }
        data = wrap;
    }

    /* On allocation failure a part is left out rather than passed unredacted. */
    clean_opts o;
    pthread_rwlock_rdlock(&f->redact_lock);
    o.keys = f->redact;
    o.nkeys = f->nredact;
    json_t *cdata = data != NULL ? clean(data, &o, 0) : NULL;
    json_t *cctx = lg->context != NULL ? clean(lg->context, &o, 0) : NULL;
    pthread_rwlock_unlock(&f->redact_lock);
    json_decref(data);
    /* Work done for a request (or a job it enqueued): its trace ids, unless
     * the line already names a trace (docs/observability.md). */
    const dk__trace *tr = dk__trace_current();
    if (tr != NULL && json_object_get(cdata, "trace_id") == NULL &&
        json_object_get(cctx, "trace_id") == NULL) {
        /* cctx may be the logger's own context object: a shallow copy. */
        json_t *nc = cctx != NULL ? json_copy(cctx) : json_object();
        if (nc != NULL) {
            json_object_set_new(nc, "trace_id", json_string(tr->trace_id));
            json_object_set_new(nc, "span_id", json_string(tr->span_id));
            json_decref(cctx);
            cctx = nc;
        }
    }

    if (message == NULL)
        message = "";
    char *fixed =
        utf8_valid(message, strlen(message)) ? NULL : utf8_fix(message, strlen(message), NULL);
    dk_log_entry e = {
        .wall_ms = now,
        .level = level,
        .message = fixed ? fixed : (utf8_valid(message, strlen(message)) ? message : ""),
        .data = cdata,
        .context = cctx,
    };

    dispatch_frame frame = {f, tls_dispatch};
    tls_dispatch = &frame;
    for (log_node *n = head; n != NULL; n = atomic_load_explicit(&n->next, memory_order_acquire)) {
        if (n->serialise)
            pthread_mutex_lock(&n->lock);
        n->fn(&e, n->user);
        if (n->serialise)
            pthread_mutex_unlock(&n->lock);
    }
    tls_dispatch = frame.prev;

    free(fixed);
    json_decref(cdata);
    json_decref(cctx);
}

void dk_logf(dk_logger *lg, dk_log_level level, const char *fmt, ...)
{
    char small[256];
    char *msg = small;
    va_list ap;

    if (!dk_logger_enabled(lg, level) || fmt == NULL)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(small)) {
        msg = malloc((size_t)n + 1);
        if (msg == NULL)
            return;
        va_start(ap, fmt);
        vsnprintf(msg, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    dk_log(lg, level, msg, NULL);
    if (msg != small)
        free(msg);
}

void dk_logger_flush(dk_logger *lg)
{
    if (lg != NULL && lg->fam->console != NULL)
        console_flush(lg->fam->console);
}

uint64_t dk_logger_dropped(const dk_logger *lg)
{
    if (lg == NULL || lg->fam->console == NULL)
        return 0;
    return atomic_load(&lg->fam->console->dropped);
}

/* ---- file transport ---------------------------------------------------------------------- */

typedef struct log_file {
    char *path;
    FILE *fp;
    dk_log_format format;
    unsigned gen;
    log_family *fam; /* outlives the transport */
} log_file;

static void file_free(void *user)
{
    log_file *lf = user;
    if (lf->fp != NULL)
        fclose(lf->fp);
    free(lf->path);
    free(lf);
}

static void file_log(const dk_log_entry *entry, void *user)
{
    log_file *lf = user;
    unsigned gen = atomic_load(&lf->fam->reopen_gen);
    dk__buf b = {0};

    if (gen != lf->gen || lf->fp == NULL) {
        if (lf->fp != NULL)
            fclose(lf->fp);
        lf->fp = fopen(lf->path, "ae");
        lf->gen = gen;
    }
    if (lf->fp == NULL)
        return;
    if (format_into(&b, entry, lf->format, false) == 0 && dk__buf_append(&b, "\n", 1) == 0) {
        fwrite(b.data, 1, b.len, lf->fp);
        fflush(lf->fp);
    }
    dk__buf_free(&b);
}

int dk_logger_add_file(dk_logger *lg, const char *path, dk_log_format format)
{
    if (lg == NULL || path == NULL || path[0] == '\0')
        return DK_EINVAL;
    log_file *lf = calloc(1, sizeof(*lf));
    if (lf == NULL)
        return DK_ENOMEM;
    lf->path = strdup(path);
    if (lf->path == NULL) {
        free(lf);
        return DK_ENOMEM;
    }
    lf->format = format;
    lf->fam = lg->fam;
    lf->gen = atomic_load(&lg->fam->reopen_gen);
    lf->fp = fopen(path, "ae");
    if (lf->fp == NULL) {
        file_free(lf);
        return DK_EIO;
    }
    return dk_logger_add_transport(lg, file_log, lf, file_free);
}

void dk_logger_reopen(dk_logger *lg)
{
    if (lg != NULL)
        atomic_fetch_add(&lg->fam->reopen_gen, 1);
}
