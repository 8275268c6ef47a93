/* donkey: umbrella header. */
#ifndef DONKEY_H
#define DONKEY_H

#include "common.h"
#include "error.h"
#include "log.h"
#include "schema.h"
#include "loop.h"
#include "app.h"
#include "plugin.h"
#include "harness.h"

#endif
