/*
 * My Plugin — a BudPipeline plugin in C. The `my_plugin` action repeats a text a number of times
 * and reports its length; replace its body with your step's work.
 *
 * Built by the Makefile with the BudPipeline C SDK (budpipeline_plugin_helpers.h, over jansson):
 * see README.md and docs/plugins.md, "Writing a plugin in C".
 */
#include <string.h>

#include <budpipeline_plugin_helpers.h>

static const bp_host_api_v1 *host;

/* The parameter checks, shared by validate_params and execute: an array of messages (empty when
 * the parameters are fine). */
static json_t *parameter_errors(json_t *params) {
    json_t *errors = json_array();
    json_t *text = json_object_get(params, "text");
    if (!json_is_string(text) || json_string_length(text) == 0) json_array_append_new(errors, json_string("text is required"));
    json_t *times = json_object_get(params, "times");
    if (times && !json_is_null(times)) {
        if (!json_is_integer(times) || json_integer_value(times) < 1 || json_integer_value(times) > 10) {
            json_array_append_new(errors, json_string("times must be a whole number from 1 to 10"));
        }
    }
    return errors;
}

/* Characters (Unicode scalars) of UTF-8 text. */
static size_t characters(const char *text, size_t bytes) {
    size_t count = 0;
    for (size_t index = 0; index < bytes; index++) {
        if (((unsigned char)text[index] & 0xC0) != 0x80) count++;
    }
    return count;
}

static bp_status my_plugin_execute(bp_call *call, void *context, bp_bytes input) {
    (void)context;
    json_t *request = bp_request_parse(input, host, call);
    if (!request) return BP_STATUS_FATAL_ERROR;
    json_t *errors = parameter_errors(bp_params(request));
    if (json_array_size(errors) > 0) {
        bp_status status = bp_fail(host, call, BP_STATUS_FATAL_ERROR, "%s", json_string_value(json_array_get(errors, 0)));
        json_decref(errors);
        json_decref(request);
        return status;
    }
    json_decref(errors);
    const char *text = bp_param_string(request, "text");
    json_int_t times = 1;
    bp_param_integer(request, "times", &times);
    size_t length = strlen(text);
    char *result = malloc(length * (size_t)times + 1);
    if (!result) {
        json_decref(request);
        return bp_fail(host, call, BP_STATUS_RETRYABLE_ERROR, "out of memory");
    }
    for (json_int_t index = 0; index < times; index++) memcpy(result + length * (size_t)index, text, length);
    result[length * (size_t)times] = '\0';
    bp_logf(host, call, BP_LOG_INFO, "repeated the text %lld time(s)", (long long)times);
    json_t *outputs = json_pack("{s:s, s:I}", "result", result, "length", (json_int_t)characters(result, length * (size_t)times));
    free(result);
    json_decref(request);
    return bp_complete(host, call, outputs);
}

static bp_status my_plugin_validate(bp_call *call, void *context, bp_bytes input) {
    (void)context;
    json_t *request = bp_request_parse(input, host, call);
    if (!request) return BP_STATUS_FATAL_ERROR;
    json_t *errors = parameter_errors(bp_params(request));
    json_decref(request);
    return bp_validation_result(host, call, errors);
}

static const char metadata[] =
    "{\"type\":\"my_plugin\",\"name\":\"My Plugin\",\"category\":\"Custom\",\"description\":\"Repeats a text a number of times.\","
    "\"icon\":\"puzzle-piece\","
    "\"params\":[{\"name\":\"text\",\"label\":\"Text\",\"type\":\"template\",\"required\":true,\"placeholder\":\"hello\"},"
    "{\"name\":\"times\",\"label\":\"Times\",\"type\":\"number\",\"default\":1,\"validation\":{\"min\":1,\"max\":10}}],"
    "\"outputs\":[{\"name\":\"result\",\"type\":\"string\",\"description\":\"The repeated text\"},"
    "{\"name\":\"length\",\"type\":\"number\",\"description\":\"Characters in the result\"}],"
    "\"examples\":[{\"title\":\"Say it twice\",\"params\":{\"text\":\"hello\",\"times\":2}}]}";

static const bp_action_v1 my_plugin = {
    sizeof(bp_action_v1), 0, {(const uint8_t *)metadata, sizeof metadata - 1}, NULL,
    my_plugin_execute, NULL, my_plugin_validate, NULL,
};
static const bp_action_v1 *const actions[] = {&my_plugin};
static const char manifest[] = "{\"name\":\"my_plugin\",\"version\":\"0.1.0\",\"description\":\"My Plugin for BudPipeline.\"}";
static const bp_plugin_descriptor_v1 descriptor = {
    sizeof(bp_plugin_descriptor_v1), BP_BUILD_SIGNATURE_INIT, BP_PLUGIN_THREAD_SAFE, 1,
    {(const uint8_t *)manifest, sizeof manifest - 1}, actions, NULL, NULL,
};

BP_EXPORT const bp_plugin_descriptor_v1 *bp_plugin_entry_v1(const bp_host_api_v1 *host_api) {
    host = host_api;
    return &descriptor;
}
