/*
 * budpipeline_plugin.h — the BudPipeline plugin C ABI, major version 1.
 *
 * A plugin is a shared library that exports one function, `bp_plugin_entry_v1`.
 * The host calls it once with a table of host services and receives a
 * descriptor: a build signature, a JSON manifest and one entry per action
 * (step handler) with that action's JSON metadata and functions.
 *
 * Rules that keep this ABI stable (docs/plugins.md explains each in full):
 *
 *  1. Versioned entry: one entry function per ABI major version. A host that
 *     supports major N looks for `bp_plugin_entry_vN`.
 *  2. Every struct that crosses the boundary starts with `uint32_t struct_size`,
 *     set by whoever fills the struct to `sizeof` of the struct as it was
 *     compiled. The reader uses the smaller of its own size and `struct_size`
 *     and treats fields beyond it as absent (zero / NULL). Fields are only ever
 *     appended; minor versions are negotiated by size.
 *  3. Only fixed-width integers, `uint32_t` enumerations, `double`, opaque
 *     handles, function pointers and byte strings (`bp_bytes`) cross the
 *     boundary. Structured data (metadata, requests, results, events) travels
 *     as UTF-8 JSON inside `bp_bytes`.
 *  4. Memory: whoever allocates frees. The plugin hands data to the host only
 *     through host functions that copy it (`write_output`, `write_error`, ...).
 *     Bytes the host hands to the plugin are valid only for the duration of the
 *     plugin function that received them (see each field for the exact rule).
 *  5. Errors are values: every plugin function returns a `bp_status`; nothing
 *     unwinds across the boundary (no C++ exceptions, no Swift errors, no
 *     longjmp).
 *  6. Threading: unless the descriptor sets BP_PLUGIN_THREAD_SAFE the host
 *     makes at most one call into the plugin at a time. Calls never run on the
 *     host's network threads. Host functions are thread-safe.
 *
 * This file is the whole ABI. It is C11 and has no dependency beyond
 * <stddef.h> and <stdint.h>.
 */
#ifndef BUDPIPELINE_PLUGIN_H
#define BUDPIPELINE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Versions and the build signature                                          */
/* ------------------------------------------------------------------------ */

/** ABI major version of this header. A change of major is a new entry symbol. */
#define BP_ABI_MAJOR 1u
/** ABI minor version of this header. Minors only append fields and constants. */
#define BP_ABI_MINOR 0u

/** Name of the entry symbol for ABI major 1. */
#define BP_PLUGIN_ENTRY_V1_SYMBOL "bp_plugin_entry_v1"

/** First field of every build signature: the bytes "BPLG" read as a little-endian uint32_t. */
#define BP_SIGNATURE_MAGIC 0x474C5042u
/** Written in native byte order; the host compares it with its own. */
#define BP_BYTE_ORDER_MARK 0x01020304u

/** Marks the entry symbol as exported when the rest of the plugin is hidden. */
#if defined(_WIN32)
#define BP_EXPORT __declspec(dllexport)
#else
#define BP_EXPORT __attribute__((visibility("default")))
#endif

/**
 * Identifies how a plugin was built. The host checks it before it reads
 * anything else from the descriptor and refuses the plugin on any mismatch.
 * Initialise it with BP_BUILD_SIGNATURE_INIT.
 */
typedef struct bp_build_signature {
    uint32_t magic;        /* BP_SIGNATURE_MAGIC */
    uint32_t abi_major;    /* BP_ABI_MAJOR the plugin was compiled against */
    uint32_t abi_minor;    /* BP_ABI_MINOR the plugin was compiled against */
    uint32_t pointer_size; /* sizeof(void *) */
    uint32_t byte_order;   /* BP_BYTE_ORDER_MARK */
} bp_build_signature;

#define BP_BUILD_SIGNATURE_INIT \
    { BP_SIGNATURE_MAGIC, BP_ABI_MAJOR, BP_ABI_MINOR, (uint32_t)sizeof(void *), BP_BYTE_ORDER_MARK }

