/* PostgreSQL engine (libpq): parameters sent as text with explicit types for
 * numbers and booleans, results converted by column type OID. libpq is loaded
 * when the first PostgreSQL URL is parsed (pq.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/internal.h"
#include "db/pq.h"

#define PG_POOL_SIZE 8

/* Built-in type OIDs (pg_type.dat); stable across server versions. */
#define OID_BOOL 16
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_OID 26
#define OID_JSON 114
#define OID_FLOAT4 700
#define OID_FLOAT8 701
#define OID_NUMERIC 1700
#define OID_JSONB 3802

typedef struct pg_cfg {
    char *conninfo;
} pg_cfg;

/* Records the server's (or libpq's) message and maps SQLSTATE to a code. */
static int fail(PGconn *conn, const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorMessage(res) : NULL;
    if (msg == NULL || *msg == '\0')
        msg = conn ? PQerrorMessage(conn) : "out of memory";
    char text[512];
    snprintf(text, sizeof(text), "%s", msg);
    size_t len = strlen(text);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
        text[--len] = '\0';

    int code = DK_EDB;
    if (conn == NULL || PQstatus(conn) == CONNECTION_BAD) {
        code = DK_EUNAVAILABLE;
    } else if (state != NULL) {
        if (strncmp(state, "23", 2) == 0)
            code = DK_ECONSTRAINT; /* integrity constraint violation */
        else if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
                 strcmp(state, "55P03") == 0)
            code = DK_EBUSY; /* serialization failure, deadlock, lock not available */
        else if (strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0 ||
                 strncmp(state, "57P", 3) == 0 || strncmp(state, "58", 2) == 0)
            code = DK_EUNAVAILABLE; /* connection, resources, shutdown, system error */
    }
    return dk__db_seterr(code, "%s", text);
}

static int pg_parse(const char *url, void **out_cfg, int *out_max_conns, dk_err *err)
{
    char why[512];
    int rc = dk__pq_load(why, sizeof(why));
    if (rc != 0)
        return dk_err_set(err, rc, "%s", why);
    pg_cfg *cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL || (cfg->conninfo = strdup(url)) == NULL) {
        free(cfg);
        return dk_err_set(err, DK_ENOMEM, "out of memory");
    }
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &perr);
    if (opts == NULL) {
        dk_err_set(err, DK_EINVAL, "invalid PostgreSQL URL: %s", perr ? perr : "out of memory");
        PQfreemem(perr);
        free(cfg->conninfo);
        free(cfg);
        return DK_EINVAL;
    }
    PQconninfoFree(opts);
    *out_cfg = cfg;
    *out_max_conns = PG_POOL_SIZE;
    return 0;
}

static void pg_free_cfg(void *p)
{
    pg_cfg *cfg = p;
    if (cfg == NULL)
        return;
    free(cfg->conninfo);
    free(cfg);
}

static void notice_ignore(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* NOTICEs ("table does not exist, skipping") are not errors */
}

static int pg_connect(void *p, void **out_conn)
{
    pg_cfg *cfg = p;
    PGconn *conn = PQconnectdb(cfg->conninfo);
    if (conn == NULL)
        return dk__db_seterr(DK_ENOMEM, "out of memory");
    if (PQstatus(conn) != CONNECTION_OK) {
        int rc = fail(conn, NULL);
        PQfinish(conn);
        return rc;
    }
    PQsetNoticeProcessor(conn, notice_ignore, NULL);
    *out_conn = conn;
    return 0;
}

static void pg_disconnect(void *conn)
{
    PQfinish(conn);
}

static bool pg_usable(void *conn)
{
    return PQstatus(conn) == CONNECTION_OK;
}

/* Rewrites placeholders and converts `params` to libpq's text form. */
typedef struct pg_call {
    char *sql;
    int n;
    Oid *types;
    const char **values;
    char **owned; /* numbers and JSON text we formatted */
} pg_call;

static void call_free(pg_call *c)
{
    for (int i = 0; i < c->n && c->owned; i++)
        free(c->owned[i]);
    free(c->owned);
    free(c->types);
    free(c->values);
    free(c->sql);
}

static int call_prepare(pg_call *c, const char *sql, const json_t *params)
{
    int count;
    memset(c, 0, sizeof(*c));
    if (dk__db_rewrite_placeholders(sql, &c->sql, &count) != 0)
        return dk__db_seterr(DK_ENOMEM, "out of memory");
    int have = params ? (int)json_array_size(params) : 0;
    if (count != have) {
        free(c->sql);
        c->sql = NULL;
        return dk__db_seterr(DK_EINVAL, "statement has %d placeholders but %d parameters given",
                             count, have);
    }
    c->n = have;
    if (have == 0)
        return 0;
    c->types = calloc((size_t)have, sizeof(Oid));
    c->values = calloc((size_t)have, sizeof(char *));
    c->owned = calloc((size_t)have, sizeof(char *));
    if (c->types == NULL || c->values == NULL || c->owned == NULL) {
        call_free(c);
        return dk__db_seterr(DK_ENOMEM, "out of memory");
    }
    for (int i = 0; i < have; i++) {
        const json_t *v = json_array_get(params, (size_t)i);
        char num[64];
        switch (json_typeof(v)) {
        case JSON_STRING:
            c->values[i] = json_string_value(v); /* type left for the server to infer */
            continue;
        case JSON_NULL:
            c->values[i] = NULL;
            continue;
        case JSON_TRUE:
        case JSON_FALSE:
            c->types[i] = OID_BOOL;
            c->values[i] = json_is_true(v) ? "true" : "false";
            continue;
        case JSON_INTEGER:
            c->types[i] = OID_INT8;
            snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            c->owned[i] = strdup(num);
            break;
        case JSON_REAL:
            c->types[i] = OID_FLOAT8;
            snprintf(num, sizeof(num), "%.17g", json_real_value(v));
            c->owned[i] = strdup(num);
            break;
        default:
            c->owned[i] = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            break;
        }
        if (c->owned[i] == NULL) {
            call_free(c);
            return dk__db_seterr(DK_ENOMEM, "out of memory");
        }
        c->values[i] = c->owned[i];
    }
    return 0;
}

