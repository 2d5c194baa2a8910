//! Write BudPipeline step-handler plugins in Rust (std only).
//!
//! A plugin is a `cdylib` that exports `bp_plugin_entry_v1`, the entry of the C ABI described in
//! the server's `docs/plugins.md`. This crate provides that ABI (module [`abi`]) and a safe layer
//! over it:
//!
//! - [`Action`]: an action's metadata document and its functions, plain Rust functions taking a
//!   [`Call`] (the host services: log, progress, configuration, service calls, cancellation) and
//!   the request as a [`json::Value`];
//! - [`export_plugin!`]: the entry symbol, the descriptor and the trampolines, built once;
//! - **panics are caught at the boundary**: a panicking function answers FATAL_ERROR with the
//!   panic's message (`panicked: …`); nothing unwinds into the host, which would abort it.
//!
//! ```ignore
//! use budpipeline_plugin::{export_plugin, json::Value, Action, Call, Failure, Outcome};
//!
//! fn count(_call: &Call, request: &Value) -> Result<Outcome, Failure> {
//!     let text = request.get("params").and_then(|p| p.get("text")).and_then(Value::as_str)
//!         .ok_or_else(|| Failure::fatal("text is required"))?;
//!     Ok(Outcome::completed(Value::object(vec![("words", Value::Int(text.split_whitespace().count() as i64))])))
//! }
//!
//! static COUNT: Action = Action::new(r#"{"type":"word_count", ...}"#, count);
//! export_plugin!(manifest: r#"{"name":"words","version":"1.0.0"}"#, thread_safe: true, actions: [COUNT]);
//! ```

pub mod abi;
pub mod json;

use abi::*;
use json::Value;
use std::os::raw::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Mutex;

/// The host's service table, stored by the entry function.
static HOST: AtomicPtr<bp_host_api_v1> = AtomicPtr::new(std::ptr::null_mut());

fn host() -> Option<&'static bp_host_api_v1> {
    let pointer = HOST.load(Ordering::Acquire);
    // The host's table lives as long as the plugin is loaded (docs/plugins.md, "The entry function").
    unsafe { pointer.as_ref() }
}

/// Log levels of the host's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Notice = 3,
    Warning = 4,
    Error = 5,
    Critical = 6,
}

/// The host's side of one call: valid only while the function it was given to runs.
pub struct Call {
    raw: *mut bp_call,
}

/// A service's answer to [`Call::invoke_service`].
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceResponse {
    pub http_status: u32,
    pub body: Vec<u8>,
}

impl Call {
    /// Writes a line to the server's log, with the plugin, action, execution and step attached.
    pub fn log(&self, level: Level, message: &str) {
        if let Some(host) = host() {
            (host.log)(self.raw, level as u32, bp_bytes::of(message.as_bytes()));
        }
    }

    /// Reports progress of an `execute` call (0…100, estimated seconds left, a message).
    pub fn report_progress(&self, percent: Option<f64>, eta_seconds: Option<i64>, message: Option<&str>) -> bool {
        let host = match host() {
            Some(host) => host,
            None => return false,
        };
        let mut fields = 0;
        if percent.is_some() {
            fields |= BP_PROGRESS_PERCENT;
        }
        if eta_seconds.is_some() {
            fields |= BP_PROGRESS_ETA;
        }
        if message.is_some() {
            fields |= BP_PROGRESS_MESSAGE;
        }
        let progress = bp_progress {
            struct_size: std::mem::size_of::<bp_progress>() as u32,
            fields,
            percent: percent.unwrap_or(0.0),
            eta_seconds: eta_seconds.unwrap_or(0),
            message: bp_bytes::of(message.unwrap_or("").as_bytes()),
        };
        (host.report_progress)(self.raw, &progress) == BP_STATUS_OK
    }

    /// The plugin's configuration (`key` empty: the whole object), as JSON bytes.
    pub fn config(&self, key: &str) -> Option<Value> {
        let host = host()?;
        let mut value = bp_bytes { ptr: std::ptr::null(), len: 0 };
        if (host.get_config)(self.raw, bp_bytes::of(key.as_bytes()), &mut value) != BP_STATUS_OK {
            return None;
        }
        // The host's configuration bytes stay valid while the plugin is loaded.
        Value::parse(&unsafe { value.to_vec() }).ok()
    }

