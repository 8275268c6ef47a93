/* libpq, loaded on first use (see pq.c). Not installed.
 *
 * libdonkey does not link libpq: an application on SQLite would otherwise map
 * libpq and its dependencies (Kerberos, LDAP, SASL, GnuTLS, p11-kit: about
 * 3 MiB of resident memory) without ever using them. The engines call
 * dk__pq_load() before anything else and then use the PQ* names as usual; in
 * files that include this header they resolve to the loaded functions. */
#ifndef DK_DB_PQ_H
#define DK_DB_PQ_H

#include <libpq-fe.h>
#include <stddef.h>

/* Every libpq function donkey uses: X(return type, name, (parameters)). pq.c
 * checks each against libpq-fe.h at compile time. */
#define DK__PQ_FUNCS(X)                                                                           \
    X(void, PQclear, (PGresult * res))                                                            \
    X(char *, PQcmdStatus, (PGresult * res))                                                      \
    X(char *, PQcmdTuples, (PGresult * res))                                                      \
    X(PGconn *, PQconnectdb, (const char *conninfo))                                              \
    X(PGconn *, PQconnectdbParams,                                                                \
      (const char *const *keywords, const char *const *values, int expand_dbname))                \
    X(void, PQconninfoFree, (PQconninfoOption * opts))                                            \
    X(PQconninfoOption *, PQconninfoParse, (const char *conninfo, char **errmsg))                 \
    X(int, PQconsumeInput, (PGconn * conn))                                                       \
    X(char *, PQerrorMessage, (const PGconn *conn))                                               \
    X(char *, PQescapeIdentifier, (PGconn * conn, const char *str, size_t len))                   \
    X(PGresult *, PQexec, (PGconn * conn, const char *query))                                     \
    X(PGresult *, PQexecParams,                                                                   \
      (PGconn * conn, const char *command, int n, const Oid *types, const char *const *values,   \
       const int *lengths, const int *formats, int result_format))                                \
    X(void, PQfinish, (PGconn * conn))                                                            \
    X(char *, PQfname, (const PGresult *res, int field))                                          \
    X(int, PQfnumber, (const PGresult *res, const char *name))                                    \
    X(void, PQfreemem, (void *ptr))                                                               \
    X(Oid, PQftype, (const PGresult *res, int field))                                             \
    X(int, PQgetisnull, (const PGresult *res, int row, int field))                                \
    X(int, PQgetlength, (const PGresult *res, int row, int field))                                \
    X(char *, PQgetvalue, (const PGresult *res, int row, int field))                              \
    X(int, PQnfields, (const PGresult *res))                                                      \
    X(PGnotify *, PQnotifies, (PGconn * conn))                                                    \
    X(int, PQntuples, (const PGresult *res))                                                      \
    X(char *, PQresultErrorField, (const PGresult *res, int code))                                \
    X(char *, PQresultErrorMessage, (const PGresult *res))                                        \
    X(ExecStatusType, PQresultStatus, (const PGresult *res))                                      \
    X(PQnoticeProcessor, PQsetNoticeProcessor, (PGconn * conn, PQnoticeProcessor fn, void *arg)) \
    X(int, PQsocket, (const PGconn *conn))                                                        \
    X(ConnStatusType, PQstatus, (const PGconn *conn))

typedef struct dk__pq_api {
#define DK__PQ_MEMBER(ret, name, params) ret(*name) params;
    DK__PQ_FUNCS(DK__PQ_MEMBER)
#undef DK__PQ_MEMBER
} dk__pq_api;

/* Filled by dk__pq_load(); read-only afterwards. */
extern dk__pq_api dk__pq;

/** Loads libpq once per process (thread-safe): $DK_LIBPQ when set (a file
 *  name or path), else libpq.so.5. Returns 0, or DK_EUNAVAILABLE with a
 *  message in `msg` saying what is missing (a failed load is retried by the
 *  next call). */
int dk__pq_load(char *msg, size_t msglen);

#ifndef DK__PQ_IMPL
#define PQclear dk__pq.PQclear
#define PQcmdStatus dk__pq.PQcmdStatus
#define PQcmdTuples dk__pq.PQcmdTuples
#define PQconnectdb dk__pq.PQconnectdb
#define PQconnectdbParams dk__pq.PQconnectdbParams
#define PQconninfoFree dk__pq.PQconninfoFree
#define PQconninfoParse dk__pq.PQconninfoParse
#define PQconsumeInput dk__pq.PQconsumeInput
#define PQerrorMessage dk__pq.PQerrorMessage
#define PQescapeIdentifier dk__pq.PQescapeIdentifier
#define PQexec dk__pq.PQexec
#define PQexecParams dk__pq.PQexecParams
#define PQfinish dk__pq.PQfinish
#define PQfname dk__pq.PQfname
#define PQfnumber dk__pq.PQfnumber
#define PQfreemem dk__pq.PQfreemem
#define PQftype dk__pq.PQftype
#define PQgetisnull dk__pq.PQgetisnull
#define PQgetlength dk__pq.PQgetlength
#define PQgetvalue dk__pq.PQgetvalue
#define PQnfields dk__pq.PQnfields
#define PQnotifies dk__pq.PQnotifies
#define PQntuples dk__pq.PQntuples
#define PQresultErrorField dk__pq.PQresultErrorField
#define PQresultErrorMessage dk__pq.PQresultErrorMessage
#define PQresultStatus dk__pq.PQresultStatus
#define PQsetNoticeProcessor dk__pq.PQsetNoticeProcessor
#define PQsocket dk__pq.PQsocket
#define PQstatus dk__pq.PQstatus
#endif

#endif
