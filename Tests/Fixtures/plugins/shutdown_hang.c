#define _POSIX_C_SOURCE 200809L
/* A plugin whose shutdown never returns: `plugins check` must say so, and the server must not
 * wait for it past its stop deadline. */
#include <unistd.h>

#include "minimal_action.h"

static void hang_shutdown(bp_call *call) {
    (void)call;
    for (;;) pause();
}

static const bp_action_v1 action = {
    sizeof(bp_action_v1), 0, FIXTURE_BYTES(MINIMAL_METADATA("hang_on_shutdown")), NULL, minimal_execute, NULL, NULL, NULL};
static const bp_action_v1 *const actions[] = {&action};
static const bp_plugin_descriptor_v1 descriptor = {
    sizeof(bp_plugin_descriptor_v1), BP_BUILD_SIGNATURE_INIT,
    BP_PLUGIN_THREAD_SAFE, 1, FIXTURE_BYTES(MINIMAL_MANIFEST("shutdown_hang")), actions, NULL, hang_shutdown,
};

BP_EXPORT const bp_plugin_descriptor_v1 *bp_plugin_entry_v1(const bp_host_api_v1 *host) {
    fixture_host = host;
    return &descriptor;
}
