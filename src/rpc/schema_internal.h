/* Compiled JSON Schema tree shared by schema.c (compiler, public API) and
 * schema_check.c (validator). Not installed. */
#ifndef DK_RPC_SCHEMA_INTERNAL_H
#define DK_RPC_SCHEMA_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "donkey/schema.h"
#include "base/internal.h"

/* Type bits; "integer" is its own bit because it is narrower than "number". */
enum {
    DK__T_NULL = 1u << 0,
    DK__T_BOOL = 1u << 1,
    DK__T_INT = 1u << 2,
    DK__T_NUM = 1u << 3,
    DK__T_STR = 1u << 4,
    DK__T_ARR = 1u << 5,
    DK__T_OBJ = 1u << 6,
};

/* Which keywords a node carries, so validation never looks at the JSON again. */
enum {
    DK__F_MINLEN = 1u << 0,
    DK__F_MAXLEN = 1u << 1,
    DK__F_MINITEMS = 1u << 2,
    DK__F_MAXITEMS = 1u << 3,
    DK__F_MIN = 1u << 4,
    DK__F_MAX = 1u << 5,
    DK__F_XMIN = 1u << 6,
    DK__F_XMAX = 1u << 7,
    DK__F_MULT = 1u << 8,
    DK__F_MINPROPS = 1u << 9,
    DK__F_MAXPROPS = 1u << 10,
    DK__F_ENUM = 1u << 11,
    DK__F_CONST = 1u << 12,
    DK__F_NEVER = 1u << 13,  /* boolean schema `false` */
    DK__F_PROPS = 1u << 14,  /* "properties" or "required" present */
    DK__F_STRING = DK__F_MINLEN | DK__F_MAXLEN,
    DK__F_NUMBER = DK__F_MIN | DK__F_MAX | DK__F_XMIN | DK__F_XMAX | DK__F_MULT,
};

typedef enum {
    DK__FMT_NONE = 0,
    DK__FMT_EMAIL,
    DK__FMT_UUID,
    DK__FMT_DATE_TIME,
    DK__FMT_DATE,
    DK__FMT_URI,
} dk__fmt;

typedef enum {
    DK__ADDL_STRIP = 0, /* absent: undeclared keys are dropped from the copy */
    DK__ADDL_ALLOW,     /* true: undeclared keys are kept as they are */
    DK__ADDL_DENY,      /* false: undeclared keys are an unrecognized_keys issue */
    DK__ADDL_SCHEMA,    /* a schema: undeclared keys are validated and kept */
} dk__addl;

/* A numeric bound kept both ways so integer inputs compare exactly. */
typedef struct dk__snum {
    double d;
    json_int_t i;
    bool is_int;
} dk__snum;

typedef struct dk__snode dk__snode;

typedef struct dk__sprop {
    const char *key; /* borrowed from the schema copy */
    size_t klen;
    dk__snode *schema; /* NULL: declared only by "required", any value */
    bool required;
} dk__sprop;

struct dk__snode {
    unsigned types; /* DK__T_* bits; 0 = any type */
    unsigned flags; /* DK__F_* bits */
    bool transforms;  /* validation may produce a value different from the input */
    bool rebuild_obj; /* objects are copied (stripping, defaults, changed members) */
    bool rebuild_arr; /* arrays are copied (an element may change) */
    char *expected;   /* "string", "string | null", ...; NULL when untyped */

    size_t min_len, max_len, min_items, max_items, min_props, max_props;
    dk__snum min, max, xmin, xmax, mult;

    pcre2_code *re;
    const char *re_src; /* borrowed from the schema copy */
    dk__fmt format;
    const char *format_name;

    const json_t *enum_vals; /* borrowed, read-only */
    const json_t *const_val; /* borrowed, read-only */

    dk__snode *items;

    dk__sprop *props; /* declaration order */
    size_t nprops;
    size_t *by_key; /* indexes into props sorted by (klen, key) */
    dk__addl addl;
    dk__snode *addl_schema;

    dk__snode **branches; /* anyOf or oneOf */
    size_t nbranches;
    bool one_of;

    json_t *def; /* normalised default, owned; NULL when none */
};

struct dk_schema {
    json_t *json; /* the schema as given (deep copy) */
    size_t max_issues; /* dk_schema_set_max_issues(); 0 = DK_SCHEMA_MAX_ISSUES */
    dk__snode *root;
    pcre2_match_context *mctx; /* read-only after compile: match limits */
};

/* How one validation runs. */
typedef struct dk__vopts {
    size_t max_issues; /* issues recorded before the walk stops; SIZE_MAX = all */
    bool forbid_nul;   /* strings containing U+0000 are an invalid_string issue */
    bool *truncated;   /* out, may be NULL: set when issues were left out */
} dk__vopts;

/* Validates `v` against `n`; returns a new reference to the normalised value,
 * or NULL when issues were recorded (then *issues is a new array) or memory ran
 * out (then *oom is set). `v` NULL stands for an absent value. */
json_t *dk__schema_check(const dk_schema *s, const dk__snode *n, const json_t *v,
                         const dk__vopts *o, json_t **issues, bool *oom);

/* Property lookup by key through the sorted index. */
const dk__sprop *dk__schema_prop(const dk__snode *n, const char *key, size_t klen);

/* Format checks (schema_format.c). */
bool dk__fmt_check(dk__fmt f, const char *s, size_t len);
dk__fmt dk__fmt_parse(const char *name);
/* Number of Unicode code points in valid UTF-8 `s`. */
size_t dk__utf8_len(const char *s, size_t len);

/* JSON equality as JSON Schema defines it: 1 and 1.0 are equal. */
bool dk__json_equal(const json_t *a, const json_t *b);

/* Rewrites an ECMAScript `pattern` (len bytes) into PCRE2 syntax: Unicode
 * `\s`, long Unicode property names, `\uXXXX`. Returns a NUL-terminated copy
 * (caller frees) and its length, or NULL when out of memory. */
char *dk__schema_regex(const char *src, size_t len, size_t *out_len);

#endif
