#define _GNU_SOURCE
/*
 * What a plugin process can reach outside itself. `reach` runs the probe named by params.probe
 * and answers {"outputs": {"allowed": bool, "errno": <errno when refused>, "uid": <its user id>}}:
 *
 *   parent_environ   open and read /proc/<parent>/environ (the server's secrets)
 *   parent_mem       read 1 byte of the parent's memory through /proc/<parent>/mem
 *   parent_vm        process_vm_readv 1 byte from the parent
 *   parent_fds       read where the links in /proc/<parent>/fd lead
 *   signal_parent    kill(parent, 0): whether a signal would be delivered
 *   signal_everyone  kill(-1, 0)
 *   signal_pid       kill(params.pid, 0) (a sibling plugin process)
 *   new_session      setsid()
 *   signal_server_thread  kill(<another thread of the server>, 0)
 *   privileged_thread     whether any thread of this process kept another user or a capability
 *   identity         nothing; only the uid
 *
 * `fork_and_crash` starts a child that keeps every descriptor and sleeps for 10 minutes,
 * writes its pid to params.path, then ends the plugin process with SIGSEGV.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "minimal_action.h"
#include "probe_log.h"

static int try_read(const char *path, off_t offset) {
    int descriptor = open(path, O_RDONLY);
    if (descriptor < 0) return errno;
    char byte;
    ssize_t count = offset ? pread(descriptor, &byte, 1, offset) : read(descriptor, &byte, 1);
    int error = count < 0 ? errno : 0;
    close(descriptor);
    return error;
}

static int probe(const char *name, bp_bytes input) {
    char path[128];
    pid_t parent = getppid();
    if (strcmp(name, "parent_environ") == 0) {
        snprintf(path, sizeof path, "/proc/%ld/environ", (long)parent);
        return try_read(path, 0);
    }
    if (strcmp(name, "parent_mem") == 0) {
        /* Any mapped address would do; the address of the parent's stack is unknown, but the
         * open alone is what a non-dumpable process refuses. */
        snprintf(path, sizeof path, "/proc/%ld/mem", (long)parent);
        int descriptor = open(path, O_RDONLY);
        if (descriptor < 0) return errno;
        close(descriptor);
        return 0;
    }
    if (strcmp(name, "parent_vm") == 0) {
        char byte;
        static char somewhere;
        struct iovec local = {&byte, 1};
        struct iovec remote = {&somewhere, 1};
        /* EFAULT (nothing mapped there in the parent) would mean the call itself was allowed. */
        if (process_vm_readv(parent, &local, 1, &remote, 1, 0) < 0) return errno == EFAULT ? 0 : errno;
        return 0;
    }
    if (strcmp(name, "parent_fds") == 0) {
        /* Where the server's descriptors lead (its database, its sockets): readlink of each. */
        snprintf(path, sizeof path, "/proc/%ld/fd", (long)parent);
        DIR *directory = opendir(path);
        if (!directory) return errno;
        int error = ENOENT;
        struct dirent *entry;
        char link[128], target[256];
        while ((entry = readdir(directory))) {
            if (entry->d_name[0] == '.') continue;
            snprintf(link, sizeof link, "/proc/%ld/fd/%.32s", (long)parent, entry->d_name);
            if (readlink(link, target, sizeof target) >= 0) {
                error = 0;
                break;
            }
            error = errno;
        }
        closedir(directory);
        return error;
    }
    if (strcmp(name, "signal_parent") == 0) return kill(parent, 0) == 0 ? 0 : errno;
    if (strcmp(name, "signal_everyone") == 0) return kill(-1, 0) == 0 ? 0 : errno;
    if (strcmp(name, "signal_pid") == 0) {
        char text[32];
        probe_read_string(input, "pid", text, sizeof text);
        long pid = strtol(text, NULL, 10);
        if (pid <= 1) return EINVAL;
        return kill((pid_t)pid, 0) == 0 ? 0 : errno;
    }
    if (strcmp(name, "new_session") == 0) return setsid() >= 0 ? 0 : errno;
    if (strcmp(name, "signal_server_thread") == 0) {
        /* kill() with the id of one of the server's other threads reaches the whole server. */
        snprintf(path, sizeof path, "/proc/%ld/task", (long)parent);
        DIR *directory = opendir(path);
        if (!directory) return ESRCH;
        long tid = 0;
        struct dirent *entry;
        while ((entry = readdir(directory))) {
            long value = strtol(entry->d_name, NULL, 10);
            if (value > 0 && value != (long)parent) tid = value;
        }
        closedir(directory);
        if (tid == 0) return ESRCH;
        return kill((pid_t)tid, 0) == 0 ? 0 : errno;
    }
    if (strcmp(name, "privileged_thread") == 0) {
        /* "allowed" when a thread of this process kept another user or any capability. */
        DIR *directory = opendir("/proc/self/task");
        if (!directory) return ESRCH;
        int privileged = 0;
        struct dirent *entry;
        char line[256];
        while ((entry = readdir(directory)) && !privileged) {
            if (entry->d_name[0] == '.') continue;
            snprintf(path, sizeof path, "/proc/self/task/%.64s/status", entry->d_name);
            FILE *status = fopen(path, "r");
            if (!status) continue;
            while (fgets(line, sizeof line, status)) {
                unsigned long real, effective, saved, filesystem;
                unsigned long long capabilities;
                if (sscanf(line, "Uid: %lu %lu %lu %lu", &real, &effective, &saved, &filesystem) == 4
                    && (real != getuid() || effective != getuid() || saved != getuid() || filesystem != getuid())) privileged = 1;
                if (sscanf(line, "CapEff: %llx", &capabilities) == 1 && capabilities != 0) privileged = 1;
            }
            fclose(status);
        }
        closedir(directory);
        return privileged ? 0 : EPERM;
    }
    return 0;
}

