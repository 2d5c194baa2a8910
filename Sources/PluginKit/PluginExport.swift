import BudJSON
internal import PluginABI
public import PluginSchema
import Synchronization

/// Exports a Swift plugin through the C ABI.
///
/// A plugin library defines the ABI's entry symbol and forwards to ``entry(host:manifest:handlers:)``:
///
/// ```swift
/// @c(bp_plugin_entry_v1)
/// public func pluginEntry(_ host: UnsafeRawPointer?) -> UnsafeRawPointer? {
///     PluginExport.entry(host: host, manifest: PluginManifest(name: "acme", version: "1.0.0"), handlers: [Resize.self])
/// }
/// ```
///
/// PluginKit builds the descriptor, turns JSON into Swift values and back, keeps to the ABI's
/// memory rules and maps thrown errors to statuses. The handlers are `Sendable`, so the plugin is
/// declared thread-safe.
public enum PluginExport {
    /// Builds (once) and returns the plugin's descriptor. Returns `nil` — which the host reports as a
    /// refused plugin — when `host` is `nil` or a handler's metadata is invalid.
    public static func entry(
        host: UnsafeRawPointer?,
        manifest: PluginManifest,
        handlers: [any StepHandler.Type]
    ) -> UnsafeRawPointer? {
        guard let host else { return nil }
        return PluginRuntime.shared.withLock { runtime -> UnsafeRawPointer? in
            if let runtime { return UnsafeRawPointer(runtime.descriptor) }
            let created = PluginRuntime(host: host.assumingMemoryBound(to: bp_host_api_v1.self), manifest: manifest, handlerTypes: handlers)
            runtime = created
            return UnsafeRawPointer(created.descriptor)
        }
    }
}

/// The state of the exported plugin: its descriptor (built once, kept for the process lifetime,
/// as the ABI requires) and the handler instances created by `init`.
///
/// `@unchecked Sendable` is safe: `host` and `descriptor` point to memory that is written once
/// before the runtime is published and never written again; `handlers` is guarded by a mutex.
final class PluginRuntime: @unchecked Sendable {
    static let shared = Mutex<PluginRuntime?>(nil)

    let host: UnsafePointer<bp_host_api_v1>
    let descriptor: UnsafePointer<bp_plugin_descriptor_v1>
    let handlerTypes: [any StepHandler.Type]
    private let state = Mutex<(handlers: [any StepHandler], configuration: PluginConfiguration)?>(nil)

    init(host: UnsafePointer<bp_host_api_v1>, manifest: PluginManifest, handlerTypes: [any StepHandler.Type]) {
        self.host = host
        self.handlerTypes = handlerTypes
        let actions = UnsafeMutablePointer<UnsafePointer<bp_action_v1>?>.allocate(capacity: max(1, handlerTypes.count))
        for (index, type) in handlerTypes.enumerated() {
            let action = UnsafeMutablePointer<bp_action_v1>.allocate(capacity: 1)
            action.initialize(
                to: bp_action_v1(
                    struct_size: UInt32(MemoryLayout<bp_action_v1>.size),
                    flags: 0,
                    metadata_json: Self.permanentBytes(type.metadata.json.serialized()),
                    action_context: UnsafeMutableRawPointer(bitPattern: index + 1),
                    execute: { call, context, input in PluginRuntime.execute(call, context, input) },
                    on_event: type is any EventHandling.Type
                        ? { call, context, input in PluginRuntime.onEvent(call, context, input) } : nil,
                    validate_params: type is any ParameterValidating.Type
                        ? { call, context, input in PluginRuntime.validateParams(call, context, input) } : nil,
                    cleanup: type is any CleanupHandling.Type
                        ? { call, context, input in PluginRuntime.cleanup(call, context, input) } : nil
                )
            )
            actions[index] = UnsafePointer(action)
        }
        let descriptor = UnsafeMutablePointer<bp_plugin_descriptor_v1>.allocate(capacity: 1)
        descriptor.initialize(
            to: bp_plugin_descriptor_v1(
                struct_size: UInt32(MemoryLayout<bp_plugin_descriptor_v1>.size),
                signature: bp_build_signature(
                    magic: BP_SIGNATURE_MAGIC,
                    abi_major: BP_ABI_MAJOR,
                    abi_minor: BP_ABI_MINOR,
                    pointer_size: UInt32(MemoryLayout<UnsafeRawPointer>.size),
                    byte_order: BP_BYTE_ORDER_MARK
                ),
                flags: BP_PLUGIN_THREAD_SAFE.rawValue,
                action_count: UInt32(handlerTypes.count),
                manifest_json: Self.permanentBytes(manifest.json.serialized()),
                actions: UnsafePointer(actions),
                init: { call, config in PluginRuntime.initialize(call, config) },
                shutdown: { _ in PluginRuntime.current?.state.withLock { $0 = nil } }
            )
        )
        self.descriptor = UnsafePointer(descriptor)
    }

    static var current: PluginRuntime? { shared.withLock { $0 } }

    /// Copies bytes into memory that is never freed (descriptor data must outlive every call).
    private static func permanentBytes(_ bytes: [UInt8]) -> bp_bytes {
        let storage = UnsafeMutablePointer<UInt8>.allocate(capacity: max(1, bytes.count))
        storage.initialize(from: bytes, count: bytes.count)
        return bp_bytes(ptr: UnsafePointer(storage), len: bytes.count)
    }

    // MARK: Trampolines (called by the host through the descriptor)

