/*
 * One plugin, `reload_probe`, in two versions (reload_v1.c, reload_v2.c) for the reload tests:
 * `reload_version` sleeps params.ms milliseconds, then answers {"outputs": {"version": <version>}};
 * version 2 adds the action `reload_added`.
 */
#ifndef RELOAD_PROBE_H
#define RELOAD_PROBE_H
#include <stdlib.h>
#include <time.h>

#include "minimal_action.h"

static bp_status version_execute(bp_call *call, void *context, bp_bytes input) {
    (void)context;
    const char *value = fixture_find(input, "ms");
    long milliseconds = value ? strtol(value, NULL, 10) : 0;
    if (milliseconds > 0) {
        struct timespec pause = {milliseconds / 1000, (milliseconds % 1000) * 1000000L};
        nanosleep(&pause, NULL);
    }
    fixture_host->write_output(call, FIXTURE_BYTES("{\"outputs\":{\"version\":\"" RELOAD_VERSION "\"}}"));
    return BP_STATUS_OK;
}

static const bp_action_v1 version_action = {
    sizeof(bp_action_v1), 0, FIXTURE_BYTES(MINIMAL_METADATA("reload_version")), NULL, version_execute, NULL, NULL, NULL};
#ifdef RELOAD_ADDS_ACTION
static const bp_action_v1 added_action = {
    sizeof(bp_action_v1), 0, FIXTURE_BYTES(MINIMAL_METADATA("reload_added")), NULL, minimal_execute, NULL, NULL, NULL};
static const bp_action_v1 *const actions[] = {&version_action, &added_action};
#else
static const bp_action_v1 *const actions[] = {&version_action};
#endif
static const bp_plugin_descriptor_v1 descriptor = {
    sizeof(bp_plugin_descriptor_v1), BP_BUILD_SIGNATURE_INIT,
    BP_PLUGIN_THREAD_SAFE, sizeof actions / sizeof actions[0],
    FIXTURE_BYTES("{\"name\":\"reload_probe\",\"version\":\"" RELOAD_VERSION "\"}"), actions, NULL, NULL,
};

BP_EXPORT const bp_plugin_descriptor_v1 *bp_plugin_entry_v1(const bp_host_api_v1 *host) {
    fixture_host = host;
    return &descriptor;
}
#endif
