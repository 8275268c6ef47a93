/* Compiled-in schema migrations, tracked per plugin in donkey_migrations
 * together with the SHA-256 of the text that ran, so that an applied
 * migration edited afterwards is a start-up error instead of SQL that
 * silently never runs. */
#include <ctype.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/internal.h"

static const char create_table_sql[] =
    "CREATE TABLE IF NOT EXISTS donkey_migrations ("
    " plugin TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " applied_at TEXT NOT NULL,"
    " checksum TEXT,"
    " PRIMARY KEY (plugin, name))";

typedef struct mig_run {
    const char *plugin;
    const dk_migration *mig;
    char name[160];
    char sum[2 * SHA256_DIGEST_LENGTH + 1];
    bool skipped; /* another process applied it first */
} mig_run;

static int cmp_number(const void *a, const void *b)
{
    const dk_migration *x = *(const dk_migration *const *)a;
    const dk_migration *y = *(const dk_migration *const *)b;
    return (x->number > y->number) - (x->number < y->number);
}

/* The text to run on `db`'s engine: `sql_postgres` on PostgreSQL when the
 * migration has one, `sql` otherwise. */
static const char *migration_sql(dk_db *db, const dk_migration *mig)
{
    if (mig->sql_postgres != NULL && strcmp(dk_db_engine(db), "postgres") == 0)
        return mig->sql_postgres;
    return mig->sql;
}

/* Hex SHA-256 of `text` into `out` (65 bytes). */
static void checksum(const char *text, char *out)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)text, strlen(text), md);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

const char *dk__sql_comment_end(const char *p)
{
    if (p[0] == '-' && p[1] == '-') {
        while (*p && *p != '\n')
            p++;
    } else if (p[0] == '/' && p[1] == '*') {
        int depth = 0; /* PostgreSQL block comments nest */
        do {
            if (p[0] == '/' && p[1] == '*') {
                depth++;
                p += 2;
            } else if (p[0] == '*' && p[1] == '/') {
                depth--;
                p += 2;
            } else {
                p++;
            }
        } while (*p && depth > 0);
    }
    return p;
}

/* True when `sql` holds something besides whitespace, semicolons and
 * comments. */
static bool has_statement(const char *sql)
{
    for (const char *p = sql; *p;) {
        const char *next = dk__sql_comment_end(p);
        if (next != p)
            p = next;
        else if (isspace((unsigned char)*p) || *p == ';')
            p++;
        else
            return true;
    }
    return false;
}

/* Adds the checksum column to a donkey_migrations table created before it
 * existed. Two processes may race here; the loser's ALTER fails, so the
 * column is looked up again before that counts as an error. */
static int upgrade_table(dk_db *db)
{
    if (strcmp(dk_db_engine(db), "postgres") == 0)
        return dk_db_exec_script(
            db, "ALTER TABLE donkey_migrations ADD COLUMN IF NOT EXISTS checksum TEXT");
    static const char has_col[] =
        "SELECT name FROM pragma_table_info('donkey_migrations') WHERE name = 'checksum'";
    json_t *row = NULL;
    int rc = dk_db_query_one(db, has_col, NULL, &row);
    json_decref(row);
    if (rc != DK_ENOTFOUND)
        return rc;
    rc = dk_db_exec_script(db, "ALTER TABLE donkey_migrations ADD COLUMN checksum TEXT");
    if (rc != 0) {
        row = NULL;
        if (dk_db_query_one(db, has_col, NULL, &row) == 0)
            rc = 0;
        json_decref(row);
    }
    return rc;
}

/* Runs inside the migration's transaction: checks again that it is pending
 * (another instance may have applied it meanwhile), then applies and records it. */
static int apply_one(dk_db *db, void *user)
{
    mig_run *run = user;
    json_t *row = NULL;
    int rc;

    if (strcmp(dk_db_engine(db), "postgres") == 0) {
        /* Serialises concurrent start-ups; SQLite's BEGIN IMMEDIATE already does. */
        rc = dk_db_exec_script(db, "LOCK TABLE donkey_migrations IN EXCLUSIVE MODE");
        if (rc != 0)
            return rc;
    }
    json_t *key = json_pack("[ss]", run->plugin, run->name);
    if (key == NULL)
        return DK_ENOMEM;
    rc = dk_db_query_one(db, "SELECT name FROM donkey_migrations WHERE plugin = ? AND name = ?",
                         key, &row);
    json_decref(key);
    json_decref(row);
    if (rc == 0) {
        run->skipped = true;
        return 0;
    }
    if (rc != DK_ENOTFOUND)
        return rc;

    rc = dk_db_exec_script(db, migration_sql(db, run->mig));
    if (rc != 0)
        return rc;

    char when[32];
    dk_iso8601(dk_wall_ms(), when, sizeof(when));
    json_t *rec = json_pack("[ssss]", run->plugin, run->name, when, run->sum);
    if (rec == NULL)
        return DK_ENOMEM;
    rc = dk_db_exec(db,
                    "INSERT INTO donkey_migrations (plugin, name, applied_at, checksum)"
                    " VALUES (?, ?, ?, ?)",
                    rec, NULL, NULL);
    json_decref(rec);
    return rc;
}

