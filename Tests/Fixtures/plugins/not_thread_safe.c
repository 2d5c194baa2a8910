#define _POSIX_C_SOURCE 200809L
/*
 * Does not declare BP_PLUGIN_THREAD_SAFE: the host must never run two of its calls at once.
 * `overlap` reports the highest number of its calls it saw running together.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "minimal_action.h"

static atomic_int running;
static atomic_int highest;

static bp_status overlap_execute(bp_call *call, void *context, bp_bytes input) {
    (void)context;
    (void)input;
    int now = atomic_fetch_add(&running, 1) + 1;
    int seen = atomic_load(&highest);
    while (now > seen && !atomic_compare_exchange_weak(&highest, &seen, now)) {
    }
    struct timespec pause = {0, 5 * 1000000L};
    nanosleep(&pause, NULL);
    atomic_fetch_sub(&running, 1);
    char result[64];
    int n = snprintf(result, sizeof result, "{\"outputs\":{\"highest\":%d}}", atomic_load(&highest));
    fixture_host->write_output(call, (bp_bytes){(const uint8_t *)result, (size_t)n});
    return BP_STATUS_OK;
}

static const char metadata[] = MINIMAL_METADATA("overlap");
static const bp_action_v1 action = {sizeof(bp_action_v1), 0, FIXTURE_BYTES(metadata), NULL, overlap_execute, NULL, NULL, NULL};
static const bp_action_v1 *const actions[] = {&action};
static const bp_plugin_descriptor_v1 descriptor = {
    sizeof(bp_plugin_descriptor_v1), BP_BUILD_SIGNATURE_INIT,
    0, 1, FIXTURE_BYTES(MINIMAL_MANIFEST("not_thread_safe")), actions, NULL, NULL,
};

BP_EXPORT const bp_plugin_descriptor_v1 *bp_plugin_entry_v1(const bp_host_api_v1 *host) {
    fixture_host = host;
    return &descriptor;
}
