/*
 * TextStats — an example BudPipeline plugin written in plain C against budpipeline_plugin.h.
 *
 * Action `text_stats` counts the characters, bytes, words and lines of a text. It shows every part
 * of the ABI a C author needs: the descriptor with its build signature, metadata JSON, reading the
 * request JSON, writing the result through the host, errors as status + message, configuration
 * through get_config, logging, progress and validate_params.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "budpipeline_plugin.h"

static const bp_host_api_v1 *host;

/* Configuration: the largest text accepted, in bytes (key "max_text_bytes"; default 1 MiB). */
static size_t max_text_bytes = 1u << 20;

/* ---- A minimal JSON reader: enough to find a member and decode a string. ---- */

static const char *skip_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

/* Returns the first byte after the string starting at p (which points at the opening quote). */
static const char *skip_string(const char *p, const char *end) {
    for (p++; p < end; p++) {
        if (*p == '\\') p++;
        else if (*p == '"') return p + 1;
    }
    return NULL;
}

/* Returns the first byte after the JSON value starting at p, or NULL when malformed. */
static const char *skip_value(const char *p, const char *end, int depth) {
    p = skip_ws(p, end);
    if (p >= end || depth > 64) return NULL;
    if (*p == '"') return skip_string(p, end);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        p = skip_ws(p + 1, end);
        if (p < end && *p == close) return p + 1;
        while (p && p < end) {
            if (close == '}') {
                p = skip_ws(p, end);
                if (p >= end || *p != '"') return NULL;
                p = skip_ws(skip_string(p, end), end);
                if (!p || p >= end || *p != ':') return NULL;
                p++;
            }
            p = skip_ws(skip_value(p, end, depth + 1), end);
            if (!p || p >= end) return NULL;
            if (*p == close) return p + 1;
            if (*p != ',') return NULL;
            p++;
        }
        return NULL;
    }
    while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') p++;
    return p;
}

/* Finds member `key` of the object starting at p; returns the start of its value or NULL. */
static const char *find_member(const char *p, const char *end, const char *key) {
    size_t key_len = strlen(key);
    p = skip_ws(p, end);
    if (p >= end || *p != '{') return NULL;
    p = skip_ws(p + 1, end);
    while (p && p < end && *p == '"') {
        const char *name = p + 1;
        const char *after = skip_string(p, end);
        if (!after) return NULL;
        int match = (size_t)(after - 1 - name) == key_len && memcmp(name, key, key_len) == 0;
        p = skip_ws(after, end);
        if (p >= end || *p != ':') return NULL;
        p = skip_ws(p + 1, end);
        if (match) return p;
        p = skip_ws(skip_value(p, end, 0), end);
        if (!p || p >= end || *p != ',') return NULL;
        p = skip_ws(p + 1, end);
    }
    return NULL;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static size_t put_utf8(unsigned long cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F)); return 4;
}

/* Decodes the JSON string at p into a new malloc'd buffer; returns NULL when p is not a valid string. */
static char *decode_string(const char *p, const char *end, size_t *length) {
    if (p >= end || *p != '"') return NULL;
    const char *close = skip_string(p, end);
    if (!close) return NULL;
    char *out = malloc((size_t)(close - p) + 4);
    if (!out) return NULL;
    size_t n = 0;
    for (p++; p < close - 1; p++) {
        if (*p != '\\') { out[n++] = *p; continue; }
        p++;
        switch (*p) {
        case 'n': out[n++] = '\n'; break;
        case 't': out[n++] = '\t'; break;
        case 'r': out[n++] = '\r'; break;
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'u': {
            unsigned long cp = 0;
            for (int i = 1; i <= 4; i++) {
                int h = p + i < close ? hex_value(p[i]) : -1;
                if (h < 0) { free(out); return NULL; }
                cp = cp * 16 + (unsigned long)h;
            }
            p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && p + 6 < close && p[1] == '\\' && p[2] == 'u') {
                unsigned long low = 0;
                for (int i = 3; i <= 6; i++) {
                    int h = hex_value(p[i]);
                    if (h < 0) { free(out); return NULL; }
                    low = low * 16 + (unsigned long)h;
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                p += 6;
            }
            n += put_utf8(cp, out + n);
            break;
        }
        default: out[n++] = *p; break;
        }
    }
    *length = n;
    return out;
}

/* ---- Host helpers ---- */

static bp_bytes text_bytes(const char *text) {
    bp_bytes bytes = {(const uint8_t *)text, strlen(text)};
    return bytes;
}

static bp_status fail(bp_call *call, bp_status status, const char *message) {
    host->write_error(call, text_bytes(message));
    return status;
}

/* Reads params.text from a request document into a malloc'd buffer, or writes why it cannot. */
static char *read_text_param(bp_call *call, bp_bytes input, size_t *length, char *why, size_t why_size) {
    const char *start = (const char *)input.ptr, *end = start + input.len;
    const char *params = find_member(start, end, "params");
    const char *text = params ? find_member(params, end, "text") : NULL;
    if (!text) { snprintf(why, why_size, "text is required"); return NULL; }
    char *decoded = decode_string(text, end, length);
    if (!decoded) { snprintf(why, why_size, "text must be a string"); return NULL; }
    if (*length > max_text_bytes) {
        snprintf(why, why_size, "text is %zu bytes, more than max_text_bytes (%zu)", *length, max_text_bytes);
        free(decoded);
        return NULL;
    }
    (void)call;
    return decoded;
}

