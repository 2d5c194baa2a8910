/* A shared library that is not a plugin: it lacks the entry symbol. */
#include "fixture.h"

BP_EXPORT int some_other_function(void) { return 42; }
