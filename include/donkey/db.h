/* donkey: the database layer. One interface, two engines chosen by URL:
 *
 *   sqlite:PATH              a file, relative to the working directory
 *   sqlite:///abs/path       a file, absolute path
 *   sqlite::memory:          one in-memory database shared by every thread
 *   postgres://user:pass@host:port/db   (also postgresql://; handed to libpq)
 *
 * Values never go into SQL text: statements use `?` placeholders and take
 * their parameters as a JSON array. The same SQL runs on both engines; for
 * PostgreSQL each `?` outside string literals, quoted identifiers, comments
 * and dollar-quoted bodies becomes $1, $2, ... (so PostgreSQL's jsonb `?`
 * operators must be written as functions, e.g. jsonb_exists()).
 *
 * Threads: every function may be called from any thread. Each call checks a
 * connection out of the handle's pool and returns it afterwards, except inside
 * a transaction: dk_db_begin() binds a connection to the calling thread until
 * the outermost dk_db_commit()/dk_db_rollback(), and every call on that thread
 * uses it. A transaction therefore belongs to one thread and must be ended on
 * that thread. See docs/database.md. */
#ifndef DONKEY_DB_H
#define DONKEY_DB_H

#include "common.h"
#include "log.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dk_db dk_db;

/** Opens the database named by `url` (borrowed for the call) and checks that
 *  one connection works. Returns a handle the caller frees with dk_db_close(),
 *  or NULL with `err` (may be NULL) filled: DK_EINVAL (unknown scheme, empty
 *  path), DK_EUNAVAILABLE (cannot connect/open), DK_ENOMEM. Any thread. */
DK_API dk_db *dk_db_open(const char *url, dk_err *err);

/** Closes every connection and frees the handle. No call may be running and
 *  no transaction may be open on it. NULL is ignored. */
DK_API void dk_db_close(dk_db *db);

/** "sqlite" or "postgres" (static string). */
DK_API const char *dk_db_engine(const dk_db *db);

/** The engine's message for the last failed call on `db` made by the calling
 *  thread, e.g. "UNIQUE constraint failed: users.email". Thread-local buffer,
 *  valid until the next failing database call on this thread; "" when the
 *  thread's last failure was on another handle or there was none. */
DK_API const char *dk_db_errmsg(const dk_db *db);

/** Runs one statement. `params` (borrowed; NULL for none) is a JSON array
 *  whose values bind to the `?` placeholders in order: string -> text,
 *  integer -> 64-bit integer, real -> double, true/false -> boolean (SQLite
 *  stores 1/0), null -> NULL; an object or array binds as its JSON text.
 *  `out_changes` (may be NULL) receives the number of rows changed.
 *  `out_last_id` (may be NULL) receives SQLite's last insert rowid; on
 *  PostgreSQL the value of column "id" of the first returned row when the
 *  statement has `RETURNING id`, else 0.
 *  Returns 0, DK_EINVAL (bad params, placeholder count mismatch),
 *  DK_ECONSTRAINT (unique, foreign key, check, not null), DK_EBUSY (locked,
 *  serialisation failure, no free connection), DK_EUNAVAILABLE (disk full,
 *  I/O error, PostgreSQL connection lost: the next call reconnects), DK_ENOMEM
 *  or DK_EDB; dk_db_errmsg() has the detail. Any thread. */
DK_API int dk_db_exec(dk_db *db, const char *sql, const json_t *params, int64_t *out_changes,
                      int64_t *out_last_id);

/** Runs a query. On 0, `*out_rows` is a new reference (json_decref()) to an
 *  array with one object per row, keyed by column name: integers stay JSON
 *  integers, floating point and numeric become reals, booleans (PostgreSQL)
 *  true/false, json/jsonb (PostgreSQL) parsed values, NULL null, everything
 *  else strings. On failure `*out_rows` is NULL. Parameters and errors as
 *  dk_db_exec(). Any thread. */
DK_API int dk_db_query(dk_db *db, const char *sql, const json_t *params, json_t **out_rows);

/** As dk_db_query() but keeps only the first row: on 0, `*out_row` is a new
 *  reference to that object; DK_ENOTFOUND (and NULL) when there is no row. */
DK_API int dk_db_query_one(dk_db *db, const char *sql, const json_t *params, json_t **out_row);

