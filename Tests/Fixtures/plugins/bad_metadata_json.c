/* Its action metadata is not valid JSON (a trailing comma and no closing brace). */
#include "minimal_action.h"

static const char metadata[] = "{\"type\":\"broken\",\"name\":\"Broken\",";
static const bp_action_v1 action = {sizeof(bp_action_v1), 0, FIXTURE_BYTES(metadata), NULL, minimal_execute, NULL, NULL, NULL};
static const bp_action_v1 *const actions[] = {&action};
static const bp_plugin_descriptor_v1 descriptor = {
    sizeof(bp_plugin_descriptor_v1), BP_BUILD_SIGNATURE_INIT,
    0, 1, FIXTURE_BYTES(MINIMAL_MANIFEST("bad_metadata_json")), actions, NULL, NULL,
};

BP_EXPORT const bp_plugin_descriptor_v1 *bp_plugin_entry_v1(const bp_host_api_v1 *host) {
    fixture_host = host;
    return &descriptor;
}