/* ------------------------------------------------------------------------ */
/* Basic types                                                               */
/* ------------------------------------------------------------------------ */

/**
 * A byte string: UTF-8 text or JSON. Not NUL-terminated; `ptr` may be NULL
 * when `len` is 0. The owner of the memory is given by the field or function
 * that carries it.
 */
typedef struct bp_bytes {
    const uint8_t *ptr;
    size_t len;
} bp_bytes;

/** Result of every plugin function and of most host functions. */
typedef uint32_t bp_status;

enum bp_status_code {
    /** Success. For execute: the step completed; its result JSON was written. */
    BP_STATUS_OK = 0,
    /** execute only: the step started external work and waits for an event. */
    BP_STATUS_AWAIT_EVENT = 1,
    /** A failure that may succeed if the step is attempted again later. */
    BP_STATUS_RETRYABLE_ERROR = 2,
    /** A failure that will not go away by retrying. */
    BP_STATUS_FATAL_ERROR = 3,
    /** Host get_config: the key is not in the plugin's configuration. */
    BP_STATUS_NOT_FOUND = 4,
    /** The callee does not implement this operation. */
    BP_STATUS_UNSUPPORTED = 5,
    /** A host function received a malformed argument (NULL, short struct, bad UTF-8). */
    BP_STATUS_INVALID_ARGUMENT = 6,
    /** Host write_output / write_error: the call's size limit was reached. */
    BP_STATUS_LIMIT_EXCEEDED = 7
};

/** Severity of a log message written through the host. */
typedef uint32_t bp_log_level;

enum bp_log_level_code {
    BP_LOG_TRACE = 0,
    BP_LOG_DEBUG = 1,
    BP_LOG_INFO = 2,
    BP_LOG_NOTICE = 3,
    BP_LOG_WARNING = 4,
    BP_LOG_ERROR = 5,
    BP_LOG_CRITICAL = 6
};

/**
 * Opaque handle of one call from the host into the plugin. Every plugin
 * function receives one; host functions take it back so the host knows which
 * plugin, action and step is speaking. It is valid from the moment the plugin
 * function is entered until it returns — including on threads the plugin
 * starts itself, as long as the plugin function has not returned.
 */
typedef struct bp_call bp_call;

/* ------------------------------------------------------------------------ */
/* Host services                                                             */
/* ------------------------------------------------------------------------ */

/** Bits of bp_progress.fields: which of the optional fields are set. */
enum bp_progress_field {
    BP_PROGRESS_PERCENT = 1u << 0,
    BP_PROGRESS_ETA = 1u << 1,
    BP_PROGRESS_MESSAGE = 1u << 2
};

/** A progress report for the step being executed (see host report_progress). */
typedef struct bp_progress {
    uint32_t struct_size; /* sizeof(bp_progress), set by the plugin */
    uint32_t fields;      /* bitwise OR of bp_progress_field */
    double percent;       /* 0 ... 100, when BP_PROGRESS_PERCENT */
    int64_t eta_seconds;  /* >= 0, estimated seconds left, when BP_PROGRESS_ETA */
    bp_bytes message;     /* UTF-8, when BP_PROGRESS_MESSAGE; copied by the host */
} bp_progress;

/**
 * A call to another service made by the host on the plugin's behalf. The host
 * owns transport, authentication tokens, retries and circuit breaking.
 * All bytes are read during invoke_service only.
 */
typedef struct bp_service_request {
    uint32_t struct_size; /* sizeof(bp_service_request), set by the plugin */
    uint32_t timeout_ms;  /* 0: the host's default timeout */
    bp_bytes app_id;      /* target service id, e.g. "budapp" */
    bp_bytes method;      /* HTTP method: "GET", "POST", "PUT", "PATCH", "DELETE" */
    bp_bytes path;        /* path on the target, may carry a query string: "models/42?user_id=u" */
    bp_bytes body;        /* JSON request body; empty for none */
} bp_service_request;

