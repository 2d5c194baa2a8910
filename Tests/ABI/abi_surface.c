/*
 * The ABI surface for abidiff: one exported function whose parameters reach every type of
 * budpipeline_plugin.h, so that `abidw` records each struct, field, enumeration and constant.
 * scripts/abi-check.sh compiles it and compares the result with Tests/ABI/budpipeline_plugin_v1.abi.
 */
#include "budpipeline_plugin.h"

BP_EXPORT int bp_abi_surface(const bp_host_api_v1 *host, const bp_plugin_descriptor_v1 *descriptor,
                             const bp_action_v1 *action, const bp_progress *progress,
                             const bp_service_request *request, const bp_service_response *response,
                             const bp_build_signature *signature, bp_bytes bytes, bp_call *call,
                             enum bp_status_code status, enum bp_log_level_code level,
                             enum bp_progress_field field, enum bp_plugin_flag flag,
                             bp_action_fn action_function, bp_plugin_entry_v1_fn entry) {
    return host != 0 && descriptor != 0 && action != 0 && progress != 0 && request != 0 && response != 0 &&
           signature != 0 && bytes.len == 0 && call != 0 && status == BP_STATUS_OK && level == BP_LOG_INFO &&
           field == BP_PROGRESS_PERCENT && flag == BP_PLUGIN_THREAD_SAFE && action_function != 0 && entry != 0;
}
