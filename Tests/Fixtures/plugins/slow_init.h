/* A plugin whose init takes SLOW_INIT_SECONDS: start-up initialises plugins at once, so two of
 * them cost the time of one (slow_init_a.c, slow_init_b.c). */
#ifndef SLOW_INIT_H
#define SLOW_INIT_H
#include <time.h>

#include "minimal_action.h"

static bp_status slow_init(bp_call *call, bp_bytes config) {
    (void)call;
    (void)config;
    struct timespec pause = {SLOW_INIT_SECONDS, 0};
    nanosleep(&pause, NULL);
    return BP_STATUS_OK;
}

static const bp_action_v1 action = {
    sizeof(bp_action_v1), 0, FIXTURE_BYTES(MINIMAL_METADATA(SLOW_INIT_NAME)), NULL, minimal_execute, NULL, NULL, NULL};
static const bp_action_v1 *const actions[] = {&action};
static const bp_plugin_descriptor_v1 descriptor = {
    sizeof(bp_plugin_descriptor_v1), BP_BUILD_SIGNATURE_INIT,
    BP_PLUGIN_THREAD_SAFE, 1, FIXTURE_BYTES(MINIMAL_MANIFEST(SLOW_INIT_NAME)), actions, slow_init, NULL,
};

BP_EXPORT const bp_plugin_descriptor_v1 *bp_plugin_entry_v1(const bp_host_api_v1 *host) {
    fixture_host = host;
    return &descriptor;
}
#endif