static PGresult *run(PGconn *conn, const pg_call *c)
{
    return PQexecParams(conn, c->sql, c->n, c->types, c->values, NULL, NULL, 0);
}

static bool result_ok(const PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

static int pg_exec(void *conn, const char *sql, const json_t *params, int64_t *out_changes,
                   int64_t *out_last_id)
{
    pg_call c;
    int rc = call_prepare(&c, sql, params);
    if (rc != 0)
        return rc;
    PGresult *res = run(conn, &c);
    call_free(&c);
    if (res == NULL || !result_ok(res)) {
        rc = fail(conn, res);
        PQclear(res);
        return rc;
    }
    const char *tuples = PQcmdTuples(res);
    *out_changes = tuples && *tuples ? strtoll(tuples, NULL, 10) : 0;
    int col = PQfnumber(res, "id");
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 && col >= 0 &&
        !PQgetisnull(res, 0, col))
        *out_last_id = strtoll(PQgetvalue(res, 0, col), NULL, 10);
    PQclear(res);
    return 0;
}

static json_t *cell_value(const PGresult *res, int r, int f)
{
    if (PQgetisnull(res, r, f))
        return json_null();
    const char *text = PQgetvalue(res, r, f);
    switch (PQftype(res, f)) {
    case OID_INT2:
    case OID_INT4:
    case OID_INT8:
    case OID_OID:
        return json_integer(strtoll(text, NULL, 10));
    case OID_FLOAT4:
    case OID_FLOAT8:
    case OID_NUMERIC:
        return json_real(strtod(text, NULL)); /* NaN and Infinity: jansson refuses them */
    case OID_BOOL:
        return json_boolean(text[0] == 't');
    case OID_JSON:
    case OID_JSONB:
        return json_loads(text, JSON_DECODE_ANY, NULL);
    default:
        return json_stringn(text, (size_t)PQgetlength(res, r, f));
    }
}

struct pg_row {
    const PGresult *res;
    int r;
};

static json_t *pg_cell(void *row, int f, const char **name)
{
    struct pg_row *pr = row;
    *name = PQfname(pr->res, f);
    return cell_value(pr->res, pr->r, f);
}

static int pg_query(void *conn, const char *sql, const json_t *params, size_t max_rows,
                    json_t **out_rows)
{
    pg_call c;
    int rc = call_prepare(&c, sql, params);
    if (rc != 0)
        return rc;
    PGresult *res = run(conn, &c);
    call_free(&c);
    if (res == NULL || !result_ok(res)) {
        rc = fail(conn, res);
        PQclear(res);
        return rc;
    }
    json_t *rows = json_array();
    int nrows = PQntuples(res), nf = PQnfields(res);
    if (max_rows > 0 && (size_t)nrows > max_rows)
        nrows = (int)max_rows;
    rc = rows ? 0 : dk__db_seterr(DK_ENOMEM, "out of memory");
    struct pg_row row = {res, 0};
    for (; row.r < nrows && rc == 0; row.r++)
        rc = dk__db_add_row(rows, nf, pg_cell, &row, "cannot convert column '%s' to JSON");
    PQclear(res);
    if (rc != 0) {
        json_decref(rows);
        return rc;
    }
    *out_rows = rows;
    return 0;
}

static int pg_script(void *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    if (res == NULL || !result_ok(res)) {
        int rc = fail(conn, res);
        PQclear(res);
        return rc;
    }
    /* COMMIT of a transaction that an earlier error aborted answers ROLLBACK
     * instead of failing; the caller must not believe its writes were kept. */
    bool rolled_back = strcmp(sql, "COMMIT") == 0 && strcmp(PQcmdStatus(res), "ROLLBACK") == 0;
    PQclear(res);
    if (rolled_back)
        return dk__db_seterr(DK_EDB, "transaction was aborted by an earlier error and has been "
                                     "rolled back");
    return 0;
}

const dk__db_engine dk__db_pg = {
    .name = "postgres",
    .begin_sql = "BEGIN",
    .parse = pg_parse,
    .free_cfg = pg_free_cfg,
    .connect = pg_connect,
    .disconnect = pg_disconnect,
    .usable = pg_usable,
    .exec = pg_exec,
    .query = pg_query,
    .script = pg_script,
};
