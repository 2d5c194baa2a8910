#define _POSIX_C_SOURCE 200809L
/*
 * Actions that break the process or the plugin protocol, for the containment tests. Every execute
 * call appends "<action> <idempotency key> pid=<pid>\n" to BUDPIPELINE_PROBE_LOG when it is set.
 *
 *   crash_segv        writes through a null pointer (SIGSEGV)
 *   crash_abort       calls abort() (SIGABRT)
 *   crash_late_write  completes, and 200 ms later writes through its call handle from another
 *                     thread (the handle is stale by then)
 *   crash_bad_event   awaits an event with external id "bad-<key>"; its on_event answers with a
 *                     document that is not JSON
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "minimal_action.h"
#include "probe_log.h"

static void log_call(const char *action, bp_bytes input) {
    char key[400];
    probe_read_string(input, "idempotency_key", key, sizeof key);
    probe_log_line(action, key);
}

static bp_status segv_execute(bp_call *call, void *context, bp_bytes input) {
    (void)call;
    (void)context;
    log_call("crash_segv", input);
    volatile int *nowhere = NULL;
    *nowhere = 1;
    return BP_STATUS_OK;
}

static bp_status abort_execute(bp_call *call, void *context, bp_bytes input) {
    (void)call;
    (void)context;
    log_call("crash_abort", input);
    abort();
}

static void *write_later(void *handle) {
    struct timespec pause = {0, 200 * 1000000L};
    nanosleep(&pause, NULL);
    bp_call *call = handle;
    fixture_host->write_output(call, FIXTURE_BYTES("{\"outputs\":{\"late\":true}}"));
    fixture_host->write_error(call, FIXTURE_BYTES("late error"));
    fixture_host->log(call, BP_LOG_WARNING, FIXTURE_BYTES("a late log line"));
    return NULL;
}

static bp_status late_write_execute(bp_call *call, void *context, bp_bytes input) {
    (void)context;
    log_call("crash_late_write", input);
    pthread_t thread;
    if (pthread_create(&thread, NULL, write_later, call) == 0) pthread_detach(thread);
    fixture_host->write_output(call, FIXTURE_BYTES("{\"outputs\":{\"on_time\":true}}"));
    return BP_STATUS_OK;
}

static bp_status bad_event_execute(bp_call *call, void *context, bp_bytes input) {
    (void)context;
    log_call("crash_bad_event", input);
    char key[400];
    probe_read_string(input, "idempotency_key", key, sizeof key);
    char result[600];
    snprintf(result, sizeof result, "{\"outputs\":{\"waiting\":true},\"external_workflow_id\":\"bad-%s\"}", key);
    fixture_host->write_output(call, fixture_text(result));
    return BP_STATUS_AWAIT_EVENT;
}

static bp_status bad_event_on_event(bp_call *call, void *context, bp_bytes input) {
    (void)context;
    (void)input;
    fixture_host->write_output(call, FIXTURE_BYTES("{\"action\": \"complete\", \"outputs\": {"));
    return BP_STATUS_OK;
}

#define CRASH_ACTION(name, execute, on_event) \
    {sizeof(bp_action_v1), 0, FIXTURE_BYTES(MINIMAL_METADATA(name)), NULL, execute, on_event, NULL, NULL}

static const bp_action_v1 segv_action = CRASH_ACTION("crash_segv", segv_execute, NULL);
static const bp_action_v1 abort_action = CRASH_ACTION("crash_abort", abort_execute, NULL);
static const bp_action_v1 late_write_action = CRASH_ACTION("crash_late_write", late_write_execute, NULL);
static const bp_action_v1 bad_event_action = CRASH_ACTION("crash_bad_event", bad_event_execute, bad_event_on_event);
static const bp_action_v1 *const actions[] = {&segv_action, &abort_action, &late_write_action, &bad_event_action};
static const bp_plugin_descriptor_v1 descriptor = {
    sizeof(bp_plugin_descriptor_v1), BP_BUILD_SIGNATURE_INIT,
    BP_PLUGIN_THREAD_SAFE, 4, FIXTURE_BYTES(MINIMAL_MANIFEST("crash_probe")), actions, NULL, NULL,
};

BP_EXPORT const bp_plugin_descriptor_v1 *bp_plugin_entry_v1(const bp_host_api_v1 *host) {
    fixture_host = host;
    return &descriptor;
}
