/*
 * Built against the frozen copy of the v1 header (Tests/ABI/v1). Every later host must load it and
 * pass its tests unchanged: it exercises each host service and each plugin function of ABI 1.0.
 *
 * Action `frozen_probe`:
 *   execute      params {"mode": "ok"}     → logs, reports progress, reads config "greeting", calls
 *                                            service "echo" and returns what it saw
 *                params {"mode": "fail"}   → FATAL_ERROR "frozen failure" with outputs {"partial": 1}
 *                params {"mode": "retry"}  → RETRYABLE_ERROR "try later"
 *                params {"mode": "await"}  → AWAIT_EVENT on "frozen-42", timeout 90 s
 *   on_event     {"decision": "go"} → complete COMPLETED; {"decision": "stop"} → complete FAILED;
 *                {"percent": ...} → update_progress 40 % / ETA 120 s; anything else → ignore
 *   validate     params containing "bad" → one error
 *   cleanup      logs and returns OK
 */
#include <stdio.h>
#include <string.h>

#include "fixture.h"

static const bp_host_api_v1 *host;

static int input_has(bp_bytes input, const char *needle) {
    size_t length = strlen(needle);
    for (size_t i = 0; i + length <= input.len; i++) {
        if (memcmp(input.ptr + i, needle, length) == 0) return 1;
    }
    return 0;
}

static bp_status probe_execute(bp_call *call, void *context, bp_bytes input) {
    if (context != (void *)&host) return BP_STATUS_FATAL_ERROR;
    if (input_has(input, "\"mode\":\"fail\"")) {
        host->write_output(call, FIXTURE_BYTES("{\"outputs\":{\"partial\":1}}"));
        host->write_error(call, FIXTURE_BYTES("frozen "));
        host->write_error(call, FIXTURE_BYTES("failure"));
        return BP_STATUS_FATAL_ERROR;
    }
    if (input_has(input, "\"mode\":\"retry\"")) {
        host->write_error(call, FIXTURE_BYTES("try later"));
        return BP_STATUS_RETRYABLE_ERROR;
    }
    if (input_has(input, "\"mode\":\"await\"")) {
        host->write_output(call, FIXTURE_BYTES("{\"outputs\":{\"state\":\"waiting\"},\"external_workflow_id\":\"frozen-42\",\"timeout_seconds\":90}"));
        return BP_STATUS_AWAIT_EVENT;
    }

    host->log(call, BP_LOG_INFO, FIXTURE_BYTES("frozen probe running"));
    bp_progress progress = {sizeof(bp_progress), BP_PROGRESS_PERCENT | BP_PROGRESS_ETA | BP_PROGRESS_MESSAGE, 50.0, 7, FIXTURE_BYTES("half way")};
    bp_status progress_status = host->report_progress(call, &progress);
    bp_progress invalid = {sizeof(bp_progress), BP_PROGRESS_PERCENT, 150.0, 0, {0}};
    bp_status invalid_status = host->report_progress(call, &invalid);

    bp_bytes greeting = {0};
    bp_status config_status = host->get_config(call, FIXTURE_BYTES("greeting"), &greeting);
    bp_bytes missing = {0};
    bp_status missing_status = host->get_config(call, FIXTURE_BYTES("absent"), &missing);

    bp_service_request request = {sizeof(bp_service_request), 2500, FIXTURE_BYTES("echo"), FIXTURE_BYTES("post"),
                                  FIXTURE_BYTES("items?x=1"), FIXTURE_BYTES("{\"q\":1}")};
    bp_service_response response = {sizeof(bp_service_response), 0, {0}};
    bp_status service_status = host->invoke_service(call, &request, &response);

    char head[512];
    int n = snprintf(head, sizeof head,
                     "{\"outputs\":{\"progress_status\":%u,\"invalid_progress_status\":%u,\"config_status\":%u,"
                     "\"missing_config_status\":%u,\"service_status\":%u,\"http_status\":%u,\"cancelled\":%u,"
                     "\"input_bytes\":%zu,\"greeting\":",
                     progress_status, invalid_status, config_status, missing_status, service_status,
                     response.http_status, host->is_cancelled(call), input.len);
    host->write_output(call, (bp_bytes){(const uint8_t *)head, (size_t)n});
    host->write_output(call, config_status == BP_STATUS_OK ? greeting : FIXTURE_BYTES("null"));
    host->write_output(call, FIXTURE_BYTES(",\"service_body\":"));
    if (service_status == BP_STATUS_OK) {
        host->write_output(call, response.body);
    } else {
        host->write_output(call, FIXTURE_BYTES("\""));
        host->write_output(call, response.body);
        host->write_output(call, FIXTURE_BYTES("\""));
    }
    host->write_output(call, FIXTURE_BYTES("}}"));
    return BP_STATUS_OK;
}

