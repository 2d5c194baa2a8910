/* Declares a 4-byte pointer size in its build signature, as a 32-bit build would. */
#include "minimal_action.h"

static const char metadata[] = MINIMAL_METADATA("wrong_signature_action");
static const bp_action_v1 action = {sizeof(bp_action_v1), 0, FIXTURE_BYTES(metadata), NULL, minimal_execute, NULL, NULL, NULL};
static const bp_action_v1 *const actions[] = {&action};
static const bp_plugin_descriptor_v1 descriptor = {
    sizeof(bp_plugin_descriptor_v1),
    {BP_SIGNATURE_MAGIC, BP_ABI_MAJOR, BP_ABI_MINOR, 4, BP_BYTE_ORDER_MARK},
    0, 1, FIXTURE_BYTES(MINIMAL_MANIFEST("wrong_signature")), actions, NULL, NULL,
};

BP_EXPORT const bp_plugin_descriptor_v1 *bp_plugin_entry_v1(const bp_host_api_v1 *host) {
    fixture_host = host;
    return &descriptor;
}
