/* donkey: structured logger.
 *
 * Levels debug < info < warn < error. Each entry has a timestamp, a level, a
 * message, optional per-call data (a JSON object) and the logger's context
 * (a JSON object bound by dk_logger_child()). Transports receive whole
 * entries; the console transport formats "pretty" (colour only on a terminal
 * and without NO_COLOR) or JSON lines, and writes from its own thread through a
 * bounded queue, so a slow terminal never stalls the caller (entries beyond
 * the queue are dropped and counted). All functions: any thread. */
#ifndef DONKEY_LOG_H
#define DONKEY_LOG_H

#include <stdio.h>
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { DK_LOG_DEBUG = 0, DK_LOG_INFO = 1, DK_LOG_WARN = 2, DK_LOG_ERROR = 3 } dk_log_level;
typedef enum { DK_LOG_PRETTY = 0, DK_LOG_JSON = 1 } dk_log_format;

/** One entry as handed to a transport. Everything is borrowed for the call. */
typedef struct dk_log_entry {
    int64_t wall_ms;      /* ms since the epoch, UTC */
    dk_log_level level;
    const char *message;  /* never NULL */
    const json_t *data;   /* object or NULL */
    const json_t *context;/* object or NULL when empty */
} dk_log_entry;

/** A transport: `log` gets each entry that passes the level, synchronously on
 *  the logging thread (calls to one transport are serialised by the logger, and
 *  no other logger lock is held). A transport must not log to a logger of its
 *  own family: such nested entries are dropped. */
typedef void (*dk_log_fn)(const dk_log_entry *entry, void *user);

typedef struct dk_logger dk_logger;

/** Parses "debug"/"info"/"warn"/"error"; returns 0 or DK_EINVAL. */
DK_API int dk_log_level_parse(const char *text, dk_log_level *out);
DK_API const char *dk_log_level_name(dk_log_level level);

/** New root logger with a console transport writing `format` to `out`
 *  (NULL = stdout). Caller frees with dk_logger_free(). NULL if out of memory. */
DK_API dk_logger *dk_logger_new(dk_log_level level, dk_log_format format, FILE *out);

/** New root logger with no transport (add some with dk_logger_add_transport()). */
DK_API dk_logger *dk_logger_new_empty(dk_log_level level);

/** Adds a transport to the logger's shared transport list (children share it).
 *  `user_free` runs once when the last logger using the list is freed, or now
 *  if this call fails. Returns 0 or DK_ENOMEM. */
DK_API int dk_logger_add_transport(dk_logger *lg, dk_log_fn fn, void *user, dk_free_fn user_free);

/** Keys whose values are replaced by "[REDACTED]" in data and context
 *  (case-insensitive, at any depth). Defaults: password, token, authorization,
 *  proxy-authorization, secret, client_secret, api_key, apikey, api-key,
 *  x-api-key, access_token, refresh_token, cookie, set-cookie. This call
 *  replaces the whole list. `keys` is copied; NULL-terminated. Applies to the
 *  whole logger family. Returns 0, DK_EINVAL or DK_ENOMEM. Any thread. */
DK_API int dk_logger_set_redact(dk_logger *lg, const char *const *keys);

/** Adds `keys` (copied; NULL-terminated) to the family's redaction list.
 *  On DK_ENOMEM the keys added before the failure stay. Any thread. */
DK_API int dk_logger_add_redact(dk_logger *lg, const char *const *keys);

/** Child logger: same level and transports, context = parent's context merged
 *  with `context` (borrowed; child keys win). Caller frees with dk_logger_free()
 *  (the parent may be freed first). NULL if out of memory. */
DK_API dk_logger *dk_logger_child(dk_logger *parent, const json_t *context);

/** Frees a logger; the console writer is flushed when the last logger of the
 *  family goes. NULL is ignored. */
DK_API void dk_logger_free(dk_logger *lg);

DK_API void dk_logger_set_level(dk_logger *lg, dk_log_level level);
DK_API dk_log_level dk_logger_level(const dk_logger *lg);
DK_API bool dk_logger_enabled(const dk_logger *lg, dk_log_level level);

/** Logs `message` with `data` (a JSON object or NULL; stolen, released even
 *  when the level filters the entry out). Fields named timestamp, level or
 *  message in data/context never overwrite those: they are written as
 *  "data.<name>" / "context.<name>". */
DK_API void dk_log(dk_logger *lg, dk_log_level level, const char *message, json_t *data);

/** printf-style convenience without data. */
DK_API void dk_logf(dk_logger *lg, dk_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Blocks until every queued console line is written. */
DK_API void dk_logger_flush(dk_logger *lg);

/** Entries dropped by the console queue since start. */
DK_API uint64_t dk_logger_dropped(const dk_logger *lg);

/** Formats an entry exactly as the console would (no trailing newline) into a
 *  malloc'd string the caller frees with free(). `color` selects ANSI colours
 *  for the pretty format. NULL if out of memory. */
DK_API char *dk_log_format_entry(const dk_log_entry *entry, dk_log_format format, bool color);

/** Adds a transport appending one `format` line per entry (JSON lines, or pretty
 *  without colours) to the file at `path` (copied; created if missing, opened
 *  with O_APPEND). Lines are written and flushed synchronously on the caller's
 *  thread. The file is reopened before the next line after dk_logger_reopen().
 *  Returns 0, DK_EINVAL, DK_EIO (cannot open; errno is kept) or DK_ENOMEM. */
DK_API int dk_logger_add_file(dk_logger *lg, const char *path, dk_log_format format);

/** Makes every file transport of the logger's family reopen its file before
 *  writing its next line (log rotation). Async-signal-safe: may be called from
 *  a SIGHUP handler. */
DK_API void dk_logger_reopen(dk_logger *lg);

#define dk_log_debug(lg, msg, data) dk_log((lg), DK_LOG_DEBUG, (msg), (data))
#define dk_log_info(lg, msg, data) dk_log((lg), DK_LOG_INFO, (msg), (data))
#define dk_log_warn(lg, msg, data) dk_log((lg), DK_LOG_WARN, (msg), (data))
#define dk_log_error(lg, msg, data) dk_log((lg), DK_LOG_ERROR, (msg), (data))

#ifdef __cplusplus
}
#endif
#endif
