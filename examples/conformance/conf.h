/* The conformance application: every donkey feature behind a route, for
 * black-box tests. Each conf_*.c file adds one area. */
#ifndef CONF_H
#define CONF_H

#include <donkey/donkey.h>

typedef struct conf_flags {
    const char *broken_plugins; /* missing|self|cycle */
} conf_flags;

int conf_foundation_routes(dk_router *r);

#endif
