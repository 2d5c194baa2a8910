/* Claims a descriptor struct_size smaller than the ABI 1.0 minimum (it omits init and shutdown). */
#include "minimal_action.h"

static const char metadata[] = MINIMAL_METADATA("small_struct_action");
static const bp_action_v1 action = {sizeof(bp_action_v1), 0, FIXTURE_BYTES(metadata), NULL, minimal_execute, NULL, NULL, NULL};
static const bp_action_v1 *const actions[] = {&action};
static const bp_plugin_descriptor_v1 descriptor = {
    (uint32_t)offsetof(bp_plugin_descriptor_v1, init),
    BP_BUILD_SIGNATURE_INIT,
    0, 1, FIXTURE_BYTES(MINIMAL_MANIFEST("small_struct")), actions, NULL, NULL,
};

BP_EXPORT const bp_plugin_descriptor_v1 *bp_plugin_entry_v1(const bp_host_api_v1 *host) {
    fixture_host = host;
    return &descriptor;
}
