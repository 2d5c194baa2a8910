/* What the probe fixtures share: reading a string field of the host's JSON input and appending a
   line to the file named by BUDPIPELINE_PROBE_LOG ("<call> <detail> pid=<pid>\n", in one O_APPEND
   write so that lines from several processes never interleave). Needs _POSIX_C_SOURCE. */
#ifndef PROBE_LOG_H
#define PROBE_LOG_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fixture.h"

/* Copies the string value of `key` (no escapes expected) into `out`. */
static void probe_read_string(bp_bytes input, const char *key, char *out, size_t size) {
    out[0] = '\0';
    const char *value = fixture_find(input, key);
    const char *end = (const char *)input.ptr + input.len;
    if (!value || value >= end || *value != '"') return;
    value++;
    size_t length = 0;
    while (value + length < end && value[length] != '"' && length + 1 < size) length++;
    memcpy(out, value, length);
    out[length] = '\0';
}

__attribute__((unused)) static void probe_log_line(const char *call, const char *detail) {
    const char *path = getenv("BUDPIPELINE_PROBE_LOG");
    if (!path) return;
    char line[600];
    int length = snprintf(line, sizeof line, "%s %s pid=%ld\n", call, detail, (long)getpid());
    if (length <= 0 || (size_t)length >= sizeof line) return;
    int file = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (file < 0) return;
    ssize_t written = write(file, line, (size_t)length);
    (void)written;
    close(file);
}
#endif