/** Runs SQL text holding any number of `;`-separated statements, without
 *  parameters (placeholders are not rewritten). Meant for migrations and
 *  schema set-up. Errors as dk_db_exec(). Any thread. */
DK_API int dk_db_exec_script(dk_db *db, const char *sql);

/** Starts a transaction bound to the calling thread. The outermost level runs
 *  BEGIN (SQLite: BEGIN IMMEDIATE, taking the write lock now); a nested call
 *  creates SAVEPOINT sp_<level>. Returns 0 or an error as dk_db_exec(). */
DK_API int dk_db_begin(dk_db *db);

/** Ends the innermost level: RELEASE of its savepoint, or COMMIT for the
 *  outermost. A failed COMMIT rolls the transaction back and ends it.
 *  DK_ESTATE when the calling thread has no open transaction. */
DK_API int dk_db_commit(dk_db *db);

/** Undoes the innermost level: ROLLBACK TO its savepoint (the outer levels
 *  stay open), or ROLLBACK for the outermost. The level is always ended, also
 *  when the engine reports an error. DK_ESTATE without an open transaction. */
DK_API int dk_db_rollback(dk_db *db);

/** Transaction body: runs on the calling thread; `tx` is the same handle,
 *  with the transaction bound to this thread. Return 0 to commit. */
typedef int (*dk_db_tx_fn)(dk_db *tx, void *user);

/** Runs `fn(db, user)` inside dk_db_begin()/dk_db_commit(), rolling back when
 *  `fn` returns non-zero (that value is returned). Nests like dk_db_begin().
 *  Returns 0, fn's code, or the begin/commit error. */
DK_API int dk_db_transaction(dk_db *db, dk_db_tx_fn fn, void *user);

/** Checks that the database answers (runs SELECT 1). Returns 0 or an error as
 *  dk_db_exec(). Any thread. */
DK_API int dk_db_ping(dk_db *db);

/* ------------------------------------------------------------------ */
/* Migrations                                                          */

/** One schema change, compiled into the program. `number` orders the
 *  migrations of one plugin (unique, >= 0); `name` is snake_case; `sql` is
 *  run with dk_db_exec_script(). `sql_postgres`, when not NULL, is run instead
 *  of `sql` on PostgreSQL (SQLite still runs `sql`), for DDL that differs
 *  between the engines (INTEGER PRIMARY KEY AUTOINCREMENT versus BIGSERIAL,
 *  ...); the migration is recorded under the same name either way. It is the
 *  last member, so `{1, "name", "sql"}` still means "same SQL everywhere"
 *  (list it explicitly, `{1, "name", "sql", NULL}`, where -Wextra's
 *  -Wmissing-field-initializers is an error). All strings are borrowed for
 *  the call. */
typedef struct dk_migration {
    int number;
    const char *name;
    const char *sql;
    const char *sql_postgres; /* NULL: `sql` runs on every database */
} dk_migration;

/** Brings `plugin`'s schema up to date. Creates the tracking table
 *  donkey_migrations(plugin, name, applied_at, checksum) if needed (adding
 *  `checksum` to an older table and filling it for this plugin's recorded
 *  migrations from their current text), then runs, in ascending number order,
 *  each migration of `migs` (n entries, borrowed) not yet recorded for
 *  `plugin`. Each one runs in its own transaction together with the insert of
 *  its record, named "<number as %03d>_<name>" (e.g. "001_create_notes"), with
 *  the hex SHA-256 of the text that ran. Before anything runs, DK_EINVAL with
 *  `err` naming plugin and migration when an applied migration's text no
 *  longer matches its checksum ("write a new migration instead") or a pending
 *  one has no SQL statement (only whitespace, comments and semicolons). The
 *  first failure rolls that migration back, stops,
 *  and returns its code with `err` naming the plugin, the migration and the
 *  database's message; earlier migrations stay applied. Duplicate numbers are
 *  rejected (DK_EINVAL) before anything runs. On PostgreSQL a migration with
 *  `sql_postgres` runs that text, everywhere else `sql`. `log` (may be NULL)
 *  gets one info entry per applied migration. Any thread. */
DK_API int dk_db_migrate(dk_db *db, const char *plugin, const dk_migration *migs, size_t n,
                         dk_logger *log, dk_err *err);

#ifdef __cplusplus
}
#endif
#endif
