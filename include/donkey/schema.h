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
 * every level), anyOf, oneOf. No type coercion. Annotations and unknown
 * keywords (title, description, $schema, examples...) are ignored; validation
 * keywords that are not implemented ($ref, allOf, not, ...) are refused.
 *
 * Issues: [{"path": [key|index...], "message": str, "code": str, ...}], all
 * collected in schema traversal order. Codes: invalid_type, too_small,
 * too_big, invalid_format, invalid_value, unrecognized_keys, invalid_union,
 * not_multiple_of. A missing required property is reported at its own path
 * with code invalid_type. Extra fields: expected, received, minimum, maximum,
 * format, values, keys, divisor, unionErrors. */
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

/** Nesting depth of a JSON value (scalars and NULL 0, `[]` and `{}` 1, `[[1]]` 2).
 *  Used to refuse over-deep input. Any thread. */
DK_API int dk_json_depth(const json_t *value);

#ifdef __cplusplus
}
#endif
#endif
