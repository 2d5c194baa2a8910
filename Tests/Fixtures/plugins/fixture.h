/* Shared helpers of the fixture plugins. Each fixture is one .c file compiled into its own library. */
#ifndef FIXTURE_H
#define FIXTURE_H

#include <string.h>

#include "budpipeline_plugin.h"

#define FIXTURE_BYTES(literal) ((bp_bytes){(const uint8_t *)(literal), sizeof(literal) - 1})

static inline bp_bytes fixture_text(const char *text) {
    return (bp_bytes){(const uint8_t *)text, strlen(text)};
}

/* Finds `"key":` in a JSON document and returns a pointer just after the colon (no real parsing:
   fixtures only read flat, known inputs written by the host). */
static inline const char *fixture_find(bp_bytes json, const char *key) {
    char pattern[64];
    size_t key_length = strlen(key);
    if (key_length + 4 > sizeof pattern) return NULL;
    pattern[0] = '"';
    memcpy(pattern + 1, key, key_length);
    pattern[key_length + 1] = '"';
    pattern[key_length + 2] = ':';
    pattern[key_length + 3] = '\0';
    const char *start = (const char *)json.ptr;
    size_t pattern_length = key_length + 3;
    for (size_t i = 0; i + pattern_length <= json.len; i++) {
        if (memcmp(start + i, pattern, pattern_length) == 0) return start + i + pattern_length;
    }
    return NULL;
}

#endif