/**
 * The answer to a bp_service_request. The plugin sets `struct_size`; the host
 * fills the rest. `body` is owned by the host and stays valid until the
 * plugin function that received the `bp_call` returns.
 */
typedef struct bp_service_response {
    uint32_t struct_size; /* sizeof(bp_service_response), set by the plugin */
    uint32_t http_status; /* HTTP status of the answer; 0 when none arrived */
    bp_bytes body;        /* response body (JSON as sent), or an error message when http_status is 0 */
} bp_service_response;

/**
 * Services the host offers to the plugin. Passed to the entry function; valid
 * until the plugin's shutdown function has returned. The table only grows:
 * before using a function added in a later minor, check `struct_size` with
 * BP_HAS_FIELD(host, bp_host_api_v1, function_name).
 */
typedef struct bp_host_api_v1 {
    uint32_t struct_size; /* sizeof(bp_host_api_v1) as compiled into the host */
    uint32_t abi_minor;   /* BP_ABI_MINOR of the host */

    /** Writes one log line, attributed to the plugin, action and step of `call`. */
    void (*log)(bp_call *call, bp_log_level level, bp_bytes message);

    /**
     * Reports progress of the step being executed (execute only; elsewhere
     * ignored). Returns BP_STATUS_INVALID_ARGUMENT for a percent outside
     * 0...100, a negative ETA or a short struct.
     */
    bp_status (*report_progress)(bp_call *call, const bp_progress *progress);

    /**
     * Calls another service through the host and blocks until it answers.
     * BP_STATUS_OK: an HTTP answer arrived (any status code; see http_status).
     * BP_STATUS_RETRYABLE_ERROR: no answer (connection refused, timeout,
     * circuit open); response->body holds the reason.
     * BP_STATUS_UNSUPPORTED: this host has no service invocation configured.
     */
    bp_status (*invoke_service)(bp_call *call, const bp_service_request *request,
                                bp_service_response *response);

    /**
     * Reads the plugin's configuration, a JSON object supplied by the
     * operator. An empty key returns the whole object; otherwise the value of
     * that top-level key as JSON, or BP_STATUS_NOT_FOUND. `value` is owned by
     * the host and valid until shutdown returns.
     */
    bp_status (*get_config)(bp_call *call, bp_bytes key, bp_bytes *value);

    /**
     * Appends bytes to the call's result (JSON; see docs/plugins.md for each
     * function's result document). The host copies them at once. May be called
     * several times; the pieces are concatenated.
     */
    bp_status (*write_output)(bp_call *call, bp_bytes bytes);

    /**
     * Appends UTF-8 text to the call's error message. Used with
     * BP_STATUS_RETRYABLE_ERROR and BP_STATUS_FATAL_ERROR; copied at once.
     */
    bp_status (*write_error)(bp_call *call, bp_bytes message);

    /**
     * Returns 1 when the host no longer waits for this call (it timed out or
     * the step was cancelled) and 0 otherwise. Long-running plugin code should
     * poll it and return early; anything written after that is discarded.
     */
    uint32_t (*is_cancelled)(bp_call *call);
} bp_host_api_v1;

/** True when `ptr` (a struct starting with struct_size) is large enough to hold `field`. */
#define BP_HAS_FIELD(ptr, type, field) \
    ((ptr)->struct_size >= offsetof(type, field) + sizeof(((type *)0)->field))

/* ------------------------------------------------------------------------ */
/* What the plugin provides                                                   */
/* ------------------------------------------------------------------------ */

/**
 * Signature of every per-action function. `action_context` is the value the
 * plugin stored in bp_action_v1.action_context. `input` is a JSON document
 * owned by the host and valid until the function returns.
 */
