/*
 * Action `service_probe`: calls invoke_service with exactly the bytes it is given, so that tests
 * can hand the host any app id, method and path (NUL and control characters included).
 *
 *   params {"app_hex": "...", "method_hex": "...", "path_hex": "..."}  (each the bytes in hex)
 *   → outputs {"service_status": <bp_status>, "http_status": <n>, "body_hex": "<response body in hex>"}
 */
#include <stdio.h>

#include "minimal_action.h"

enum { MAX_BYTES = 16384 };

static int hex_value(char digit) {
    if (digit >= '0' && digit <= '9') return digit - '0';
    if (digit >= 'a' && digit <= 'f') return digit - 'a' + 10;
    if (digit >= 'A' && digit <= 'F') return digit - 'A' + 10;
    return -1;
}

/* Decodes the hex string value of `key` into `out`; returns its length, or 0 when absent. */
static size_t read_hex(bp_bytes input, const char *key, uint8_t *out) {
    const char *value = fixture_find(input, key);
    const char *end = (const char *)input.ptr + input.len;
    if (!value || value >= end || *value != '"') return 0;
    size_t length = 0;
    for (const char *cursor = value + 1; cursor + 1 < end && *cursor != '"' && length < MAX_BYTES; cursor += 2) {
        int high = hex_value(cursor[0]), low = hex_value(cursor[1]);
        if (high < 0 || low < 0) break;
        out[length++] = (uint8_t)(high << 4 | low);
    }
    return length;
}

static uint8_t app[MAX_BYTES], method[MAX_BYTES], path[MAX_BYTES];
static char answer[2 * MAX_BYTES + 128];

static bp_status probe_execute(bp_call *call, void *context, bp_bytes input) {
    (void)context;
    size_t app_length = read_hex(input, "app_hex", app);
    size_t method_length = read_hex(input, "method_hex", method);
    size_t path_length = read_hex(input, "path_hex", path);
    bp_service_request request = {sizeof(bp_service_request), 2000, {app, app_length}, {method, method_length}, {path, path_length}, {0}};
    bp_service_response response = {sizeof(bp_service_response), 0, {0}};
    bp_status status = fixture_host->invoke_service(call, &request, &response);
    int written = snprintf(answer, sizeof answer, "{\"outputs\":{\"service_status\":%u,\"http_status\":%u,\"body_hex\":\"", status,
                           response.http_status);
    for (size_t i = 0; i < response.body.len && (size_t)written + 8 < sizeof answer; i++) {
        written += snprintf(answer + written, sizeof answer - (size_t)written, "%02x", response.body.ptr[i]);
    }
    written += snprintf(answer + written, sizeof answer - (size_t)written, "\"}}");
    fixture_host->write_output(call, (bp_bytes){(const uint8_t *)answer, (size_t)written});
    return BP_STATUS_OK;
}

static const char probe_metadata[] = MINIMAL_METADATA("service_probe");
static const bp_action_v1 probe_action = {sizeof(bp_action_v1), 0, FIXTURE_BYTES(probe_metadata), NULL, probe_execute, NULL, NULL, NULL};
static const bp_action_v1 *const actions[] = {&probe_action};
static const bp_plugin_descriptor_v1 descriptor = {
    sizeof(bp_plugin_descriptor_v1), BP_BUILD_SIGNATURE_INIT, 0, 1, FIXTURE_BYTES(MINIMAL_MANIFEST("service_probe")),
    actions, NULL, NULL,
};

BP_EXPORT const bp_plugin_descriptor_v1 *bp_plugin_entry_v1(const bp_host_api_v1 *host) {
    fixture_host = host;
    return &descriptor;
}
