-- {{name}} 001: the plugin's table. Runs once per database, in a transaction,
-- recorded in donkey_migrations. SQL that runs on SQLite and PostgreSQL.
CREATE TABLE {{name}}_items (
    name TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
