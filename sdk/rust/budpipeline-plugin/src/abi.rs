//! The C ABI of `budpipeline_plugin.h` (ABI 1.0), field for field. Plugin authors use the safe
//! API in the crate root instead; these types are public for those who need the raw table.

#![allow(non_camel_case_types)]

use std::os::raw::c_void;

pub const BP_ABI_MAJOR: u32 = 1;
pub const BP_ABI_MINOR: u32 = 0;
pub const BP_SIGNATURE_MAGIC: u32 = 0x474C_5042;
pub const BP_BYTE_ORDER_MARK: u32 = 0x0102_0304;
pub const BP_PLUGIN_THREAD_SAFE: u32 = 1;

pub const BP_STATUS_OK: u32 = 0;
pub const BP_STATUS_AWAIT_EVENT: u32 = 1;
pub const BP_STATUS_RETRYABLE_ERROR: u32 = 2;
pub const BP_STATUS_FATAL_ERROR: u32 = 3;
pub const BP_STATUS_NOT_FOUND: u32 = 4;
pub const BP_STATUS_UNSUPPORTED: u32 = 5;
pub const BP_STATUS_INVALID_ARGUMENT: u32 = 6;
pub const BP_STATUS_LIMIT_EXCEEDED: u32 = 7;

pub const BP_PROGRESS_PERCENT: u32 = 1;
pub const BP_PROGRESS_ETA: u32 = 2;
pub const BP_PROGRESS_MESSAGE: u32 = 4;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct bp_build_signature {
    pub magic: u32,
    pub abi_major: u32,
    pub abi_minor: u32,
    pub pointer_size: u32,
    pub byte_order: u32,
}

impl bp_build_signature {
    /// `BP_BUILD_SIGNATURE_INIT`.
    pub const CURRENT: bp_build_signature = bp_build_signature {
        magic: BP_SIGNATURE_MAGIC,
        abi_major: BP_ABI_MAJOR,
        abi_minor: BP_ABI_MINOR,
        pointer_size: std::mem::size_of::<*const c_void>() as u32,
        byte_order: BP_BYTE_ORDER_MARK,
    };
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct bp_bytes {
    pub ptr: *const u8,
    pub len: usize,
}

impl bp_bytes {
    pub fn of(bytes: &[u8]) -> bp_bytes {
        bp_bytes { ptr: bytes.as_ptr(), len: bytes.len() }
    }

    /// The bytes, copied; empty for a null pointer.
    ///
    /// # Safety
    /// `ptr` must point to `len` readable bytes (or be null).
    pub unsafe fn to_vec(&self) -> Vec<u8> {
        if self.ptr.is_null() || self.len == 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts(self.ptr, self.len).to_vec()
        }
    }
}

/// Opaque: the host's handle for one call.
#[repr(C)]
pub struct bp_call {
    _private: [u8; 0],
}

#[repr(C)]
pub struct bp_progress {
    pub struct_size: u32,
    pub fields: u32,
    pub percent: f64,
    pub eta_seconds: i64,
    pub message: bp_bytes,
}

#[repr(C)]
pub struct bp_service_request {
    pub struct_size: u32,
    pub timeout_ms: u32,
    pub app_id: bp_bytes,
    pub method: bp_bytes,
    pub path: bp_bytes,
    pub body: bp_bytes,
}

#[repr(C)]
pub struct bp_service_response {
    pub struct_size: u32,
    pub http_status: u32,
    pub body: bp_bytes,
}

#[repr(C)]
pub struct bp_host_api_v1 {
    pub struct_size: u32,
    pub abi_minor: u32,
    pub log: extern "C" fn(*mut bp_call, u32, bp_bytes),
    pub report_progress: extern "C" fn(*mut bp_call, *const bp_progress) -> u32,
    pub invoke_service: extern "C" fn(*mut bp_call, *const bp_service_request, *mut bp_service_response) -> u32,
    pub get_config: extern "C" fn(*mut bp_call, bp_bytes, *mut bp_bytes) -> u32,
    pub write_output: extern "C" fn(*mut bp_call, bp_bytes) -> u32,
    pub write_error: extern "C" fn(*mut bp_call, bp_bytes) -> u32,
    pub is_cancelled: extern "C" fn(*mut bp_call) -> u32,
}

pub type bp_action_fn = extern "C" fn(*mut bp_call, *mut c_void, bp_bytes) -> u32;

#[repr(C)]
pub struct bp_action_v1 {
    pub struct_size: u32,
    pub flags: u32,
    pub metadata_json: bp_bytes,
    pub action_context: *mut c_void,
    pub execute: bp_action_fn,
    pub on_event: Option<bp_action_fn>,
    pub validate_params: Option<bp_action_fn>,
    pub cleanup: Option<bp_action_fn>,
}

#[repr(C)]
pub struct bp_plugin_descriptor_v1 {
    pub struct_size: u32,
    pub signature: bp_build_signature,
    pub flags: u32,
    pub action_count: u32,
    pub manifest_json: bp_bytes,
    pub actions: *const *const bp_action_v1,
    pub init: Option<extern "C" fn(*mut bp_call, bp_bytes) -> u32>,
    pub shutdown: Option<extern "C" fn(*mut bp_call)>,
}
