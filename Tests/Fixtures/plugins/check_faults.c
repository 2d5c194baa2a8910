#define _POSIX_C_SOURCE 200809L
/*
 * A plugin that loads cleanly and breaks the protocol in each of its optional functions, for
 * `budpipeline plugins check`:
 *
 *   bad_validate      validate_params writes a result that is not JSON
 *   slow_validate     validate_params sleeps 3 s (past a 1 s check timeout)
 *   abort_cleanup     cleanup calls abort()
 *   await_from_event  on_event returns AWAIT_EVENT, which on_event may not return
 *   late_validate     validate_params answers, then writes through its call handle 200 ms later
 */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "minimal_action.h"

static void pause_ms(long ms) {
    struct timespec duration = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&duration, NULL);
}

static bp_status bad_validate(bp_call *call, void *context, bp_bytes input) {
    (void)context;
    (void)input;
    fixture_host->write_output(call, FIXTURE_BYTES("{\"errors\": ["));
    return BP_STATUS_OK;
}

static bp_status slow_validate(bp_call *call, void *context, bp_bytes input) {
    (void)context;
    (void)input;
    pause_ms(3000);
    fixture_host->write_output(call, FIXTURE_BYTES("{\"errors\": []}"));
    return BP_STATUS_OK;
}

static bp_status abort_cleanup(bp_call *call, void *context, bp_bytes input) {
    (void)call;
    (void)context;
    (void)input;
    abort();
}

static bp_status await_event(bp_call *call, void *context, bp_bytes input) {
    (void)context;
    (void)input;
    fixture_host->write_output(call, FIXTURE_BYTES("{\"external_workflow_id\": \"x\"}"));
    return BP_STATUS_AWAIT_EVENT;
}

static void *write_late(void *handle) {
    pause_ms(200);
    fixture_host->write_output((bp_call *)handle, FIXTURE_BYTES("{\"errors\": [\"late\"]}"));
    return NULL;
}

static bp_status late_validate(bp_call *call, void *context, bp_bytes input) {
    (void)context;
    (void)input;
    pthread_t thread;
    if (pthread_create(&thread, NULL, write_late, call) == 0) pthread_detach(thread);
    fixture_host->write_output(call, FIXTURE_BYTES("{\"errors\": []}"));
    return BP_STATUS_OK;
}

#define CHECK_ACTION(name, validate, on_event, cleanup) \
    {sizeof(bp_action_v1), 0, FIXTURE_BYTES(MINIMAL_METADATA(name)), NULL, minimal_execute, on_event, validate, cleanup}

static const bp_action_v1 bad_validate_action = CHECK_ACTION("bad_validate", bad_validate, NULL, NULL);
static const bp_action_v1 slow_validate_action = CHECK_ACTION("slow_validate", slow_validate, NULL, NULL);
static const bp_action_v1 abort_cleanup_action = CHECK_ACTION("abort_cleanup", NULL, NULL, abort_cleanup);
static const bp_action_v1 await_event_action = CHECK_ACTION("await_from_event", NULL, await_event, NULL);
static const bp_action_v1 late_validate_action = CHECK_ACTION("late_validate", late_validate, NULL, NULL);
static const bp_action_v1 *const actions[] = {
    &bad_validate_action, &slow_validate_action, &abort_cleanup_action, &await_event_action, &late_validate_action,
};
static const bp_plugin_descriptor_v1 descriptor = {
    sizeof(bp_plugin_descriptor_v1), BP_BUILD_SIGNATURE_INIT,
    BP_PLUGIN_THREAD_SAFE, 5, FIXTURE_BYTES(MINIMAL_MANIFEST("check_faults")), actions, NULL, NULL,
};

BP_EXPORT const bp_plugin_descriptor_v1 *bp_plugin_entry_v1(const bp_host_api_v1 *host) {
    fixture_host = host;
    return &descriptor;
}
