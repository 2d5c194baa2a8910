#define _POSIX_C_SOURCE 200809L
/* reload_probe version 2.0.0, with one more action: see reload_probe.h. */
#define RELOAD_VERSION "2.0.0"
#define RELOAD_ADDS_ACTION
#include "reload_probe.h"
