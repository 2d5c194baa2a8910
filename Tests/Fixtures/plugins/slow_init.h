/* A plugin whose init shows whether start-up initialises plugins at once (slow_init_a.c,
 * slow_init_b.c): with the setting "log" (a file), init appends "begin <name>", waits until the
 * other plugin's "begin" line is there (SLOW_INIT_SECONDS at most), then appends "end <name>". Run
 * at once, both "begin" lines come before either "end"; run one after the other, the first init
 * waits in vain and its "end" comes before the second "begin". Without the setting, init just
 * takes SLOW_INIT_SECONDS. */
#ifndef SLOW_INIT_H
#define SLOW_INIT_H
#include <string.h>
#include <time.h>

#include "minimal_action.h"
#include "probe_log.h"

static void slow_init_append(const char *path, const char *line) {
    int file = open(path, O_WRONLY | O_APPEND | O_CREAT, 0666);
    if (file < 0) return;
    ssize_t written = write(file, line, strlen(line));
    (void)written;
    close(file);
}

static int slow_init_contains(const char *path, const char *text) {
    char buffer[4096];
    int file = open(path, O_RDONLY);
    if (file < 0) return 0;
    ssize_t length = read(file, buffer, sizeof buffer - 1);
    close(file);
    if (length <= 0) return 0;
    buffer[length] = '\0';
    return strstr(buffer, text) != NULL;
}

static bp_status slow_init(bp_call *call, bp_bytes config) {
    (void)call;
    char path[512];
    probe_read_string(config, "log", path, sizeof path);
    struct timespec tick = {0, 10 * 1000 * 1000};
    if (path[0] == '\0') {
        struct timespec pause = {SLOW_INIT_SECONDS, 0};
        nanosleep(&pause, NULL);
        return BP_STATUS_OK;
    }
    slow_init_append(path, "begin " SLOW_INIT_NAME "\n");
    for (int waited = 0; waited < SLOW_INIT_SECONDS * 100; waited++) {
        if (slow_init_contains(path, "begin " SLOW_INIT_OTHER "\n")) break;
        nanosleep(&tick, NULL);
    }
    slow_init_append(path, "end " SLOW_INIT_NAME "\n");
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
