/*
 * Compile-time guards for budpipeline_plugin.h. Every build of the host checks
 * that the 1.0 minimum sizes still fit the structs (fields are only appended)
 * and that the layout assumptions the ABI documents hold on this platform.
 * Exact sizes and offsets per platform are pinned by Tests/PluginABITests.
 */
#include "budpipeline_plugin.h"

_Static_assert(sizeof(bp_build_signature) == 5 * sizeof(uint32_t), "build signature is five uint32_t");
_Static_assert(offsetof(bp_plugin_descriptor_v1, signature) == sizeof(uint32_t),
               "the build signature follows struct_size directly");
_Static_assert(offsetof(bp_bytes, ptr) == 0, "bp_bytes starts with ptr");
_Static_assert(sizeof(bp_bytes) == 2 * sizeof(void *), "bp_bytes is two words");
_Static_assert(BP_PLUGIN_DESCRIPTOR_V1_MIN_SIZE <= sizeof(bp_plugin_descriptor_v1), "descriptor minimum");
_Static_assert(BP_ACTION_V1_MIN_SIZE <= sizeof(bp_action_v1), "action minimum");
_Static_assert(BP_PROGRESS_MIN_SIZE <= sizeof(bp_progress), "progress minimum");
_Static_assert(BP_SERVICE_REQUEST_MIN_SIZE <= sizeof(bp_service_request), "service request minimum");
_Static_assert(BP_SERVICE_RESPONSE_MIN_SIZE <= sizeof(bp_service_response), "service response minimum");
_Static_assert(sizeof(bp_status) == 4 && sizeof(bp_log_level) == 4, "enumerations are uint32_t");
