/*
 * budpipeline_plugin_helpers.h — the JSON documents of the plugin ABI, read and written with
 * jansson (Debian: libjansson-dev; `pkg-config --cflags --libs budpipeline-plugin jansson`).
 *
 * Header-only and optional: a plugin may build its documents any way it likes. Everything here
 * is `static inline`, uses only the public ABI (budpipeline_plugin.h) and jansson, and follows
 * the document shapes of docs/plugins.md, "JSON documents":
 *
 *   json_t *request = bp_request_parse(input, host, call);          // NULL: an error was written
 *   const char *text = bp_param_string(request, "text");            // NULL when absent or not a string
 *   ...
 *   json_t *outputs = json_pack("{s:i}", "words", count);
 *   json_decref(request);
 *   return bp_complete(host, call, outputs);                        // takes outputs
 *
 * Every function that takes a `json_t *` it does not return "takes" it (decrements its reference
 * when done), so that the usual one-line `return bp_complete(host, call, json_pack(...))` leaks
 * nothing, even when json_pack failed (NULL).
 */
#ifndef BUDPIPELINE_PLUGIN_HELPERS_H
#define BUDPIPELINE_PLUGIN_HELPERS_H

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "budpipeline_plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A NUL-terminated string as bytes (not copied: the string must outlive their use). */
static inline bp_bytes bp_text(const char *text) {
    bp_bytes bytes = {(const uint8_t *)text, text ? strlen(text) : 0};
    return bytes;
}

/* Writes a printf-style message through write_error and returns `status`: the usual last line
 * of a failing call, `return bp_fail(host, call, BP_STATUS_FATAL_ERROR, "text is required");`.
 * A message longer than 4 KiB is cut. */
static inline bp_status bp_fail(const bp_host_api_v1 *host, bp_call *call, bp_status status, const char *format, ...) {
    char message[4096];
    va_list arguments;
    va_start(arguments, format);
    int length = vsnprintf(message, sizeof message, format, arguments);
    va_end(arguments);
    if (length < 0) message[0] = '\0';
    host->write_error(call, bp_text(message));
    return status;
}

/* Logs a printf-style line (cut at 4 KiB) with the call's context. */
static inline void bp_logf(const bp_host_api_v1 *host, bp_call *call, bp_log_level level, const char *format, ...) {
    char message[4096];
    va_list arguments;
    va_start(arguments, format);
    int length = vsnprintf(message, sizeof message, format, arguments);
    va_end(arguments);
    if (length < 0) return;
    host->log(call, level, bp_text(message));
}

/* Parses a request document (execute, on_event, validate_params, cleanup). On failure writes
 * the reason as the call's error and returns NULL; the caller then returns
 * BP_STATUS_FATAL_ERROR. The host always sends valid JSON, so this fails only when memory runs
 * out. The caller owns the result (json_decref). */
static inline json_t *bp_request_parse(bp_bytes request, const bp_host_api_v1 *host, bp_call *call) {
    json_error_t error;
    json_t *document = json_loadb((const char *)request.ptr, request.len, JSON_REJECT_DUPLICATES, &error);
    if (!document || !json_is_object(document)) {
        json_decref(document);
        bp_fail(host, call, BP_STATUS_FATAL_ERROR, "the request could not be read: %s", document ? "not an object" : error.text);
        return NULL;
    }
    return document;
}

/* The request's `params` object (borrowed: valid while the request is), or NULL. */
static inline json_t *bp_params(json_t *request) {
    json_t *params = json_object_get(request, "params");
    return json_is_object(params) ? params : NULL;
}

/* The string parameter `name` (borrowed), or NULL when it is absent or not a string. */
static inline const char *bp_param_string(json_t *request, const char *name) {
    json_t *value = json_object_get(bp_params(request), name);
    return json_is_string(value) ? json_string_value(value) : NULL;
}

/* Reads the integer parameter `name` into `out`: 1 when it is an integer, 0 otherwise (`out`
 * unchanged). A number with a fraction is not an integer. */