    /// Calls a method of another service through the host (which owns the address and tokens).
    /// `Err` carries the host's status and its explanation when no answer arrived or the call was
    /// refused.
    pub fn invoke_service(
        &self,
        app_id: &str,
        method: &str,
        path: &str,
        body: &[u8],
        timeout_ms: u32,
    ) -> Result<ServiceResponse, (u32, String)> {
        let host = host().ok_or((BP_STATUS_UNSUPPORTED, "no host".to_string()))?;
        let request = bp_service_request {
            struct_size: std::mem::size_of::<bp_service_request>() as u32,
            timeout_ms,
            app_id: bp_bytes::of(app_id.as_bytes()),
            method: bp_bytes::of(method.as_bytes()),
            path: bp_bytes::of(path.as_bytes()),
            body: bp_bytes::of(body),
        };
        let mut response = bp_service_response {
            struct_size: std::mem::size_of::<bp_service_response>() as u32,
            http_status: 0,
            body: bp_bytes { ptr: std::ptr::null(), len: 0 },
        };
        let status = (host.invoke_service)(self.raw, &request, &mut response);
        // The response body belongs to the call and is valid until it returns; copied here.
        let body = unsafe { response.body.to_vec() };
        if status == BP_STATUS_OK {
            Ok(ServiceResponse { http_status: response.http_status, body })
        } else {
            Err((status, String::from_utf8_lossy(&body).into_owned()))
        }
    }

    /// Whether the host stopped waiting for this call (a timeout or a cancelled step).
    pub fn is_cancelled(&self) -> bool {
        host().map_or(false, |host| (host.is_cancelled)(self.raw) != 0)
    }

    fn write_output(&self, document: &Value) {
        if let Some(host) = host() {
            let text = document.to_json();
            (host.write_output)(self.raw, bp_bytes::of(text.as_bytes()));
        }
    }

    fn write_error(&self, message: &str) {
        if let Some(host) = host() {
            (host.write_error)(self.raw, bp_bytes::of(message.as_bytes()));
        }
    }
}

/// What `execute` made of a step.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Done: the step's outputs.
    Completed(Value),
    /// The step waits for an event carrying `external_workflow_id`.
    AwaitEvent { outputs: Value, external_workflow_id: String, timeout_seconds: Option<i64> },
}

impl Outcome {
    pub fn completed(outputs: Value) -> Outcome {
        Outcome::Completed(outputs)
    }
}

/// A step that did not succeed: `retryable` ones may be tried again by the step's retry policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    pub message: String,
    pub retryable: bool,
    /// Outputs kept on the failed step.
    pub outputs: Option<Value>,
}

impl Failure {
    pub fn fatal(message: impl Into<String>) -> Failure {
        Failure { message: message.into(), retryable: false, outputs: None }
    }

    pub fn retryable(message: impl Into<String>) -> Failure {
        Failure { message: message.into(), retryable: true, outputs: None }
    }
}

/// What `on_event` made of an event.
#[derive(Clone, Debug, PartialEq)]
pub enum EventOutcome {
    /// Finishes the step: `status` is `COMPLETED`, `FAILED` or `TIMEOUT`.
    Complete { status: String, outputs: Value, error: Option<String> },
    UpdateProgress { percent: Option<f64>, eta_seconds: Option<i64>, message: Option<String> },
    Ignore,
}

pub type ExecuteFn = fn(&Call, &Value) -> Result<Outcome, Failure>;
pub type EventFn = fn(&Call, &Value) -> Result<EventOutcome, Failure>;
pub type ValidateFn = fn(&Call, &Value) -> Vec<String>;
pub type CleanupFn = fn(&Call, &Value) -> Result<(), Failure>;

/// One action: its metadata document (docs/plugins.md, "Action metadata") and its functions.
/// Each function receives the whole request document the host sent (`params`, `workflow_params`,
/// `user_id`, … for `execute`; `params` for `validate_params`).
pub struct Action {
    pub metadata: &'static str,
    pub execute: ExecuteFn,
    pub on_event: Option<EventFn>,
    pub validate_params: Option<ValidateFn>,
    pub cleanup: Option<CleanupFn>,
}

impl Action {
    pub const fn new(metadata: &'static str, execute: ExecuteFn) -> Action {
        Action { metadata, execute, on_event: None, validate_params: None, cleanup: None }
    }

    pub const fn with_on_event(mut self, function: EventFn) -> Action {
        self.on_event = Some(function);
        self
    }

    pub const fn with_validate_params(mut self, function: ValidateFn) -> Action {
        self.validate_params = Some(function);
        self
    }

