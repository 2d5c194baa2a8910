/* A plugin built for a future ABI major: it exports bp_plugin_entry_v2 only. */
#include "fixture.h"

BP_EXPORT const void *bp_plugin_entry_v2(const void *host) { (void)host; return NULL; }
