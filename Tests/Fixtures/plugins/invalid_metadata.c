/* Valid JSON, but the second action's first parameter has no label. */
#include "minimal_action.h"

static const char first_metadata[] = MINIMAL_METADATA("invalid_metadata_ok");
static const char second_metadata[] =
    "{\"type\":\"invalid_metadata_unlabelled\",\"name\":\"Unlabelled\",\"category\":\"Fixtures\","
    "\"description\":\"A parameter without a label.\",\"params\":[{\"name\":\"size\",\"type\":\"number\"}]}";
static const bp_action_v1 first = {sizeof(bp_action_v1), 0, FIXTURE_BYTES(first_metadata), NULL, minimal_execute, NULL, NULL, NULL};
static const bp_action_v1 second = {sizeof(bp_action_v1), 0, FIXTURE_BYTES(second_metadata), NULL, minimal_execute, NULL, NULL, NULL};
static const bp_action_v1 *const actions[] = {&first, &second};
static const bp_plugin_descriptor_v1 descriptor = {
    sizeof(bp_plugin_descriptor_v1), BP_BUILD_SIGNATURE_INIT,
    0, 2, FIXTURE_BYTES(MINIMAL_MANIFEST("invalid_metadata")), actions, NULL, NULL,
};

BP_EXPORT const bp_plugin_descriptor_v1 *bp_plugin_entry_v1(const bp_host_api_v1 *host) {
    fixture_host = host;
    return &descriptor;
}