    pub const fn with_cleanup(mut self, function: CleanupFn) -> Action {
        self.cleanup = Some(function);
        self
    }
}

/// Runs `body` with the call and the parsed input; a panic becomes FATAL_ERROR with its message.
fn guarded(raw: *mut bp_call, input: bp_bytes, body: impl FnOnce(&Call, &Value) -> u32) -> u32 {
    let call = Call { raw };
    // The input is valid for the duration of the call.
    let bytes = unsafe { input.to_vec() };
    let request = match Value::parse(&bytes) {
        Ok(value) => value,
        Err(error) => {
            call.write_error(&format!("the request is not JSON: {}", error));
            return BP_STATUS_INVALID_ARGUMENT;
        }
    };
    match catch_unwind(AssertUnwindSafe(|| body(&call, &request))) {
        Ok(status) => status,
        Err(panic) => {
            let reason = panic
                .downcast_ref::<&str>()
                .map(|text| text.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_string());
            call.write_error(&format!("panicked: {}", reason));
            BP_STATUS_FATAL_ERROR
        }
    }
}

fn action_of(context: *mut c_void) -> &'static Action {
    // The context is the address of a `static Action` given to `export_plugin!`.
    unsafe { &*(context as *const Action) }
}

fn fail(call: &Call, failure: Failure) -> u32 {
    if let Some(outputs) = failure.outputs {
        call.write_output(&Value::object(vec![("outputs", outputs)]));
    }
    call.write_error(&failure.message);
    if failure.retryable {
        BP_STATUS_RETRYABLE_ERROR
    } else {
        BP_STATUS_FATAL_ERROR
    }
}

extern "C" fn execute_trampoline(call: *mut bp_call, context: *mut c_void, input: bp_bytes) -> u32 {
    guarded(call, input, |call, request| match (action_of(context).execute)(call, request) {
        Ok(Outcome::Completed(outputs)) => {
            call.write_output(&Value::object(vec![("outputs", outputs)]));
            BP_STATUS_OK
        }
        Ok(Outcome::AwaitEvent { outputs, external_workflow_id, timeout_seconds }) => {
            let mut members = vec![("outputs", outputs), ("external_workflow_id", Value::String(external_workflow_id))];
            if let Some(seconds) = timeout_seconds {
                members.push(("timeout_seconds", Value::Int(seconds)));
            }
            call.write_output(&Value::object(members));
            BP_STATUS_AWAIT_EVENT
        }
        Err(failure) => fail(call, failure),
    })
}

extern "C" fn event_trampoline(call: *mut bp_call, context: *mut c_void, input: bp_bytes) -> u32 {
    guarded(call, input, |call, request| {
        let function = match action_of(context).on_event {
            Some(function) => function,
            None => return BP_STATUS_UNSUPPORTED,
        };
        match function(call, request) {
            Ok(EventOutcome::Complete { status, outputs, error }) => {
                let mut members = vec![("action", Value::from("complete")), ("status", Value::String(status)), ("outputs", outputs)];
                if let Some(error) = error {
                    members.push(("error", Value::String(error)));
                }
                call.write_output(&Value::object(members));
                BP_STATUS_OK
            }
            Ok(EventOutcome::UpdateProgress { percent, eta_seconds, message }) => {
                let mut members = vec![("action", Value::from("update_progress"))];
                if let Some(percent) = percent {
                    members.push(("progress", Value::Double(percent)));
                }
                if let Some(eta) = eta_seconds {
                    members.push(("eta_seconds", Value::Int(eta)));
                }
                if let Some(message) = message {
                    members.push(("message", Value::String(message)));
                }
                call.write_output(&Value::object(members));
                BP_STATUS_OK
            }
            Ok(EventOutcome::Ignore) => BP_STATUS_OK,
            // on_event may ask for the event again later (RETRYABLE) or fail (FATAL).
            Err(failure) => fail(call, failure),
        }
    })
}

extern "C" fn validate_trampoline(call: *mut bp_call, context: *mut c_void, input: bp_bytes) -> u32 {
    guarded(call, input, |call, request| {
        let function = match action_of(context).validate_params {
            Some(function) => function,
            None => return BP_STATUS_UNSUPPORTED,
        };
        let errors = function(call, request).into_iter().map(Value::String).collect();
        call.write_output(&Value::object(vec![("errors", Value::Array(errors))]));
        BP_STATUS_OK
    })
}

