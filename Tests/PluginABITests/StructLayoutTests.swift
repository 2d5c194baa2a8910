import PluginABI
import Testing

@testable import BudPipelineHost

/// Pins the layout of every struct of ABI v1 as Swift imports it (LP64 platforms).
///
/// A failure here means the header changed a released field: that breaks every plugin built
/// before the change. Fields may only be appended (see docs/plugins.md, "Versioning").
@Suite struct StructLayoutTests {
    private func offset<Root, Value>(_ path: KeyPath<Root, Value>) -> Int? {
        MemoryLayout<Root>.offset(of: path)
    }

    @Test func bytes() {
        #expect(MemoryLayout<bp_bytes>.size == 16)
        #expect(offset(\bp_bytes.ptr) == 0)
        #expect(offset(\bp_bytes.len) == 8)
    }

    @Test func buildSignature() {
        #expect(MemoryLayout<bp_build_signature>.size == 20)
        #expect(offset(\bp_build_signature.magic) == 0)
        #expect(offset(\bp_build_signature.abi_major) == 4)
        #expect(offset(\bp_build_signature.abi_minor) == 8)
        #expect(offset(\bp_build_signature.pointer_size) == 12)
        #expect(offset(\bp_build_signature.byte_order) == 16)
    }

    @Test func progress() {
        #expect(MemoryLayout<bp_progress>.size == 40)
        #expect(offset(\bp_progress.struct_size) == 0)
        #expect(offset(\bp_progress.fields) == 4)
        #expect(offset(\bp_progress.percent) == 8)
        #expect(offset(\bp_progress.eta_seconds) == 16)
        #expect(offset(\bp_progress.message) == 24)
    }

    @Test func serviceRequestAndResponse() {
        #expect(MemoryLayout<bp_service_request>.size == 72)
        #expect(offset(\bp_service_request.struct_size) == 0)
        #expect(offset(\bp_service_request.timeout_ms) == 4)
        #expect(offset(\bp_service_request.app_id) == 8)
        #expect(offset(\bp_service_request.method) == 24)
        #expect(offset(\bp_service_request.path) == 40)
        #expect(offset(\bp_service_request.body) == 56)
        #expect(MemoryLayout<bp_service_response>.size == 24)
        #expect(offset(\bp_service_response.struct_size) == 0)
        #expect(offset(\bp_service_response.http_status) == 4)
        #expect(offset(\bp_service_response.body) == 8)
    }

    @Test func hostServiceTable() {
        #expect(MemoryLayout<bp_host_api_v1>.size == 64)
        #expect(offset(\bp_host_api_v1.struct_size) == 0)
        #expect(offset(\bp_host_api_v1.abi_minor) == 4)
        #expect(offset(\bp_host_api_v1.log) == 8)
        #expect(offset(\bp_host_api_v1.report_progress) == 16)
        #expect(offset(\bp_host_api_v1.invoke_service) == 24)
        #expect(offset(\bp_host_api_v1.get_config) == 32)
        #expect(offset(\bp_host_api_v1.write_output) == 40)
        #expect(offset(\bp_host_api_v1.write_error) == 48)
        #expect(offset(\bp_host_api_v1.is_cancelled) == 56)
    }

    @Test func action() {
        #expect(MemoryLayout<bp_action_v1>.size == 64)
        #expect(offset(\bp_action_v1.struct_size) == 0)
        #expect(offset(\bp_action_v1.flags) == 4)
        #expect(offset(\bp_action_v1.metadata_json) == 8)
        #expect(offset(\bp_action_v1.action_context) == 24)
        #expect(offset(\bp_action_v1.execute) == 32)
        #expect(offset(\bp_action_v1.on_event) == 40)
        #expect(offset(\bp_action_v1.validate_params) == 48)
        #expect(offset(\bp_action_v1.cleanup) == 56)
    }

    @Test func descriptor() {
        #expect(MemoryLayout<bp_plugin_descriptor_v1>.size == 72)
        #expect(offset(\bp_plugin_descriptor_v1.struct_size) == 0)
        #expect(offset(\bp_plugin_descriptor_v1.signature) == 4)
        #expect(offset(\bp_plugin_descriptor_v1.flags) == 24)
        #expect(offset(\bp_plugin_descriptor_v1.action_count) == 28)
        #expect(offset(\bp_plugin_descriptor_v1.manifest_json) == 32)
        #expect(offset(\bp_plugin_descriptor_v1.actions) == 48)
        #expect(offset(\bp_plugin_descriptor_v1.`init`) == 56)
        #expect(offset(\bp_plugin_descriptor_v1.shutdown) == 64)
    }

    /// The host's 1.0 minimums are frozen: later minors grow the structs, never these numbers.
    @Test func hostMinimumSizesAreTheReleased1_0Sizes() {
        #expect(ABILayout.signatureEnd == 24)
        #expect(ABILayout.descriptorMinimumSize == 72)
        #expect(ABILayout.actionMinimumSize == 64)
        #expect(ABILayout.progressMinimumSize == 40)
        #expect(ABILayout.serviceRequestMinimumSize == 72)
        #expect(ABILayout.serviceResponseMinimumSize == 24)
    }

    @Test func constants() {
        #expect(BP_ABI_MAJOR == 1)
        #expect(BP_SIGNATURE_MAGIC == 0x474C_5042)
        #expect(BP_BYTE_ORDER_MARK == 0x0102_0304)
        #expect(
            [
                BP_STATUS_OK, BP_STATUS_AWAIT_EVENT, BP_STATUS_RETRYABLE_ERROR, BP_STATUS_FATAL_ERROR, BP_STATUS_NOT_FOUND,
                BP_STATUS_UNSUPPORTED, BP_STATUS_INVALID_ARGUMENT, BP_STATUS_LIMIT_EXCEEDED,
            ].map(\.rawValue) == Array(0...7)
        )
        #expect(
            [BP_LOG_TRACE, BP_LOG_DEBUG, BP_LOG_INFO, BP_LOG_NOTICE, BP_LOG_WARNING, BP_LOG_ERROR, BP_LOG_CRITICAL].map(\.rawValue)
                == Array(0...6)
        )
        #expect([BP_PROGRESS_PERCENT, BP_PROGRESS_ETA, BP_PROGRESS_MESSAGE].map(\.rawValue) == [1, 2, 4])
        #expect(BP_PLUGIN_THREAD_SAFE.rawValue == 1)
    }
}
