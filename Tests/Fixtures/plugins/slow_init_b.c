#define _POSIX_C_SOURCE 200809L
/* See slow_init.h. */
#define SLOW_INIT_NAME "slow_init_b"
#define SLOW_INIT_OTHER "slow_init_a"
#define SLOW_INIT_SECONDS 20
#include "slow_init.h"
