/* Database layer internals shared by db.c and the engines. Not installed. */
#ifndef DK_DB_INTERNAL_H
#define DK_DB_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "donkey/db.h"

/* One engine. Connections are opaque `void *`; db.c's pool guarantees that a
 * connection is used by one thread at a time. Every failing operation sets the
 * thread's error message with dk__db_seterr() and returns a DK_E* code. */
typedef struct dk__db_engine {
    const char *name;
    const char *begin_sql; /* outermost BEGIN */
    /* Parses the URL into engine configuration (*out_cfg, freed with
     * free_cfg) and the pool size. */
    int (*parse)(const char *url, void **out_cfg, int *out_max_conns, dk_err *err);
    void (*free_cfg)(void *cfg);
    int (*connect)(void *cfg, void **out_conn);
    void (*disconnect)(void *conn);
    /* false when the connection is known to be broken (PostgreSQL lost it). */
    bool (*usable)(void *conn);
    int (*exec)(void *conn, const char *sql, const json_t *params, int64_t *out_changes,
                int64_t *out_last_id);
    /* max_rows 0: all rows. */
    int (*query)(void *conn, const char *sql, const json_t *params, size_t max_rows,
                 json_t **out_rows);
    int (*script)(void *conn, const char *sql);
} dk__db_engine;

extern const dk__db_engine dk__db_sqlite;
extern const dk__db_engine dk__db_pg;

/** Records `msg` (printf-style) as the calling thread's last database error
 *  and returns `code`. */
int dk__db_seterr(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** One column of the current result row, for dk__db_add_row(): sets `*name`
 *  (borrowed) and returns the value as a new reference, or NULL when the
 *  column cannot be converted to JSON. */
typedef json_t *(*dk__db_cell_fn)(void *row, int col, const char **name);

/** Appends one row object {name: value} of `ncol` columns read with `cell`
 *  to `rows`. A column `cell` cannot convert fails with DK_EDB and the
 *  message `bad_fmt` (printf-style, one %s: the column's name). Returns 0 or
 *  the code dk__db_seterr() recorded (DK_ENOMEM, DK_EDB). Shared by the
 *  engines so that rows look the same whichever database answers. */
int dk__db_add_row(json_t *rows, int ncol, dk__db_cell_fn cell, void *row, const char *bad_fmt);

/** Rewrites `?` placeholders to $1..$n outside quotes, comments and dollar
 *  quoting. On 0, *out is malloc'ed (caller frees) and *out_count the number of
 *  placeholders. DK_ENOMEM otherwise. */
int dk__db_rewrite_placeholders(const char *sql, char **out, int *out_count);

/** If `p` starts an SQL comment (`--` to the end of the line, or a block
 *  comment, nested as PostgreSQL allows), returns the first byte after it;
 *  otherwise `p`. */
const char *dk__sql_comment_end(const char *p);

/** Sets the most connections `db` opens (the application's --db-pool). An
 *  in-memory SQLite database keeps its single connection. */
void dk__db_set_pool_size(dk_db *db, int n);

#endif
