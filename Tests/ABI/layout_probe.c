/*
 * Prints the size and offset of every ABI 1.0 struct field and the value of every 1.0 constant.
 * Compiled once against the frozen v1 header and once against the current one: the two outputs
 * must be identical, so no 1.0 field ever moves or changes size and no constant changes value.
 */
#include <stdio.h>

#include "budpipeline_plugin.h"

#define FIELD(type, field) \
    printf(#type "." #field " offset=%zu size=%zu\n", offsetof(type, field), sizeof(((type *)0)->field))
#define CONSTANT(name) printf(#name " = %llu\n", (unsigned long long)(name))

int main(void) {
    FIELD(bp_bytes, ptr);
    FIELD(bp_bytes, len);
    FIELD(bp_build_signature, magic);
    FIELD(bp_build_signature, abi_major);
    FIELD(bp_build_signature, abi_minor);
    FIELD(bp_build_signature, pointer_size);
    FIELD(bp_build_signature, byte_order);
    FIELD(bp_progress, struct_size);
    FIELD(bp_progress, fields);
    FIELD(bp_progress, percent);
    FIELD(bp_progress, eta_seconds);
    FIELD(bp_progress, message);
    FIELD(bp_service_request, struct_size);
    FIELD(bp_service_request, timeout_ms);
    FIELD(bp_service_request, app_id);
    FIELD(bp_service_request, method);
    FIELD(bp_service_request, path);
    FIELD(bp_service_request, body);
    FIELD(bp_service_response, struct_size);
    FIELD(bp_service_response, http_status);
    FIELD(bp_service_response, body);
    FIELD(bp_host_api_v1, struct_size);
    FIELD(bp_host_api_v1, abi_minor);
    FIELD(bp_host_api_v1, log);
    FIELD(bp_host_api_v1, report_progress);
    FIELD(bp_host_api_v1, invoke_service);
    FIELD(bp_host_api_v1, get_config);
    FIELD(bp_host_api_v1, write_output);
    FIELD(bp_host_api_v1, write_error);
    FIELD(bp_host_api_v1, is_cancelled);
    FIELD(bp_action_v1, struct_size);
    FIELD(bp_action_v1, flags);
    FIELD(bp_action_v1, metadata_json);
    FIELD(bp_action_v1, action_context);
    FIELD(bp_action_v1, execute);
    FIELD(bp_action_v1, on_event);
    FIELD(bp_action_v1, validate_params);
    FIELD(bp_action_v1, cleanup);
    FIELD(bp_plugin_descriptor_v1, struct_size);
    FIELD(bp_plugin_descriptor_v1, signature);
    FIELD(bp_plugin_descriptor_v1, flags);
    FIELD(bp_plugin_descriptor_v1, action_count);
    FIELD(bp_plugin_descriptor_v1, manifest_json);
    FIELD(bp_plugin_descriptor_v1, actions);
    FIELD(bp_plugin_descriptor_v1, init);
    FIELD(bp_plugin_descriptor_v1, shutdown);
    CONSTANT(BP_ABI_MAJOR);
    CONSTANT(BP_SIGNATURE_MAGIC);
    CONSTANT(BP_BYTE_ORDER_MARK);
    CONSTANT(BP_STATUS_OK);
    CONSTANT(BP_STATUS_AWAIT_EVENT);
    CONSTANT(BP_STATUS_RETRYABLE_ERROR);
    CONSTANT(BP_STATUS_FATAL_ERROR);
    CONSTANT(BP_STATUS_NOT_FOUND);
    CONSTANT(BP_STATUS_UNSUPPORTED);
    CONSTANT(BP_STATUS_INVALID_ARGUMENT);
    CONSTANT(BP_STATUS_LIMIT_EXCEEDED);
    CONSTANT(BP_LOG_TRACE);
    CONSTANT(BP_LOG_DEBUG);
    CONSTANT(BP_LOG_INFO);
    CONSTANT(BP_LOG_NOTICE);
    CONSTANT(BP_LOG_WARNING);
    CONSTANT(BP_LOG_ERROR);
    CONSTANT(BP_LOG_CRITICAL);
    CONSTANT(BP_PROGRESS_PERCENT);
    CONSTANT(BP_PROGRESS_ETA);
    CONSTANT(BP_PROGRESS_MESSAGE);
    CONSTANT(BP_PLUGIN_THREAD_SAFE);
    CONSTANT(BP_PLUGIN_DESCRIPTOR_V1_MIN_SIZE);
    CONSTANT(BP_ACTION_V1_MIN_SIZE);
    CONSTANT(BP_PROGRESS_MIN_SIZE);
    CONSTANT(BP_SERVICE_REQUEST_MIN_SIZE);
    CONSTANT(BP_SERVICE_RESPONSE_MIN_SIZE);
    return 0;
}