/* ---- Plugin functions ---- */

static bp_status text_stats_init(bp_call *call, bp_bytes config_json) {
    (void)config_json;
    bp_bytes value = {0};
    if (host->get_config(call, text_bytes("max_text_bytes"), &value) == BP_STATUS_OK) {
        char number[32] = {0};
        memcpy(number, value.ptr, value.len < sizeof number - 1 ? value.len : sizeof number - 1);
        char *stop = NULL;
        long long parsed = strtoll(number, &stop, 10);
        if (parsed <= 0 || (stop && *stop != '\0')) {
            return fail(call, BP_STATUS_FATAL_ERROR, "max_text_bytes must be a positive integer");
        }
        max_text_bytes = (size_t)parsed;
    }
    return BP_STATUS_OK;
}

static bp_status text_stats_execute(bp_call *call, void *context, bp_bytes input) {
    (void)context;
    char why[160];
    size_t length = 0;
    char *text = read_text_param(call, input, &length, why, sizeof why);
    if (!text) return fail(call, BP_STATUS_FATAL_ERROR, why);

    unsigned long long characters = 0, words = 0, lines = 0;
    int in_word = 0;
    for (size_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char)text[i];
        if ((c & 0xC0) != 0x80) characters++;
        int space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
        if (!space && !in_word) words++;
        in_word = !space;
        if (c == '\n') lines++;
        if ((i & 0xFFFF) == 0xFFFF) {
            bp_progress progress = {sizeof(bp_progress), BP_PROGRESS_PERCENT, 100.0 * (double)i / (double)length, 0, {0}};
            host->report_progress(call, &progress);
        }
    }
    if (length > 0 && text[length - 1] != '\n') lines++;
    free(text);

    char result[256];
    int n = snprintf(result, sizeof result,
                     "{\"outputs\":{\"characters\":%llu,\"bytes\":%zu,\"words\":%llu,\"lines\":%llu}}",
                     characters, length, words, lines);
    host->write_output(call, (bp_bytes){(const uint8_t *)result, (size_t)n});
    host->log(call, BP_LOG_DEBUG, text_bytes("counted text statistics"));
    return BP_STATUS_OK;
}

static bp_status text_stats_validate(bp_call *call, void *context, bp_bytes input) {
    (void)context;
    char why[160];
    size_t length = 0;
    char *text = read_text_param(call, input, &length, why, sizeof why);
    if (text) {
        free(text);
        host->write_output(call, text_bytes("{\"errors\":[]}"));
    } else {
        char result[200];
        int n = snprintf(result, sizeof result, "{\"errors\":[\"%s\"]}", why);
        host->write_output(call, (bp_bytes){(const uint8_t *)result, (size_t)n});
    }
    return BP_STATUS_OK;
}

/* ---- Descriptor ---- */

static const char metadata[] =
    "{\"type\":\"text_stats\",\"name\":\"Text Statistics\",\"category\":\"Text\","
    "\"description\":\"Counts the characters, bytes, words and lines of a text.\","
    "\"version\":\"1.0.0\",\"icon\":\"text-aa\",\"color\":\"#0ea5e9\","
    "\"params\":[{\"name\":\"text\",\"label\":\"Text\",\"type\":\"template\",\"required\":true,"
    "\"description\":\"The text to measure; may use templates.\",\"placeholder\":\"{{ steps.fetch.outputs.body }}\"}],"
    "\"outputs\":[{\"name\":\"characters\",\"type\":\"number\",\"description\":\"Unicode scalar values\"},"
    "{\"name\":\"bytes\",\"type\":\"number\",\"description\":\"UTF-8 bytes\"},"
    "{\"name\":\"words\",\"type\":\"number\",\"description\":\"Runs of non-whitespace\"},"
    "{\"name\":\"lines\",\"type\":\"number\",\"description\":\"Lines, counting a last line without newline\"}],"
    "\"execution_mode\":\"sync\",\"timeout_seconds\":30,\"idempotent\":true,"
    "\"examples\":[{\"title\":\"Count a sentence\",\"params\":{\"text\":\"hello plugin world\"}}]}";

static const char manifest[] =
    "{\"name\":\"text_stats\",\"version\":\"1.0.0\",\"description\":\"Text statistics, written in C.\"}";

static const bp_action_v1 text_stats_action = {
    sizeof(bp_action_v1), 0, {(const uint8_t *)metadata, sizeof metadata - 1}, NULL,
    text_stats_execute, NULL, text_stats_validate, NULL,
};

static const bp_action_v1 *const actions[] = {&text_stats_action};

static const bp_plugin_descriptor_v1 descriptor = {
    sizeof(bp_plugin_descriptor_v1),
    BP_BUILD_SIGNATURE_INIT,
    BP_PLUGIN_THREAD_SAFE,
    1,
    {(const uint8_t *)manifest, sizeof manifest - 1},
    actions,
    text_stats_init,
    NULL,
};

BP_EXPORT const bp_plugin_descriptor_v1 *bp_plugin_entry_v1(const bp_host_api_v1 *host_api) {
    if (!host_api || host_api->struct_size < offsetof(bp_host_api_v1, is_cancelled) + sizeof(host_api->is_cancelled)) {
        return NULL;
    }
    host = host_api;
    return &descriptor;
}