static bp_status reach_execute(bp_call *call, void *context, bp_bytes input) {
    (void)context;
    char name[64];
    probe_read_string(input, "probe", name, sizeof name);
    probe_log_line("reach", name);
    int error = probe(name, input);
    char result[200];
    snprintf(result, sizeof result, "{\"outputs\":{\"allowed\":%s,\"errno\":%d,\"uid\":%ld}}", error == 0 ? "true" : "false",
             error, (long)getuid());
    fixture_host->write_output(call, fixture_text(result));
    return BP_STATUS_OK;
}

static bp_status fork_execute(bp_call *call, void *context, bp_bytes input) {
    (void)call;
    (void)context;
    char path[400];
    probe_read_string(input, "path", path, sizeof path);
    pid_t child = fork();
    if (child == 0) {
        sleep(600);
        _exit(0);
    }
    FILE *file = fopen(path, "w");
    if (file) {
        fprintf(file, "%ld\n", (long)child);
        fclose(file);
    }
    volatile int *nowhere = NULL;
    *nowhere = 1;
    return BP_STATUS_OK;
}

static const bp_action_v1 reach_action = {
    sizeof(bp_action_v1), 0, FIXTURE_BYTES(MINIMAL_METADATA("reach")), NULL, reach_execute, NULL, NULL, NULL};
static const bp_action_v1 fork_action = {
    sizeof(bp_action_v1), 0, FIXTURE_BYTES(MINIMAL_METADATA("fork_and_crash")), NULL, fork_execute, NULL, NULL, NULL};
static const bp_action_v1 *const actions[] = {&reach_action, &fork_action};
static const bp_plugin_descriptor_v1 descriptor = {
    sizeof(bp_plugin_descriptor_v1), BP_BUILD_SIGNATURE_INIT,
    BP_PLUGIN_THREAD_SAFE, 2, FIXTURE_BYTES(MINIMAL_MANIFEST("reach_probe")), actions, NULL, NULL,
};

BP_EXPORT const bp_plugin_descriptor_v1 *bp_plugin_entry_v1(const bp_host_api_v1 *host) {
    fixture_host = host;
    return &descriptor;
}
