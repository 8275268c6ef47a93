/* Compiled-in schema migrations, tracked per plugin in donkey_migrations. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char create_table_sql[] =
    "CREATE TABLE IF NOT EXISTS donkey_migrations ("
    " plugin TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " applied_at TEXT NOT NULL,"
    " PRIMARY KEY (plugin, name))";

typedef struct mig_run {
    const char *plugin;
    const dk_migration *mig;
    char name[160];
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
    json_t *rec = json_pack("[sss]", run->plugin, run->name, when);
    if (rec == NULL)
        return DK_ENOMEM;
    rc = dk_db_exec(db, "INSERT INTO donkey_migrations (plugin, name, applied_at) VALUES (?, ?, ?)",
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
    if (rc != 0) {
        dk_err_set(err, rc, "plugin '%s': cannot create donkey_migrations: %s", plugin,
                   dk_db_errmsg(db));
        free(order);
        return rc;
    }

    json_t *applied = NULL;
    json_t *key = json_pack("[s]", plugin);
    rc = key ? dk_db_query(db, "SELECT name FROM donkey_migrations WHERE plugin = ?", key,
                           &applied)
             : DK_ENOMEM;
    json_decref(key);
    if (rc != 0) {
        dk_err_set(err, rc, "plugin '%s': cannot read donkey_migrations: %s", plugin,
                   rc == DK_ENOMEM ? "out of memory" : dk_db_errmsg(db));
        free(order);
        return rc;
    }

    for (size_t i = 0; i < n && rc == 0; i++) {
        mig_run run = {.plugin = plugin, .mig = order[i]};
        snprintf(run.name, sizeof(run.name), "%03d_%s", order[i]->number, order[i]->name);

        bool done = false;
        size_t j;
        json_t *row;
        json_array_foreach(applied, j, row) {
            const char *name = json_string_value(json_object_get(row, "name"));
            if (name != NULL && strcmp(name, run.name) == 0)
                done = true;
        }
        if (done)
            continue;

        rc = dk_db_transaction(db, apply_one, &run);
        if (rc != 0) {
            const char *msg = dk_db_errmsg(db);
            dk_err e;
            dk_err_set(&e, rc, "plugin '%s': migration %s failed: %s", plugin, run.name,
                       *msg ? msg : dk_strerror(rc));
            if (err != NULL)
                *err = e;
            if (log != NULL)
                dk_logf(log, DK_LOG_ERROR, "%s", e.message);
        } else if (log != NULL && !run.skipped) {
            dk_logf(log, DK_LOG_INFO, "applied migration %s/%s", plugin, run.name);
        }
    }
    json_decref(applied);
    free(order);
    return rc;
}
