#define _POSIX_C_SOURCE 200809L
/* reload_probe version 1.0.0: see reload_probe.h. */
#define RELOAD_VERSION "1.0.0"
#include "reload_probe.h"
