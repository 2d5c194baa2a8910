/* Exports the v1 entry symbol but declares ABI major 2 in its build signature. */
#include "minimal_action.h"

static const char metadata[] = MINIMAL_METADATA("wrong_major_action");
static const bp_action_v1 action = {sizeof(bp_action_v1), 0, FIXTURE_BYTES(metadata), NULL, minimal_execute, NULL, NULL, NULL};
static const bp_action_v1 *const actions[] = {&action};
static const bp_plugin_descriptor_v1 descriptor = {
    sizeof(bp_plugin_descriptor_v1),
    {BP_SIGNATURE_MAGIC, 2, 0, (uint32_t)sizeof(void *), BP_BYTE_ORDER_MARK},
    0, 1, FIXTURE_BYTES(MINIMAL_MANIFEST("wrong_major")), actions, NULL, NULL,
};

BP_EXPORT const bp_plugin_descriptor_v1 *bp_plugin_entry_v1(const bp_host_api_v1 *host) {
    fixture_host = host;
    return &descriptor;
}