static bp_status probe_on_event(bp_call *call, void *context, bp_bytes input) {
    (void)context;
    if (input_has(input, "\"decision\":\"go\"")) {
        host->write_output(call, FIXTURE_BYTES("{\"action\":\"complete\",\"status\":\"COMPLETED\",\"outputs\":{\"decided\":\"go\"}}"));
    } else if (input_has(input, "\"decision\":\"stop\"")) {
        host->write_output(call, FIXTURE_BYTES("{\"action\":\"complete\",\"status\":\"FAILED\",\"error\":\"stopped by event\"}"));
    } else if (input_has(input, "\"percent\"")) {
        host->write_output(call, FIXTURE_BYTES("{\"action\":\"update_progress\",\"progress\":40,\"eta_seconds\":120}"));
    } else {
        host->write_output(call, FIXTURE_BYTES("{\"action\":\"ignore\"}"));
    }
    return BP_STATUS_OK;
}

static bp_status probe_validate(bp_call *call, void *context, bp_bytes input) {
    (void)context;
    if (input_has(input, "bad")) {
        host->write_output(call, FIXTURE_BYTES("{\"errors\":[\"frozen says no\"]}"));
    } else {
        host->write_output(call, FIXTURE_BYTES("{\"errors\":[]}"));
    }
    return BP_STATUS_OK;
}

static bp_status probe_cleanup(bp_call *call, void *context, bp_bytes input) {
    (void)context;
    (void)input;
    host->log(call, BP_LOG_NOTICE, FIXTURE_BYTES("frozen cleanup"));
    return BP_STATUS_OK;
}

static int initialised;

static bp_status probe_init(bp_call *call, bp_bytes config) {
    host->log(call, BP_LOG_DEBUG, FIXTURE_BYTES("frozen init"));
    initialised = config.len >= 2;
    return initialised ? BP_STATUS_OK : BP_STATUS_FATAL_ERROR;
}

static void probe_shutdown(bp_call *call) {
    host->log(call, BP_LOG_DEBUG, FIXTURE_BYTES("frozen shutdown"));
}

static const char metadata[] =
    "{\"type\":\"frozen_probe\",\"name\":\"Frozen probe\",\"category\":\"Fixtures\","
    "\"description\":\"Built against the frozen v1 header.\",\"version\":\"1.0.0\","
    "\"params\":[{\"name\":\"mode\",\"label\":\"Mode\",\"type\":\"select\",\"default\":\"ok\","
    "\"options\":[{\"label\":\"OK\",\"value\":\"ok\"},{\"label\":\"Fail\",\"value\":\"fail\"},"
    "{\"label\":\"Retry\",\"value\":\"retry\"},{\"label\":\"Await\",\"value\":\"await\"}]}],"
    "\"outputs\":[{\"name\":\"*\",\"type\":\"object\"}],\"execution_mode\":\"event_driven\",\"timeout_seconds\":60}";

static const bp_action_v1 probe = {
    sizeof(bp_action_v1), 0, FIXTURE_BYTES(metadata), (void *)&host,
    probe_execute, probe_on_event, probe_validate, probe_cleanup,
};
static const bp_action_v1 *const actions[] = {&probe};
static const bp_plugin_descriptor_v1 descriptor = {
    sizeof(bp_plugin_descriptor_v1), BP_BUILD_SIGNATURE_INIT,
    0, 1, FIXTURE_BYTES("{\"name\":\"frozen_v1\",\"version\":\"1.0.0\",\"description\":\"ABI 1.0 fixture\"}"),
    actions, probe_init, probe_shutdown,
};

BP_EXPORT const bp_plugin_descriptor_v1 *bp_plugin_entry_v1(const bp_host_api_v1 *host_api) {
    host = host_api;
    return &descriptor;
}