static inline int bp_param_integer(json_t *request, const char *name, json_int_t *out) {
    json_t *value = json_object_get(bp_params(request), name);
    if (!json_is_integer(value)) return 0;
    *out = json_integer_value(value);
    return 1;
}

/* Writes `document` (taken) as the call's result: compact JSON through write_output. Returns
 * `status`, or FATAL_ERROR with a reason when the document is NULL or cannot be written. */
static inline bp_status bp_write_document(const bp_host_api_v1 *host, bp_call *call, json_t *document, bp_status status) {
    if (!document) return bp_fail(host, call, BP_STATUS_FATAL_ERROR, "the plugin could not build its result (out of memory?)");
    char *text = json_dumps(document, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(document);
    if (!text) return bp_fail(host, call, BP_STATUS_FATAL_ERROR, "the plugin could not write its result");
    bp_status written = host->write_output(call, bp_text(text));
    free(text);
    if (written != BP_STATUS_OK) return written;
    return status;
}

/* execute: the step completed with `outputs` (taken; NULL means {}). */
static inline bp_status bp_complete(const bp_host_api_v1 *host, bp_call *call, json_t *outputs) {
    json_t *result = json_object();
    if (result) json_object_set_new(result, "outputs", outputs ? outputs : json_object());
    else json_decref(outputs);
    return bp_write_document(host, call, result, BP_STATUS_OK);
}

/* execute: the step waits for an event about `external_workflow_id`, at most `timeout_seconds`
 * (0: the host's default), with `outputs` (taken; NULL means {}) stored meanwhile. */
static inline bp_status bp_await_event(const bp_host_api_v1 *host, bp_call *call, const char *external_workflow_id,
                                       json_int_t timeout_seconds, json_t *outputs) {
    if (!external_workflow_id || !*external_workflow_id) {
        json_decref(outputs);
        return bp_fail(host, call, BP_STATUS_FATAL_ERROR, "an awaited event needs an external workflow id");
    }
    json_t *result = json_object();
    if (result) {
        json_object_set_new(result, "outputs", outputs ? outputs : json_object());
        json_object_set_new(result, "external_workflow_id", json_string(external_workflow_id));
        if (timeout_seconds > 0) json_object_set_new(result, "timeout_seconds", json_integer(timeout_seconds));
    } else {
        json_decref(outputs);
    }
    return bp_write_document(host, call, result, BP_STATUS_AWAIT_EVENT);
}

/* on_event: finishes the awaiting step with `status` ("COMPLETED", "FAILED" or "TIMEOUT"),
 * `outputs` (taken; may be NULL) and, when failed, `error` (may be NULL). */
static inline bp_status bp_event_complete(const bp_host_api_v1 *host, bp_call *call, const char *status, json_t *outputs,
                                          const char *error) {
    json_t *result = json_pack("{s:s, s:s}", "action", "complete", "status", status ? status : "COMPLETED");
    if (result) {
        if (outputs) json_object_set_new(result, "outputs", outputs);
        if (error) json_object_set_new(result, "error", json_string(error));
    } else {
        json_decref(outputs);
    }
    return bp_write_document(host, call, result, BP_STATUS_OK);
}

/* on_event: the event is not for this step; it keeps waiting. */
static inline bp_status bp_event_ignore(const bp_host_api_v1 *host, bp_call *call) {
    return bp_write_document(host, call, json_pack("{s:s}", "action", "ignore"), BP_STATUS_OK);
}

/* validate_params: answers the messages in `errors` (a JSON array of strings, taken; NULL or
 * empty: the parameters are valid). */
static inline bp_status bp_validation_result(const bp_host_api_v1 *host, bp_call *call, json_t *errors) {
    json_t *result = json_object();
    if (result) json_object_set_new(result, "errors", errors ? errors : json_array());
    else json_decref(errors);
    return bp_write_document(host, call, result, BP_STATUS_OK);
}

#ifdef __cplusplus
}
#endif

#endif
