/*
 * A plugin whose execute does no work of its own: it ignores its input and writes a fixed small
 * result. The plugin-call benchmark compiles it at run time to measure the bare ABI crossing.
 */
#include "budpipeline_plugin.h"

static const bp_host_api_v1 *host;
static const char result[] = "{\"outputs\":{\"ok\":true,\"count\":1}}";

static bp_status noop_execute(bp_call *call, void *context, bp_bytes input) {
    (void)context;
    (void)input;
    host->write_output(call, (bp_bytes){(const uint8_t *)result, sizeof result - 1});
    return BP_STATUS_OK;
}

static const char metadata[] =
    "{\"type\":\"noop\",\"name\":\"No-op\",\"category\":\"Benchmarks\",\"description\":\"Does nothing.\"}";
static const bp_action_v1 noop = {sizeof(bp_action_v1), 0, {(const uint8_t *)metadata, sizeof metadata - 1}, 0,
                                  noop_execute, 0, 0, 0};
static const bp_action_v1 *const actions[] = {&noop};
static const char manifest[] = "{\"name\":\"noop\",\"version\":\"1.0.0\"}";
static const bp_plugin_descriptor_v1 descriptor = {
    sizeof(bp_plugin_descriptor_v1), BP_BUILD_SIGNATURE_INIT, BP_PLUGIN_THREAD_SAFE, 1,
    {(const uint8_t *)manifest, sizeof manifest - 1}, actions, 0, 0,
};

BP_EXPORT const bp_plugin_descriptor_v1 *bp_plugin_entry_v1(const bp_host_api_v1 *host_api) {
    host = host_api;
    return &descriptor;
}
