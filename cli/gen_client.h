/* donkey CLI: TypeScript client generator.
 *
 * Turns the route table a server prints with --routes-json
 * ({"routes":[{name, handler, methods, input, output, middleware}],
 * "events":[...], "sseChannels":[...]}) into a typed client:
 *
 *   <out_dir>/index.ts    typed client (one method per route, schema types)
 *   <out_dir>/runtime.ts  the runtime (client/runtime.ts, embedded at build time)
 *   <out_dir>/index.js    the same client as a plain ES module (no types)
 *   <out_dir>/runtime.js  the runtime as a plain ES module
 *
 * The build embeds the runtime through client/embed.cmake
 * (dk_client_runtime_embed(<target>)); see docs/client.md. */
#ifndef DK_CLI_GEN_CLIENT_H
#define DK_CLI_GEN_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/** Writes the four files into `out_dir` (created with its parents when
 *  missing). `routes_doc` is borrowed. An existing file is never overwritten
 *  unless `force`; in that case nothing is written. Returns 0, or non-zero
 *  with a one-line message in `err` (NUL-terminated, truncated to `errlen`;
 *  `err` may be NULL). */
int dk_cli_generate_client(const json_t *routes_doc, const char *out_dir, bool force, char *err,
                           size_t errlen);

#endif