    private static func initialize(_ call: OpaquePointer?, _ config: bp_bytes) -> bp_status {
        guard let runtime = current else { return BP_STATUS_FATAL_ERROR.rawValue }
        do {
            let document =
                config.len == 0
                ? JSONValue.object([:]) : try JSONValue(parsing: UnsafeRawBufferPointer(start: config.ptr, count: config.len))
            let configuration = PluginConfiguration(document.objectValue ?? [:])
            for type in runtime.handlerTypes where type.metadata.executionMode == .eventDriven && !(type is any EventHandling.Type) {
                throw StepFailure(
                    "action '\(type.metadata.type)' is event_driven but its handler \(type) does not adopt EventHandling: "
                        + "its onEvent would never be called")
            }
            let handlers = try runtime.handlerTypes.map { try $0.init(configuration: configuration) }
            runtime.state.withLock { $0 = (handlers, configuration) }
            return BP_STATUS_OK.rawValue
        } catch {
            runtime.write(error: String(describing: error), call: call)
            return BP_STATUS_FATAL_ERROR.rawValue
        }
    }

    private static func execute(_ call: OpaquePointer?, _ context: UnsafeMutableRawPointer?, _ input: bp_bytes) -> bp_status {
        dispatch(call, context, input) { runtime, handler, document, stepContext in
            let outcome: StepOutcome
            do {
                outcome = try handler.execute(try ExecuteRequest(json: document), context: stepContext)
            } catch {
                outcome = StepOutcome(error: error)
            }
            let wire = outcome.wireForm
            runtime.write(output: wire.document, call: call)
            if let message = wire.errorMessage { runtime.write(error: message, call: call) }
            return wire.status
        }
    }

    private static func onEvent(_ call: OpaquePointer?, _ context: UnsafeMutableRawPointer?, _ input: bp_bytes) -> bp_status {
        dispatch(call, context, input) { runtime, handler, document, stepContext in
            let outcome: EventOutcome
            do {
                guard let handler = handler as? any EventHandling else { return .unsupported }
                outcome = try handler.onEvent(try EventRequest(json: document), context: stepContext)
            } catch {
                guard case .failed(let message, let retryable, let outputs) = StepOutcome(error: error) else { return .fatalError }
                if retryable {
                    runtime.write(error: message, call: call)
                    return .retryableError
                }
                outcome = .complete(status: .failed, outputs: outputs, error: message)
            }
            let wire = outcome.wireForm
            runtime.write(output: wire.document, call: call)
            return wire.status
        }
    }

    private static func validateParams(_ call: OpaquePointer?, _ context: UnsafeMutableRawPointer?, _ input: bp_bytes) -> bp_status {
        dispatch(call, context, input) { runtime, handler, document, _ in
            guard let handler = handler as? any ParameterValidating else { return .unsupported }
            let errors = handler.validate(params: document["params"]?.objectValue ?? [:])
            runtime.write(output: ParamsValidation.result(errors: errors), call: call)
            return .ok
        }
    }

    private static func cleanup(_ call: OpaquePointer?, _ context: UnsafeMutableRawPointer?, _ input: bp_bytes) -> bp_status {
        dispatch(call, context, input) { runtime, handler, document, stepContext in
            do {
                guard let handler = handler as? any CleanupHandling else { return .unsupported }
                try handler.cleanup(try CleanupRequest(json: document), context: stepContext)
                return .ok
            } catch {
                runtime.write(error: String(describing: error), call: call)
                let refused = (error as? ServiceCallError)?.isRefused == true
                return error is any RetryableError && !refused ? .retryableError : .fatalError
            }
        }
    }

    /// Finds the handler for `context`, parses `input` and runs `body`; reports setup failures as FATAL_ERROR.
    private static func dispatch(
        _ call: OpaquePointer?,
        _ context: UnsafeMutableRawPointer?,
        _ input: bp_bytes,
        _ body: (PluginRuntime, any StepHandler, JSONValue, StepContext) -> CallStatus
    ) -> bp_status {
        guard let runtime = current else { return BP_STATUS_FATAL_ERROR.rawValue }
        guard let (handlers, configuration) = runtime.state.withLock({ $0 }) else {
            runtime.write(error: "the plugin was not initialised", call: call)
            return BP_STATUS_FATAL_ERROR.rawValue
        }
        let index = Int(bitPattern: context) - 1
        guard handlers.indices.contains(index) else {
            runtime.write(error: "unknown action context \(Int(bitPattern: context))", call: call)
            return BP_STATUS_FATAL_ERROR.rawValue
        }
        let document: JSONValue
        do {
            document = try JSONValue(parsing: UnsafeRawBufferPointer(start: input.ptr, count: input.len))
        } catch {
            runtime.write(error: "the host sent input that is not valid JSON: \(error)", call: call)
            return BP_STATUS_FATAL_ERROR.rawValue
        }
        let stepContext = StepContext(host: runtime.host, call: call, configuration: configuration)
        return body(runtime, handlers[index], document, stepContext).rawValue
    }

    private func write(output document: JSONValue, call: OpaquePointer?) {
        guard let writeOutput = host.pointee.write_output else { return }
        let bytes = document.serialized()
        _ = bytes.withUnsafeBufferPointer { writeOutput(call, bp_bytes(ptr: $0.baseAddress, len: $0.count)) }
    }

    private func write(error message: String, call: OpaquePointer?) {
        guard let writeError = host.pointee.write_error else { return }
        _ = withBytes(message) { writeError(call, $0) }
    }
}
