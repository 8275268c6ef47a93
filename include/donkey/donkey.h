/* donkey: umbrella header. */
#ifndef DONKEY_H
#define DONKEY_H

#include "common.h"
#include "error.h"
#include "log.h"
#include "schema.h"
#include "loop.h"
#include "app.h"
#include "cache.h"
#include "events.h"
#include "ratelimit.h"
#include "cron.h"
#include "db.h"
#include "jobs.h"
#include "sse.h"
#include "fetch.h"
#include "trace.h"
#include "admin.h"
#include "plugin.h"
#include "harness.h"

#endif
