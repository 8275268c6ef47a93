/* {{name}}: a plugin (see {{name}}.c). Registered by the line
 * APP_PLUGIN({{name}}, ...) in src/plugins.def. */
#ifndef PLUGIN_{{NAME}}_H
#define PLUGIN_{{NAME}}_H

#include <donkey/donkey.h>

/** The plugin definition (static; give it to dk_app_add_plugin()). */
extern const dk_plugin {{name}}_plugin;

/** The plugin's routes: {{name}}.hello{{#handlers}} and {{name}}.info{{/handlers}}. New router; the
 *  app (dk_app_use()) or harness (dk_harness_use()) takes ownership. */
dk_router *{{name}}_router(void);

/** The plugin's service, reached from handlers with dk_ctx_service(ctx, "{{name}}")
 *  and from plugins that depend on it with dk_plugin_dep(pctx, "{{name}}"). */
typedef struct {{name}}_service {{name}}_service;

/** Greets `who`. On 0, `*out` is a new reference {"message": ...{{#schema}}, "count": n{{/schema}}}.
 *  Returns 0 or a negative DK_E* code. Any thread. */
int {{name}}_hello({{name}}_service *svc, const char *who, json_t **out);

#endif
