/* Conformance routes: placeholder until this area lands. */
#include "conf.h"

int conf_plugins(dk_app *app, dk_router *r, const conf_flags *flags)
{
    return 0;
}
