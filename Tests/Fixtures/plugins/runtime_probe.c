#define _POSIX_C_SOURCE 200809L
/*
 * Actions for the runtime tests. Every call of every action appends one line to the file named by
 * the environment variable BUDPIPELINE_PROBE_LOG (when set): "<call> <idempotency key> pid=<pid>\n", written
 * with one O_APPEND write so that lines from several processes never interleave.
 *
 *   probe_echo         completes with {"attempt": <retry_count>, "key": <idempotency key>}; sleeps
 *                      params.sleep_ms first and reports 50 % progress
 *   probe_flaky        fails (retryable) while retry_count < params.fail_times, then completes
 *   probe_fatal        fails (fatal) with "probe failure"
 *   probe_await        awaits an event with external id "ext-<key>" (timeout params.await_seconds)
 *   probe_concurrency  sleeps params.sleep_ms and reports the most calls it saw running at once
 *
 * Cleanup calls are logged as "cleanup <execution id>/<step id>".
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "minimal_action.h"
#include "probe_log.h"

static atomic_int running_now;
static atomic_int running_most;

static long read_number(bp_bytes input, const char *key, long fallback) {
    const char *value = fixture_find(input, key);
    return value ? strtol(value, NULL, 10) : fallback;
}

static void sleep_ms(long ms) {
    if (ms <= 0) return;
    struct timespec duration = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&duration, NULL);
}

static bp_status write_json(bp_call *call, const char *json) {
    return fixture_host->write_output(call, fixture_text(json));
}

static bp_status echo_execute(bp_call *call, void *context, bp_bytes input) {
    (void)context;
    char key[400];
    probe_read_string(input, "idempotency_key", key, sizeof key);
    probe_log_line("execute", key);
    bp_progress progress = {sizeof(bp_progress), BP_PROGRESS_PERCENT, 50.0, 0, {NULL, 0}};
    fixture_host->report_progress(call, &progress);
    sleep_ms(read_number(input, "sleep_ms", 0));
    char result[600];
    snprintf(result, sizeof result, "{\"outputs\":{\"attempt\":%ld,\"key\":\"%s\"}}", read_number(input, "retry_count", 0), key);
    write_json(call, result);
    return BP_STATUS_OK;
}

static bp_status flaky_execute(bp_call *call, void *context, bp_bytes input) {
    (void)context;
    char key[400];
    probe_read_string(input, "idempotency_key", key, sizeof key);
    probe_log_line("execute", key);
    long attempt = read_number(input, "retry_count", 0);
    if (attempt < read_number(input, "fail_times", 0)) {
        char message[100];
        snprintf(message, sizeof message, "flaky failure on attempt %ld", attempt);
        fixture_host->write_error(call, fixture_text(message));
        return BP_STATUS_RETRYABLE_ERROR;
    }
    char result[100];
    snprintf(result, sizeof result, "{\"outputs\":{\"attempt\":%ld}}", attempt);
    write_json(call, result);
    return BP_STATUS_OK;
}

static bp_status fatal_execute(bp_call *call, void *context, bp_bytes input) {
    (void)context;
    char key[400];
    probe_read_string(input, "idempotency_key", key, sizeof key);
    probe_log_line("execute", key);
    fixture_host->write_error(call, FIXTURE_BYTES("probe failure"));
    return BP_STATUS_FATAL_ERROR;
}

static bp_status await_execute(bp_call *call, void *context, bp_bytes input) {
    (void)context;
    char key[400];
    probe_read_string(input, "idempotency_key", key, sizeof key);
    probe_log_line("execute", key);
    char result[600];
    long timeout = read_number(input, "await_seconds", 0);
    if (timeout > 0) {
        snprintf(result, sizeof result, "{\"outputs\":{\"waiting\":true},\"external_workflow_id\":\"ext-%s\",\"timeout_seconds\":%ld}", key, timeout);
    } else {
        snprintf(result, sizeof result, "{\"outputs\":{\"waiting\":true},\"external_workflow_id\":\"ext-%s\"}", key);
    }
    write_json(call, result);
    return BP_STATUS_AWAIT_EVENT;
}

static bp_status concurrency_execute(bp_call *call, void *context, bp_bytes input) {
    (void)context;
    int now = atomic_fetch_add(&running_now, 1) + 1;
    int most = atomic_load(&running_most);
    while (now > most && !atomic_compare_exchange_weak(&running_most, &most, now)) {}
    sleep_ms(read_number(input, "sleep_ms", 0));
    atomic_fetch_sub(&running_now, 1);
    char result[100];
    snprintf(result, sizeof result, "{\"outputs\":{\"most_at_once\":%d}}", atomic_load(&running_most));
    write_json(call, result);
    return BP_STATUS_OK;
}

static bp_status probe_cleanup(bp_call *call, void *context, bp_bytes input) {
    (void)call;
    (void)context;
    char execution[100];
    char step[300];
    char both[401];
    probe_read_string(input, "execution_id", execution, sizeof execution);
    probe_read_string(input, "step_id", step, sizeof step);
    snprintf(both, sizeof both, "%s/%s", execution, step);
    probe_log_line("cleanup", both);
    return BP_STATUS_OK;
}

#define PROBE_ACTION(name, execute) \
    {sizeof(bp_action_v1), 0, FIXTURE_BYTES(MINIMAL_METADATA(name)), NULL, execute, NULL, NULL, probe_cleanup}

static const bp_action_v1 echo_action = PROBE_ACTION("probe_echo", echo_execute);
static const bp_action_v1 flaky_action = PROBE_ACTION("probe_flaky", flaky_execute);
static const bp_action_v1 fatal_action = PROBE_ACTION("probe_fatal", fatal_execute);
static const bp_action_v1 await_action = PROBE_ACTION("probe_await", await_execute);
static const bp_action_v1 concurrency_action = PROBE_ACTION("probe_concurrency", concurrency_execute);
static const bp_action_v1 *const actions[] = {&echo_action, &flaky_action, &fatal_action, &await_action, &concurrency_action};
static const bp_plugin_descriptor_v1 descriptor = {
    sizeof(bp_plugin_descriptor_v1), BP_BUILD_SIGNATURE_INIT,
    BP_PLUGIN_THREAD_SAFE, 5, FIXTURE_BYTES(MINIMAL_MANIFEST("runtime_probe")), actions, NULL, NULL,
};

BP_EXPORT const bp_plugin_descriptor_v1 *bp_plugin_entry_v1(const bp_host_api_v1 *host) {
    fixture_host = host;
    return &descriptor;
}
