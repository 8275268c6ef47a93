/* Plugin manager: placeholder until the plugins issue lands. */
#include "../internal.h"

int dk__plugins_prepare(dk_app *app, dk_err *err) { return 0; }
int dk__plugins_start(dk_app *app, dk_err *err) { return 0; }
void dk__plugins_stop(dk_app *app) {}
void dk__plugins_free(dk_app *app) {}

void dk__plugins_describe(dk_app *app, json_t *doc)
{
    json_object_set_new(doc, "events", json_array());
    json_object_set_new(doc, "sseChannels", json_array());
}
