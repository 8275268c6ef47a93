/* {{name}}: plugin tests with the donkey harness (in-process, no socket).
 * The harness starts every plugin of src/plugins.def, so add
 * APP_PLUGIN({{name}}, ...) there first. Run with `ctest --test-dir build`. */
#include "app.h"
#include "plugins/{{name}}.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    dk_harness_options o;
    dk_harness_options_init(&o);
    o.plugins = app_plugins;
    o.nplugins = app_nplugins;
    o.configs = app_plugin_configs;
    dk_err err = {0};
    dk_harness *h = dk_harness_new_opts(&o, &err);
    if (h == NULL) {
        fprintf(stderr, "harness: %s\n", err.message);
        return 1;
    }
    if (dk_harness_service(h, "{{name}}") == NULL) {
        fprintf(stderr, "plugin {{name}} is not running: add APP_PLUGIN({{name}}, NULL) to "
                        "src/plugins.def\n");
        dk_harness_free(h);
        return 1;
    }
    if (dk_harness_use(h, {{name}}_router(), &err) != 0) {
        fprintf(stderr, "harness: %s\n", err.message);
        dk_harness_free(h);
        return 1;
    }
    int failures = 0;
    char *out = NULL;
    int status = dk_harness_call(h, "{{name}}.hello", "{\"name\":\"ann\"}", &out);
    if (status != 200 || out == NULL || strstr(out, "ann") == NULL) {
        fprintf(stderr, "{{name}}.hello: status %d, body %s\n", status, out ? out : "(none)");
        failures++;
    }
    free(out);
    dk_harness_free(h);
    if (failures == 0)
        printf("all tests passed\n");
    return failures == 0 ? 0 : 1;
}
