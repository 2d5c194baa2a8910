/*
 * Example plugin in C with the jansson helpers (budpipeline_plugin_helpers.h); it answers exactly
 * as the Rust example does (sdk/rust/examples/word-count):
 *
 *   word_count  counts the words of params.text (validate_params requires it); with
 *               params.wait_for it waits for an event carrying that workflow id and completes
 *               with the event's `count`.
 *
 * Build: cc -std=c11 -O2 -shared -fPIC -fvisibility=hidden -Wl,--no-undefined \
 *          $(pkg-config --cflags budpipeline-plugin jansson) -o libword_count.so word_count.c \
 *          $(pkg-config --libs jansson)
 */
#include <ctype.h>

#include <budpipeline_plugin_helpers.h>

static const bp_host_api_v1 *host;

static json_int_t count_words(const char *text) {
    json_int_t words = 0;
    int in_word = 0;
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
        if (isspace(*c)) {
            in_word = 0;
        } else if (!in_word) {
            in_word = 1;
            words++;
        }
    }
    return words;
}

static bp_status word_count_execute(bp_call *call, void *context, bp_bytes input) {
    (void)context;
    json_t *request = bp_request_parse(input, host, call);
    if (!request) return BP_STATUS_FATAL_ERROR;
    const char *text = bp_param_string(request, "text");
    if (!text) {
        json_decref(request);
        return bp_fail(host, call, BP_STATUS_FATAL_ERROR, "text is required");
    }
    json_int_t words = count_words(text);
    bp_logf(host, call, BP_LOG_INFO, "counted %lld words", (long long)words);
    bp_progress progress = {sizeof(bp_progress), BP_PROGRESS_PERCENT | BP_PROGRESS_MESSAGE, 100.0, 0, bp_text("counted")};
    host->report_progress(call, &progress);

    json_t *user = json_object_get(request, "user_id");
    json_t *outputs = json_pack("{s:I, s:O}", "words", words, "user_id", user ? user : json_null());
    const char *wait_for = bp_param_string(request, "wait_for");
    bp_status status = wait_for ? bp_await_event(host, call, wait_for, 600, outputs) : bp_complete(host, call, outputs);
    json_decref(request);
    return status;
}

static bp_status word_count_on_event(bp_call *call, void *context, bp_bytes input) {
    (void)context;
    json_t *request = bp_request_parse(input, host, call);
    if (!request) return BP_STATUS_FATAL_ERROR;
    json_t *count = json_object_get(json_object_get(request, "event"), "count");
    bp_status status = json_is_integer(count)
                           ? bp_event_complete(host, call, "COMPLETED", json_pack("{s:I}", "event_count", json_integer_value(count)), NULL)
                           : bp_event_ignore(host, call);
    json_decref(request);
    return status;
}

static bp_status word_count_validate(bp_call *call, void *context, bp_bytes input) {
    (void)context;
    json_t *request = bp_request_parse(input, host, call);
    if (!request) return BP_STATUS_FATAL_ERROR;
    json_t *text = json_object_get(bp_params(request), "text");
    json_t *errors = json_array();
    if (!text) json_array_append_new(errors, json_string("text is required"));
    else if (!json_is_string(text)) json_array_append_new(errors, json_string("text must be a string"));
    json_decref(request);
    return bp_validation_result(host, call, errors);
}

static const char metadata[] =
    "{\"type\":\"word_count\",\"name\":\"Word Count\",\"category\":\"Text\",\"description\":\"Counts the words of a text (C).\","
    "\"params\":[{\"name\":\"text\",\"label\":\"Text\",\"type\":\"string\",\"required\":true},"
    "{\"name\":\"wait_for\",\"label\":\"Wait for\",\"type\":\"string\",\"required\":false}],"
    "\"outputs\":[{\"name\":\"words\",\"type\":\"number\"}],"
    "\"examples\":[{\"title\":\"Three words\",\"params\":{\"text\":\"one two three\"}}]}";

static const bp_action_v1 word_count = {
    sizeof(bp_action_v1), 0, {(const uint8_t *)metadata, sizeof metadata - 1}, NULL,
    word_count_execute, word_count_on_event, word_count_validate, NULL,
};
static const bp_action_v1 *const actions[] = {&word_count};
static const char manifest[] = "{\"name\":\"word_count\",\"version\":\"1.0.0\",\"description\":\"Word count, written in C.\"}";
static const bp_plugin_descriptor_v1 descriptor = {
    sizeof(bp_plugin_descriptor_v1), BP_BUILD_SIGNATURE_INIT, BP_PLUGIN_THREAD_SAFE, 1,
    {(const uint8_t *)manifest, sizeof manifest - 1}, actions, NULL, NULL,
};

BP_EXPORT const bp_plugin_descriptor_v1 *bp_plugin_entry_v1(const bp_host_api_v1 *host_api) {
    host = host_api;
    return &descriptor;
}
