#define _POSIX_C_SOURCE 200809L
/*
 * Actions that take their time: `sleep_ms` blocks for params.ms milliseconds without looking at
 * cancellation (it overruns any shorter timeout); `wait_for_cancel` polls is_cancelled and returns
 * as soon as the host gives up on it.
 */
#include <stdlib.h>
#include <time.h>

#include "minimal_action.h"

static long read_ms(bp_bytes input) {
    const char *value = fixture_find(input, "ms");
    return value ? strtol(value, NULL, 10) : 0;
}

static void sleep_for(long ms) {
    struct timespec duration = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&duration, NULL);
}

static bp_status sleep_execute(bp_call *call, void *context, bp_bytes input) {
    (void)context;
    sleep_for(read_ms(input));
    fixture_host->write_output(call, FIXTURE_BYTES("{\"outputs\":{\"slept\":true}}"));
    return BP_STATUS_OK;
}

static bp_status wait_execute(bp_call *call, void *context, bp_bytes input) {
    (void)context;
    (void)input;
    for (int i = 0; i < 10000; i++) {
        if (fixture_host->is_cancelled(call)) {
            fixture_host->write_error(call, FIXTURE_BYTES("stopped because the host cancelled the call"));
            return BP_STATUS_FATAL_ERROR;
        }
        sleep_for(1);
    }
    return BP_STATUS_OK;
}

static const char sleep_metadata[] = MINIMAL_METADATA("sleep_ms");
static const char wait_metadata[] = MINIMAL_METADATA("wait_for_cancel");
static const bp_action_v1 sleep_action = {sizeof(bp_action_v1), 0, FIXTURE_BYTES(sleep_metadata), NULL, sleep_execute, NULL, NULL, NULL};
static const bp_action_v1 wait_action = {sizeof(bp_action_v1), 0, FIXTURE_BYTES(wait_metadata), NULL, wait_execute, NULL, NULL, NULL};
static const bp_action_v1 *const actions[] = {&sleep_action, &wait_action};
static const bp_plugin_descriptor_v1 descriptor = {
    sizeof(bp_plugin_descriptor_v1), BP_BUILD_SIGNATURE_INIT,
    BP_PLUGIN_THREAD_SAFE, 2, FIXTURE_BYTES(MINIMAL_MANIFEST("slow")), actions, NULL, NULL,
};

BP_EXPORT const bp_plugin_descriptor_v1 *bp_plugin_entry_v1(const bp_host_api_v1 *host) {
    fixture_host = host;
    return &descriptor;
}