typedef bp_status (*bp_action_fn)(bp_call *call, void *action_context, bp_bytes input);

/**
 * One action (step handler). All memory it points to must stay valid until
 * the plugin's shutdown function has returned.
 */
typedef struct bp_action_v1 {
    uint32_t struct_size;   /* sizeof(bp_action_v1) */
    uint32_t flags;         /* reserved for later minors; set to 0 */
    bp_bytes metadata_json; /* the action's metadata document (docs/plugins.md, "Action metadata") */
    void *action_context;   /* passed back unchanged to the functions below */

    /** Required. Runs the step. Input: execute request; output: execute result. */
    bp_action_fn execute;
    /** Optional (NULL: every event is ignored). Input: event request; output: event result. */
    bp_action_fn on_event;
    /** Optional (NULL: no extra checks). Input: {"params": {...}}; output: {"errors": [...]}. */
    bp_action_fn validate_params;
    /** Optional. Called when an executing or awaiting step is abandoned. Input: cleanup request. */
    bp_action_fn cleanup;
} bp_action_v1;

/** Bits of bp_plugin_descriptor_v1.flags. */
enum bp_plugin_flag {
    /** Any function of the plugin may be called from several threads at once. */
    BP_PLUGIN_THREAD_SAFE = 1u << 0
};

/**
 * What the entry function returns. The descriptor and everything it points to
 * must stay valid until shutdown has returned (a static is the usual choice).
 */
typedef struct bp_plugin_descriptor_v1 {
    uint32_t struct_size;         /* sizeof(bp_plugin_descriptor_v1) */
    bp_build_signature signature; /* BP_BUILD_SIGNATURE_INIT */
    uint32_t flags;               /* bitwise OR of bp_plugin_flag */
    uint32_t action_count;        /* number of entries in `actions` */
    bp_bytes manifest_json;       /* {"name": ..., "version": ..., "description": ...} */
    const bp_action_v1 *const *actions;

    /**
     * Optional. Called once after the host accepted the descriptor and before
     * any action function. `config_json` is the plugin's configuration (a JSON
     * object, "{}" when none), valid until init returns. A status other than
     * BP_STATUS_OK refuses the plugin; write the reason with write_error.
     */
    bp_status (*init)(bp_call *call, bp_bytes config_json);
    /** Optional. Called once when the host stops; no call follows it. */
    void (*shutdown)(bp_call *call);
} bp_plugin_descriptor_v1;

/** Smallest struct_size a v1 host accepts for each struct (the end of its last 1.0 field). */
#define BP_PLUGIN_DESCRIPTOR_V1_MIN_SIZE \
    (offsetof(bp_plugin_descriptor_v1, shutdown) + sizeof(void (*)(bp_call *)))
#define BP_ACTION_V1_MIN_SIZE (offsetof(bp_action_v1, cleanup) + sizeof(bp_action_fn))
#define BP_PROGRESS_MIN_SIZE (offsetof(bp_progress, message) + sizeof(bp_bytes))
#define BP_SERVICE_REQUEST_MIN_SIZE (offsetof(bp_service_request, body) + sizeof(bp_bytes))
#define BP_SERVICE_RESPONSE_MIN_SIZE (offsetof(bp_service_response, body) + sizeof(bp_bytes))

/**
 * The entry function. Called once per process, before anything else, on any
 * thread. It must not call host functions (there is no bp_call yet); it
 * returns a pointer to the plugin's descriptor, or NULL to decline loading.
 * `host` stays valid until shutdown has returned.
 */
typedef const bp_plugin_descriptor_v1 *(*bp_plugin_entry_v1_fn)(const bp_host_api_v1 *host);

#if !defined(__swift__)
BP_EXPORT const bp_plugin_descriptor_v1 *bp_plugin_entry_v1(const bp_host_api_v1 *host);
#endif

#ifdef __cplusplus
}
#endif

#endif /* BUDPIPELINE_PLUGIN_H */
