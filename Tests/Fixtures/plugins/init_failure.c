/* Its init refuses to start, with a message. */
#include "minimal_action.h"

static bp_status failing_init(bp_call *call, bp_bytes config) {
    (void)config;
    fixture_host->write_error(call, FIXTURE_BYTES("database unreachable at db:5432"));
    return BP_STATUS_FATAL_ERROR;
}

static const char metadata[] = MINIMAL_METADATA("init_failure_action");
static const bp_action_v1 action = {sizeof(bp_action_v1), 0, FIXTURE_BYTES(metadata), NULL, minimal_execute, NULL, NULL, NULL};
static const bp_action_v1 *const actions[] = {&action};
static const bp_plugin_descriptor_v1 descriptor = {
    sizeof(bp_plugin_descriptor_v1), BP_BUILD_SIGNATURE_INIT,
    BP_PLUGIN_THREAD_SAFE, 1, FIXTURE_BYTES(MINIMAL_MANIFEST("init_failure")), actions, failing_init, NULL,
};

BP_EXPORT const bp_plugin_descriptor_v1 *bp_plugin_entry_v1(const bp_host_api_v1 *host) {
    fixture_host = host;
    return &descriptor;
}