extern "C" fn cleanup_trampoline(call: *mut bp_call, context: *mut c_void, input: bp_bytes) -> u32 {
    guarded(call, input, |call, request| {
        let function = match action_of(context).cleanup {
            Some(function) => function,
            None => return BP_STATUS_UNSUPPORTED,
        };
        match function(call, request) {
            Ok(()) => BP_STATUS_OK,
            Err(failure) => fail(call, failure),
        }
    })
}

/// The descriptor and the action table, built once (under a lock) and never freed (the host never unloads a
/// plugin, so they must stay valid for the life of the process).
struct Descriptor(*const bp_plugin_descriptor_v1);
// The descriptor is written once, then only read, by any thread.
unsafe impl Send for Descriptor {}
unsafe impl Sync for Descriptor {}

static DESCRIPTOR: Mutex<Option<Descriptor>> = Mutex::new(None);

/// What `bp_plugin_entry_v1` does; called by [`export_plugin!`]'s entry function.
#[doc(hidden)]
pub fn entry(host: *const bp_host_api_v1, manifest: &'static str, thread_safe: bool, actions: &[&'static Action]) -> *const bp_plugin_descriptor_v1 {
    HOST.store(host as *mut bp_host_api_v1, Ordering::Release);
    let mut built = match DESCRIPTOR.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some(descriptor) = built.as_ref() {
        return descriptor.0;
    }
    let descriptor = {
        {
            let table: Vec<*const bp_action_v1> = actions
                .iter()
                .map(|action| {
                    let raw = Box::new(bp_action_v1 {
                        struct_size: std::mem::size_of::<bp_action_v1>() as u32,
                        flags: 0,
                        metadata_json: bp_bytes::of(action.metadata.as_bytes()),
                        action_context: *action as *const Action as *mut c_void,
                        execute: execute_trampoline,
                        on_event: action.on_event.map(|_| event_trampoline as bp_action_fn),
                        validate_params: action.validate_params.map(|_| validate_trampoline as bp_action_fn),
                        cleanup: action.cleanup.map(|_| cleanup_trampoline as bp_action_fn),
                    });
                    Box::into_raw(raw) as *const bp_action_v1
                })
                .collect();
            let count = table.len() as u32;
            let table = Box::leak(table.into_boxed_slice());
            let descriptor = Box::new(bp_plugin_descriptor_v1 {
                struct_size: std::mem::size_of::<bp_plugin_descriptor_v1>() as u32,
                signature: bp_build_signature::CURRENT,
                flags: if thread_safe { BP_PLUGIN_THREAD_SAFE } else { 0 },
                action_count: count,
                manifest_json: bp_bytes::of(manifest.as_bytes()),
                actions: table.as_ptr(),
                init: None,
                shutdown: None,
            });
            Descriptor(Box::into_raw(descriptor))
        }
    };
    let pointer = descriptor.0;
    *built = Some(descriptor);
    pointer
}

/// Exports the plugin: `bp_plugin_entry_v1` returning a descriptor with the manifest and actions.
///
/// ```ignore
/// export_plugin!(manifest: r#"{"name":"words","version":"1.0.0"}"#, thread_safe: true, actions: [COUNT, OTHER]);
/// ```
#[macro_export]
macro_rules! export_plugin {
    (manifest: $manifest:expr, thread_safe: $thread_safe:expr, actions: [$($action:ident),+ $(,)?] $(,)?) => {
        #[no_mangle]
        pub extern "C" fn bp_plugin_entry_v1(
            host: *const $crate::abi::bp_host_api_v1,
        ) -> *const $crate::abi::bp_plugin_descriptor_v1 {
            $crate::entry(host, $manifest, $thread_safe, &[$(&$action),+])
        }
    };
}

#[cfg(test)]
mod tests {
    use super::abi::*;

    #[test]
    fn layouts_match_the_c_header() {
        use std::mem::size_of;
        assert_eq!(size_of::<bp_bytes>(), 16);
        assert_eq!(size_of::<bp_build_signature>(), 20);
        assert_eq!(size_of::<bp_action_v1>(), 64);
        assert_eq!(size_of::<bp_plugin_descriptor_v1>(), 72);
        assert_eq!(size_of::<bp_host_api_v1>(), 64);
        assert_eq!(size_of::<bp_progress>(), 40);
        assert_eq!(size_of::<bp_service_request>(), 72);
        assert_eq!(size_of::<bp_service_response>(), 24);
    }
}
