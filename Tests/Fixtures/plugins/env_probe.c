#define _POSIX_C_SOURCE 200809L
/*
 * `env_read` reports which of the server's secrets the plugin can see in its environment:
 * {"outputs": {"database_url": bool, "app_api_token": bool, "dapr_api_token": bool,
 * "test_secret": bool, "path": bool, "pid": <the process id the plugin runs in>}}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "minimal_action.h"

static const char *present(const char *name) { return getenv(name) ? "true" : "false"; }

static bp_status env_execute(bp_call *call, void *context, bp_bytes input) {
    (void)context;
    (void)input;
    char result[512];
    snprintf(result, sizeof result,
             "{\"outputs\":{\"database_url\":%s,\"app_api_token\":%s,\"dapr_api_token\":%s,\"test_secret\":%s,"
             "\"path\":%s,\"pid\":%ld}}",
             present("DATABASE_URL"), present("APP_API_TOKEN"), present("DAPR_API_TOKEN"), present("BUDPIPELINE_TEST_SECRET"),
             present("PATH"), (long)getpid());
    fixture_host->write_output(call, fixture_text(result));
    return BP_STATUS_OK;
}

static const bp_action_v1 env_action = {
    sizeof(bp_action_v1), 0, FIXTURE_BYTES(MINIMAL_METADATA("env_read")), NULL, env_execute, NULL, NULL, NULL};
static const bp_action_v1 *const actions[] = {&env_action};
static const bp_plugin_descriptor_v1 descriptor = {
    sizeof(bp_plugin_descriptor_v1), BP_BUILD_SIGNATURE_INIT,
    BP_PLUGIN_THREAD_SAFE, 1, FIXTURE_BYTES(MINIMAL_MANIFEST("env_probe")), actions, NULL, NULL,
};

BP_EXPORT const bp_plugin_descriptor_v1 *bp_plugin_entry_v1(const bp_host_api_v1 *host) {
    fixture_host = host;
    return &descriptor;
}
