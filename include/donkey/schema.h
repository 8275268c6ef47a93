/* donkey: JSON Schema (draft 2020-12 subset) compiled once, validated per request.
 * Guide: docs/schema.md.
 *
 * Keywords: type (string or array of types, "integer" included, unions with
 * "null"), properties, required, additionalProperties (false / true / schema;
 * when absent and "properties" is present, unknown keys are stripped from the
 * validated copy, so an output schema acts as a field filter), minProperties,
 * maxProperties, items, minItems, maxItems, minLength, maxLength (Unicode code
 * points), pattern (PCRE2, UTF mode, unanchored search), format (email, uuid,
 * date-time, date, uri), enum, const, minimum, maximum, exclusiveMinimum,
 * exclusiveMaximum, multipleOf, default (filled in for absent properties, at
 * every level), anyOf, oneOf. No type coercion. Annotations (title,
 * description, $schema, examples...) and "x-..." names are ignored;
 * validation keywords that are not implemented ($ref, allOf, not, ...) are
 * refused, and so is any other keyword (strict, as Ajv: a typo such as
 * "minLenght" is a compile error) unless allowed as an extension
 * (dk_schema_allow_keyword(), dk_schema_options). Patterns follow ECMAScript:
 * \p{Letter}, Unicode \s, ASCII \d and \w, \uXXXX.
 *
 * Issues: [{"path": [key|index...], "message": str, "code": str, ...}], all
 * collected in schema traversal order. Codes: invalid_type, too_small,
 * too_big, invalid_format, invalid_value, unrecognized_keys, invalid_union,
 * not_multiple_of, invalid_string (U+0000 in a string, when forbidden). A missing required property is reported at its own path
 * with code invalid_type. Extra fields: expected, received, minimum, maximum,
 * format, values, keys, divisor, unionErrors.
 *
 * Validation stops once it has collected a maximum number of issues (default
 * DK_SCHEMA_MAX_ISSUES), so the cost of a bad input does not grow with its
 * number of bad elements. A value validated by an "integer" node comes out as
 * a JSON integer even when written 1.0. */
#ifndef DONKEY_SCHEMA_H
#define DONKEY_SCHEMA_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dk_schema dk_schema;

/** Compiles `schema` (borrowed; a copy is kept). Returns NULL with `err`
 *  filled (DK_EINVAL, message naming the offending keyword and path) when the
 *  schema is invalid (unknown type name, bad pattern, min > max, a default
 *  that does not validate, ...). Caller frees with dk_schema_free(). Any thread. */
DK_API dk_schema *dk_schema_compile(const json_t *schema, dk_err *err);

/** Compile options (dk_schema_compile_ex()). Fill with dk_schema_options_init(). */
typedef struct dk_schema_options {
    /** NULL-terminated names of extension keywords to accept (and ignore), on
     *  top of the standard ones, "x-..." names and dk_schema_allow_keyword()'s;
     *  borrowed for the call. NULL: none. */
    const char *const *keywords;
    /** Accept every unknown keyword, as donkey did before strict mode. */
    bool allow_unknown_keywords;
} dk_schema_options;

/** Fills `o` with the defaults (strict: unknown keywords are refused). */
DK_API void dk_schema_options_init(dk_schema_options *o);

/** dk_schema_compile() with options (`o` may be NULL: the defaults). */
DK_API dk_schema *dk_schema_compile_ex(const json_t *schema, const dk_schema_options *o,
                                       dk_err *err);

/** Accepts the extension keyword `name` (copied) in every schema compiled
 *  afterwards in this process, including route schemas, which the router
 *  compiles. Call before declaring routes. 0, DK_EINVAL (empty or longer
 *  than 63 bytes) or DK_ELIMIT (64 names already). Any thread. */
DK_API int dk_schema_allow_keyword(const char *name);

/** Parses JSON text and compiles it. Same contract as dk_schema_compile(). */
DK_API dk_schema *dk_schema_compile_str(const char *json_text, dk_err *err);

/** Frees the schema. NULL is ignored. No validation may be running on it. */
DK_API void dk_schema_free(dk_schema *s);

/** The schema JSON as given (borrowed; lives as long as the schema). */
DK_API const json_t *dk_schema_json(const dk_schema *s);

/** Validates `value` (borrowed, never modified; NULL stands for an absent
 *  value). On success returns 0 and `*out` (when `out` is not NULL) is a new
 *  reference to the normalised copy (defaults filled, unknown keys stripped
 *  where additionalProperties is absent); it may share unchanged subvalues
 *  with `value`. On failure returns DK_EINVAL, `*out` is NULL and `*issues`
 *  (when not NULL) is a new reference to the issues array; DK_ENOMEM when
 *  memory ran out (no issues). Any thread; the compiled schema is read-only. */
DK_API int dk_schema_validate(const dk_schema *s, const json_t *value, json_t **out,
                              json_t **issues);

/** Issues collected by one validation before it stops, unless changed. */
#define DK_SCHEMA_MAX_ISSUES 100

/** How one validation runs (dk_schema_validate_ex()). Fill with
 *  dk_validate_options_init(), then change fields. */
typedef struct dk_validate_options {
    size_t max_issues; /* 0: the schema's own cap (dk_schema_set_max_issues()) */
    bool forbid_nul;   /* a string containing U+0000 is an invalid_string issue
                          (typed routes set it unless --allow-nul-strings) */
} dk_validate_options;

/** Fills `o` with the defaults (all zero). */
DK_API void dk_validate_options_init(dk_validate_options *o);

/** Sets how many issues dk_schema_validate() collects before it stops
 *  (0 restores DK_SCHEMA_MAX_ISSUES). Call before the schema is shared
 *  between threads. */
DK_API void dk_schema_set_max_issues(dk_schema *s, size_t max);

/** The schema's issue cap (DK_SCHEMA_MAX_ISSUES unless set). Any thread. */
DK_API size_t dk_schema_max_issues(const dk_schema *s);

/** dk_schema_validate() with options (`o` may be NULL: the defaults). When
 *  the cap stopped validation, `*truncated` (when not NULL) is set: more
 *  issues exist than `*issues` lists, and their number is not known because
 *  the input was not walked further. Any thread. */
DK_API int dk_schema_validate_ex(const dk_schema *s, const json_t *value,
                                 const dk_validate_options *o, json_t **out, json_t **issues,
                                 bool *truncated);

/** Nesting depth of a JSON value (scalars and NULL 0, `[]` and `{}` 1, `[[1]]` 2).
 *  Used to refuse over-deep input. Any thread. */
DK_API int dk_json_depth(const json_t *value);

#ifdef __cplusplus
}
#endif
#endif
