/* Conformance routes: placeholder until this area lands. */
#include "conf.h"

int conf_realtime(dk_app *app, dk_router *r)
{
    return 0;
}
