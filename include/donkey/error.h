/* donkey: HTTP errors as data.
 *
 * A dk_error is an HTTP error value {status, code, message, details}. One
 * table (DK_HTTP_ERRORS) drives the standard factories and the JSON body
 * {"error": CODE, "message": ..., "details"?: {...}}. A registry (dk_errors)
 * holds named custom errors registered by configuration and plugins. */
#ifndef DONKEY_ERROR_H
#define DONKEY_ERROR_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* status, CODE, factory name, default message */
#define DK_HTTP_ERRORS(X)                                                        \
    X(400, BAD_REQUEST, BadRequest, "Bad Request")                               \
    X(401, UNAUTHORIZED, Unauthorized, "Unauthorized")                           \
    X(403, FORBIDDEN, Forbidden, "Forbidden")                                    \
    X(404, NOT_FOUND, NotFound, "Not Found")                                     \
    X(405, METHOD_NOT_ALLOWED, MethodNotAllowed, "Method Not Allowed")           \
    X(409, CONFLICT, Conflict, "Conflict")                                       \
    X(410, GONE, Gone, "Gone")                                                   \
    X(422, UNPROCESSABLE_ENTITY, UnprocessableEntity, "Unprocessable Entity")    \
    X(429, TOO_MANY_REQUESTS, TooManyRequests, "Too Many Requests")              \
    X(500, INTERNAL_SERVER_ERROR, InternalServer, "Internal Server Error")       \
    X(501, NOT_IMPLEMENTED, NotImplemented, "Not Implemented")                   \
    X(502, BAD_GATEWAY, BadGateway, "Bad Gateway")                               \
    X(503, SERVICE_UNAVAILABLE, ServiceUnavailable, "Service Unavailable")       \
    X(504, GATEWAY_TIMEOUT, GatewayTimeout, "Gateway Timeout")

enum {
#define DK_X_(st, code, name, msg) DK_HTTP_##code = st,
    DK_HTTP_ERRORS(DK_X_)
#undef DK_X_
};

typedef struct dk_error dk_error;

/** New error with exactly these values. `code` and `message` are copied;
 *  `details` (may be NULL) is stolen (the reference moves to the error, also on
 *  failure). A status outside 400..599 is stored as 500. Returns NULL only when
 *  out of memory. Caller frees with dk_error_free(). Any thread. */
DK_API dk_error *dk_error_new(int status, const char *code, const char *message,
                              json_t *details);

/** Standard error for `status` (one of the 14 in DK_HTTP_ERRORS; any other
 *  status gives 500 INTERNAL_SERVER_ERROR). `message` NULL uses the default
 *  message (an empty string stays empty). `details` is stolen. */
DK_API dk_error *dk_error_std(int status, const char *message, json_t *details);

/** Frees the error; NULL is ignored. */
DK_API void dk_error_free(dk_error *err);

DK_API int dk_error_status(const dk_error *err);
/** Borrowed; valid while the error lives. */
DK_API const char *dk_error_code(const dk_error *err);
/** Borrowed; valid while the error lives. */
DK_API const char *dk_error_message(const dk_error *err);
/** Borrowed reference or NULL. */
DK_API json_t *dk_error_details(const dk_error *err);

/** The JSON body {"error","message","details"?}; `details` only when it is a
 *  non-empty object (or a non-object value). New reference. */
DK_API json_t *dk_error_body(const dk_error *err);

/** Default message for a standard status, or NULL. Static. */
DK_API const char *dk_http_default_message(int status);
/** Standard CODE for a status, or NULL. Static. */
DK_API const char *dk_http_code(int status);
/** Reason phrase for any HTTP status ("OK", "Not Found"...). Static, never NULL. */
DK_API const char *dk_http_reason(int status);

/** The 400 validation error: message "Validation Failed" and details
 *  {"issues": issues}. `issues` is stolen. Issues at the end are dropped so
 *  the details stay within DK_ERROR_DETAILS_MAX bytes of JSON; then details
 *  also carry "truncated": true. */
DK_API dk_error *dk_error_validation(json_t *issues);

/** dk_error_validation() for a validation that stopped at its issue cap
 *  (`truncated` from dk_schema_validate_ex()): details carry "truncated": true. */
DK_API dk_error *dk_error_validation_ex(json_t *issues, bool truncated);

/** Upper bound of a validation error's details as compact JSON (60 KiB, so the
 *  whole error body stays under 64 KiB). Error messages are cut to
 *  DK_ERROR_MESSAGE_MAX bytes. */
#define DK_ERROR_DETAILS_MAX (60 * 1024)
#define DK_ERROR_MESSAGE_MAX 2048

/* ---- registry of named custom errors ---- */

typedef struct dk_errors dk_errors;

/** New empty registry; caller frees with dk_errors_free(). Any thread. */
DK_API dk_errors *dk_errors_new(void);
DK_API void dk_errors_free(dk_errors *errs);

/** Registers factory `name` -> {status, code, default_message (may be NULL)}.
 *  Strings are copied. Returns 0; DK_EINVAL for a reserved name (a standard
 *  factory name such as "NotFound", or "register"/"custom"/"isHttpError"), an
 *  empty name/code or a status outside 400..599; DK_EEXIST when `name` is
 *  already registered with a different definition (same definition: 0). Any thread. */
DK_API int dk_errors_register(dk_errors *errs, const char *name, int status, const char *code,
                              const char *default_message);

/** Makes error `name` (a standard factory name such as "NotFound" or a
 *  registered one). `message` NULL or empty takes the default message (for
 *  registered errors: default_message, else the code). `details` is stolen.
 *  Returns NULL when the name is unknown (details released). Any thread. */
DK_API dk_error *dk_errors_make(dk_errors *errs, const char *name, const char *message,
                                json_t *details);

/** Whether `name` is known (standard or registered). */
DK_API bool dk_errors_has(dk_errors *errs, const char *name);

#ifdef __cplusplus
}
#endif
#endif