int dk_db_migrate(dk_db *db, const char *plugin, const dk_migration *migs, size_t n,
                  dk_logger *log, dk_err *err)
{
    if (db == NULL || plugin == NULL || *plugin == '\0' || (n > 0 && migs == NULL))
        return dk_err_set(err, DK_EINVAL, "migrations: missing database, plugin or list");
    for (size_t i = 0; i < n; i++) {
        if (migs[i].name == NULL || migs[i].sql == NULL || migs[i].number < 0)
            return dk_err_set(err, DK_EINVAL,
                              "plugin '%s': migration #%zu needs a number >= 0, a name and SQL",
                              plugin, i);
    }
    if (n == 0)
        return 0;

    const dk_migration **order = malloc(n * sizeof(*order));
    if (order == NULL)
        return dk_err_set(err, DK_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        order[i] = &migs[i];
    qsort(order, n, sizeof(*order), cmp_number);
    for (size_t i = 1; i < n; i++) {
        if (order[i]->number == order[i - 1]->number) {
            dk_err_set(err, DK_EINVAL,
                       "plugin '%s': duplicate migration number %03d ('%s' and '%s')", plugin,
                       order[i]->number, order[i - 1]->name, order[i]->name);
            free(order);
            return DK_EINVAL;
        }
    }

    int rc = dk_db_exec_script(db, create_table_sql);
    if (rc == 0)
        rc = upgrade_table(db);
    if (rc != 0) {
        dk_err_set(err, rc, "plugin '%s': cannot create donkey_migrations: %s", plugin,
                   dk_db_errmsg(db));
        free(order);
        return rc;
    }

    json_t *applied = NULL;
    json_t *key = json_pack("[s]", plugin);
    rc = key ? dk_db_query(db, "SELECT name, checksum FROM donkey_migrations WHERE plugin = ?",
                           key, &applied)
             : DK_ENOMEM;
    json_decref(key);
    if (rc != 0) {
        dk_err_set(err, rc, "plugin '%s': cannot read donkey_migrations: %s", plugin,
                   rc == DK_ENOMEM ? "out of memory" : dk_db_errmsg(db));
        free(order);
        return rc;
    }

    dk_err e = {0};
    mig_run *runs = calloc(n, sizeof(*runs));
    bool *done = calloc(n, sizeof(*done));
    if (runs == NULL || done == NULL) {
        rc = dk_err_set(err, DK_ENOMEM, "out of memory");
        goto out;
    }
    /* Before anything runs: applied migrations must be unchanged (rows
     * recorded before checksums existed get today's text), pending ones must
     * hold a statement. */
    for (size_t i = 0; i < n && rc == 0; i++) {
        mig_run *run = &runs[i];
        run->plugin = plugin;
        run->mig = order[i];
        snprintf(run->name, sizeof(run->name), "%03d_%s", order[i]->number, order[i]->name);
        const char *sql = migration_sql(db, order[i]);
        checksum(sql, run->sum);
        size_t j;
        json_t *row;
        json_array_foreach(applied, j, row) {
            const char *name = json_string_value(json_object_get(row, "name"));
            if (name == NULL || strcmp(name, run->name) != 0)
                continue;
            done[i] = true;
            const char *sum = json_string_value(json_object_get(row, "checksum"));
            if (sum == NULL) {
                json_t *fill = json_pack("[sss]", run->sum, plugin, run->name);
                rc = fill ? dk_db_exec(db,
                                       "UPDATE donkey_migrations SET checksum = ? WHERE plugin = ?"
                                       " AND name = ? AND checksum IS NULL",
                                       fill, NULL, NULL)
                          : DK_ENOMEM;
                json_decref(fill);
                if (rc != 0)
                    dk_err_set(&e, rc, "plugin '%s': cannot record the checksum of %s: %s",
                               plugin, run->name,
                               rc == DK_ENOMEM ? "out of memory" : dk_db_errmsg(db));
            } else if (strcmp(sum, run->sum) != 0) {
                rc = dk_err_set(&e, DK_EINVAL,
                                "plugin '%s': migration %s was edited after it was applied "
                                "(checksum differs from donkey_migrations); restore it and "
                                "write a new migration instead",
                                plugin, run->name);
            }
        }
        if (rc == 0 && !done[i] && !has_statement(sql))
            rc = dk_err_set(&e, DK_EINVAL,
                            "plugin '%s': migration %s has no SQL statement (only whitespace or "
                            "comments); write its SQL first (an empty migration would be "
                            "recorded as applied)",
                            plugin, run->name);
    }
    if (rc != 0) {
        if (err != NULL)
            *err = e;
        if (log != NULL)
            dk_logf(log, DK_LOG_ERROR, "%s", e.message);
        goto out;
    }

    for (size_t i = 0; i < n && rc == 0; i++) {
        mig_run *run = &runs[i];
        if (done[i])
            continue;
        rc = dk_db_transaction(db, apply_one, run);
        if (rc != 0) {
            const char *msg = dk_db_errmsg(db);
            dk_err_set(&e, rc, "plugin '%s': migration %s failed: %s", plugin, run->name,
                       *msg ? msg : dk_strerror(rc));
            if (err != NULL)
                *err = e;
            if (log != NULL)
                dk_logf(log, DK_LOG_ERROR, "%s", e.message);
        } else if (log != NULL && !run->skipped) {
            dk_logf(log, DK_LOG_INFO, "applied migration %s/%s", plugin, run->name);
        }
    }
out:
    free(runs);
    free(done);
    json_decref(applied);
    free(order);
    return rc;
}
