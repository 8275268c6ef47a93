/* PostgreSQL LISTEN on a dedicated connection (see pg_notify.c). Not installed. */
#ifndef DK_ADAPTERS_PG_NOTIFY_H
#define DK_ADAPTERS_PG_NOTIFY_H

#include "donkey/log.h"

typedef struct dk__pg_listener dk__pg_listener;

/** Starts a thread that LISTENs on `channel` (copied) over its own
 *  connection to `conninfo` (a postgres:// URL or libpq string; copied) and
 *  calls `fn(user)` on that thread after each notification and after each
 *  (re)connection. Losing the server is logged on `log` (borrowed, may be
 *  NULL) and retried with backoff. Returns NULL when out of memory or when
 *  libpq cannot be loaded (src/db/pq.h). */
dk__pg_listener *dk__pg_listen_start(const char *conninfo, const char *channel,
                                     void (*fn)(void *user), void *user, dk_logger *log);

/** Stops the thread (waits for it) and frees the listener. NULL ignored. */
void dk__pg_listen_stop(dk__pg_listener *l);

#endif
