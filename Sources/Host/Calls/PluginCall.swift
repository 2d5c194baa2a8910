internal import BudJSON
import Dispatch
internal import Logging
internal import PluginABI
public import PluginSchema
import Synchronization
internal import WorkMarks

/// What one plugin function returned, before interpretation.
public struct RawCallResult: Sendable, Equatable {
    public var status: CallStatus
    /// Everything written with `write_output`.
    public var output: [UInt8]
    /// Everything written with `write_error`.
    public var errorMessage: String
}

/// The kind of plugin function a call runs; decides which host services apply.
enum PluginCallKind: String, Sendable {
    case initialize = "init"
    case shutdown
    case execute
    case onEvent = "on_event"
    case validateParams = "validate_params"
    case cleanup
}

/// The host's side of one call into a plugin. The plugin's `bp_call *` handle stands for it until
/// the plugin function has returned (even when the host stopped waiting after a timeout); a use
/// of the handle after that is refused (``CallHandles``).
final class PluginCall: Sendable {
    let plugin: PluginServices
    let kind: PluginCallKind
    let action: String?
    let context: PluginCallContext

    private struct Buffers {
        var output: [UInt8] = []
        var error: [UInt8] = []
        var limitExceeded = false
        var abandoned = false
        /// Response bodies handed to the plugin; freed when the call object goes away.
        var responseBodies: [OwnedMemory] = []
    }

    private let buffers = Mutex(Buffers())
    private let cancelled = Atomic<Bool>(false)
    private let channelStorage = Mutex<LockedChannel?>(nil)

    /// In a plugin process: the channel to the server the call is served on.
    var channel: LockedChannel? {
        get { channelStorage.withLock { $0 } }
        set { channelStorage.withLock { $0 = newValue } }
    }

    init(plugin: PluginServices, kind: PluginCallKind, action: String?, context: PluginCallContext) {
        self.plugin = plugin
        self.kind = kind
        self.action = action
        self.context = context
    }

    deinit {
        buffers.withLock { buffers in
            for body in buffers.responseBodies { body.memory.deallocate() }
        }
    }

    /// Runs `body` with the `bp_call *` handle the plugin receives, valid until `body` returns
    /// (see ``CallHandles``); `nil` when too many calls are under way to hand out another.
    func withHandle<Result>(_ body: (OpaquePointer) -> Result) -> Result? {
        guard let handle = CallHandles.shared.register(self) else { return nil }
        defer { CallHandles.shared.unregister(handle) }
        return body(handle)
    }

    /// The call behind a handle a plugin passed back to a host service, while the call is under
    /// way; `nil` (the service refuses) for a stale or foreign handle.
    static func resolve(_ handle: OpaquePointer?, service: String) -> PluginCall? {
        CallHandles.shared.resolve(handle, service: service)
    }

    /// Runs the action's function for `kind` with `input` on the current thread; UNSUPPORTED when
    /// the plugin does not implement it.
    ///
    /// A call for a step of an execution is marked as the thread's work while it runs (see
    /// ``WorkMarks``): when the plugin kills the process, the next process knows which step did.
    func perform(_ action: PluginEntryPoints.Action, kind: PluginCallKind, input: [UInt8]) -> RawCallResult {
        guard let function = action.function(for: kind) else { return result(status: .unsupported) }
        let status = withHandle { handle in
            input.withUnsafeBufferPointer { buffer in
                WorkMarks.during(workMark) {
                    function(handle, action.context, bp_bytes(ptr: buffer.baseAddress, len: buffer.count))
                }
            }
        }
        guard let status else {
            return RawCallResult(status: .fatalError, output: [], errorMessage: "too many plugin calls are under way at once")
        }
        return result(status: CallStatus(rawValue: status))
    }

    /// What this call is, as a work mark; `nil` for calls that are not for a step.
    private var workMark: WorkMark? {
        guard let executionID = context.executionID, let stepID = context.stepID else { return nil }
        let markKind: WorkMark.Kind
        switch kind {
        case .execute: markKind = .execute
        case .onEvent: markKind = .onEvent
        case .cleanup: markKind = .cleanup
        case .initialize, .shutdown, .validateParams: return nil
        }
        return WorkMark(kind: markKind, executionID: executionID, stepIDs: [stepID], plugin: plugin.name, action: action)
    }

    /// The status and everything written so far; a result over the size limit becomes FATAL_ERROR.
    func result(status: CallStatus) -> RawCallResult {
        buffers.withLock { buffers in
            if buffers.limitExceeded {
                return RawCallResult(
                    status: .fatalError,
                    output: [],
                    errorMessage: "the plugin wrote more than the limit of \(plugin.limits.maximumOutputBytes) bytes"
                )
            }
            return RawCallResult(status: status, output: buffers.output, errorMessage: String(decoding: buffers.error, as: UTF8.self))
        }
    }

    /// The host stopped waiting: `is_cancelled` answers 1 and later writes are dropped.
    func abandon() {
        cancelled.store(true, ordering: .releasing)
        buffers.withLock { $0.abandoned = true }
    }

    /// Asks the plugin to stop early without dropping what it writes.
    func requestCancellation() {
        cancelled.store(true, ordering: .releasing)
    }

    var isCancelled: Bool { cancelled.load(ordering: .acquiring) }

    // MARK: Host services

    /// Appends to the result; going over the limit fails the whole call.
    func write(output bytes: bp_bytes) -> CallStatus {
        if bytes.len < 0 || (bytes.len > 0 && bytes.ptr == nil) { return .invalidArgument }
        return buffers.withLock { buffers in
            if buffers.abandoned { return .ok }
            guard buffers.output.count + bytes.len <= plugin.limits.maximumOutputBytes else {
                buffers.limitExceeded = true
                return .limitExceeded
            }
            buffers.output.append(contentsOf: bytes.buffer)
            return .ok
        }
    }

    /// Appends to the error message; text over the limit is cut off.
    func write(error bytes: bp_bytes) -> CallStatus {
        if bytes.len < 0 || (bytes.len > 0 && bytes.ptr == nil) { return .invalidArgument }
        return buffers.withLock { buffers in
            if buffers.abandoned { return .ok }
            let room = plugin.limits.maximumErrorBytes - buffers.error.count
            buffers.error.append(contentsOf: bytes.buffer.prefix(max(0, room)))
            return bytes.len <= room ? .ok : .limitExceeded
        }
    }

    func log(level: bp_log_level, message: bp_bytes) {
        let level = Logger.Level(pluginLevel: level)
        guard level >= plugin.logger.logLevel else { return }
        let text = LogLine.singleLine(LogLine.truncated(message.text, maximumBytes: plugin.limits.maximumLogLineBytes))
        plugin.logger.log(level: level, "\(text)", metadata: callMetadata)
    }

    /// What the host's log lines about this call carry beside the plugin's own metadata: the
    /// function called, and the action, execution and step when there are.
    private var callMetadata: Logger.Metadata {
        var metadata: Logger.Metadata = ["plugin_call": "\(kind.rawValue)"]
        if let action { metadata["action"] = "\(action)" }
        if let executionID = context.executionID { metadata["execution_id"] = "\(executionID)" }
        if let stepID = context.stepID { metadata["step_id"] = "\(stepID)" }
        return metadata
    }

    func reportProgress(_ pointer: UnsafePointer<bp_progress>?) -> CallStatus {
        guard let pointer else { return .invalidArgument }
        let declaredSize = Int(UnsafeRawPointer(pointer).load(as: UInt32.self))
        guard declaredSize >= ABILayout.progressMinimumSize else { return .invalidArgument }
        let raw = ABILayout.read(bp_progress.self, from: pointer, declaredSize: declaredSize)
        var progress = PluginProgress()
        if raw.fields & BP_PROGRESS_PERCENT.rawValue != 0 {
            guard raw.percent.isFinite, (0...100).contains(raw.percent) else { return .invalidArgument }
            progress.percent = raw.percent
        }
        if raw.fields & BP_PROGRESS_ETA.rawValue != 0 {
            guard raw.eta_seconds >= 0 else { return .invalidArgument }
            progress.etaSeconds = DurationLimits.clamp(Int(raw.eta_seconds))
        }
        if raw.fields & BP_PROGRESS_MESSAGE.rawValue != 0 {
            guard let message = raw.message.validatedText else { return .invalidArgument }
            progress.message = message
        }
        guard kind == .execute, !isCancelled else { return .ok }
        context.progressHandler?(progress)
        return .ok
    }

    func configuration(key: bp_bytes, into value: UnsafeMutablePointer<bp_bytes>?) -> CallStatus {
        guard let value, let keyText = key.validatedText else { return .invalidArgument }
        guard let bytes = plugin.configuration.value(forKey: keyText) else { return .notFound }
        value.pointee = bp_bytes(ptr: bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), len: bytes.count)
        return .ok
    }

    func invokeService(
        _ requestPointer: UnsafePointer<bp_service_request>?,
        response responsePointer: UnsafeMutablePointer<bp_service_response>?
    ) -> CallStatus {
        guard let requestPointer, let responsePointer else { return .invalidArgument }
        let requestSize = Int(UnsafeRawPointer(requestPointer).load(as: UInt32.self))
        let responseSize = Int(UnsafeRawPointer(responsePointer).load(as: UInt32.self))
        guard requestSize >= ABILayout.serviceRequestMinimumSize, responseSize >= ABILayout.serviceResponseMinimumSize
        else { return .invalidArgument }
        let request = ABILayout.read(bp_service_request.self, from: requestPointer, declaredSize: requestSize)
        guard let appID = request.app_id.validatedText, !appID.isEmpty,
            let method = request.method.validatedText, !method.isEmpty,
            let path = request.path.validatedText
        else {
            answer(responsePointer, status: 0, body: Array("app_id and method must be non-empty UTF-8, and path UTF-8".utf8))
            return .invalidArgument
        }
        guard let invoker = plugin.serviceInvoker else {
            answer(responsePointer, status: 0, body: Array("service invocation is not configured on this host".utf8))
            return .unsupported
        }
        var invocation: ServiceInvocation
        do {
            invocation = try ServiceInvocation(
                appID: appID,
                method: method,
                path: path,
                body: Array(request.body.buffer),
                timeout: request.timeout_ms == 0 ? nil : .milliseconds(Int64(request.timeout_ms)),
                pluginName: plugin.name,
                executionID: context.executionID,
                stepID: context.stepID
            )
            invocation.traceparent = context.traceparent
        } catch {
            plugin.logger.warning("service call refused", metadata: callMetadata.merging(["reason": "\(error.message)"]) { $1 })
            answer(responsePointer, status: 0, body: Array("service call refused: \(error.message)".utf8))
            return .invalidArgument
        }
        if let synchronous = invoker as? any SynchronousServiceInvoker {
            switch synchronous.invoke(invocation, for: self) {
            case .success(let response):
                answer(responsePointer, status: UInt32(clamping: response.statusCode), body: response.body)
                return .ok
            case .failure(let failure):
                answer(responsePointer, status: 0, body: Array(failure.message.utf8))
                return failure.status
            }
        }
        switch Self.waitForAnswer(from: invoker, to: invocation) {
        case .success(let response):
            answer(responsePointer, status: UInt32(clamping: response.statusCode), body: response.body)
            return .ok
        case .failure(let error):
            answer(responsePointer, status: 0, body: Array(error.message.utf8))
            return .retryableError
        }
    }

    /// Blocks this plugin thread (never an event loop) until the asynchronous invoker answers.
    static func waitForAnswer(
        from invoker: any ServiceInvoker,
        to invocation: ServiceInvocation
    ) -> Result<ServiceInvocationResponse, ServiceInvocationError> {
        let answered = DispatchSemaphore(value: 0)
        let answer = Mutex<Result<ServiceInvocationResponse, ServiceInvocationError>?>(nil)
        // Unstructured on purpose: the caller is a plugin thread, not a task; it waits for this
        // task (bounded by the invoker's own deadline) before it returns to the plugin.
        Task {
            let result: Result<ServiceInvocationResponse, ServiceInvocationError>
            do throws(ServiceInvocationError) {
                result = .success(try await invoker.invoke(invocation))
            } catch {
                result = .failure(error)
            }
            answer.withLock { $0 = result }
            answered.signal()
        }
        answered.wait()
        return answer.withLock { $0 } ?? .failure(ServiceInvocationError("the service invoker gave no answer"))
    }

    /// Copies a response body into memory the call owns and points the plugin's struct at it.
    private func answer(_ response: UnsafeMutablePointer<bp_service_response>, status: UInt32, body: [UInt8]) {
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(body.count, 1), alignment: 1)
        body.withUnsafeBytes { storage.copyMemory(from: $0) }
        buffers.withLock { $0.responseBodies.append(OwnedMemory(memory: storage)) }
        let raw = UnsafeMutableRawPointer(response)
        raw.storeBytes(of: status, toByteOffset: MemoryLayout<bp_service_response>.offset(of: \.http_status)!, as: UInt32.self)
        raw.storeBytes(
            of: bp_bytes(ptr: UnsafePointer(storage.baseAddress?.assumingMemoryBound(to: UInt8.self)), len: body.count),
            toByteOffset: MemoryLayout<bp_service_response>.offset(of: \.body)!,
            as: bp_bytes.self
        )
    }
}

/// An invoker that answers on the plugin's own thread, without the cooperative pool (a plugin
/// process sends the request to the server on the call's channel and reads the answer there).
protocol SynchronousServiceInvoker: ServiceInvoker {
    func invoke(_ invocation: ServiceInvocation, for call: PluginCall) -> Result<ServiceInvocationResponse, ServiceCallFailure>
}

/// A service call that was not carried out, and the status `invoke_service` returns for it: the
/// same ones a plugin in the server gets for the same cause.
struct ServiceCallFailure: Error, Sendable {
    var message: String
    var status: CallStatus
}

/// Memory a call allocated for the plugin to read.
///
/// `@unchecked Sendable` is safe: the call object is its only owner; it is written once before the
/// plugin sees it, never written again, and freed in the call's `deinit`.
struct OwnedMemory: @unchecked Sendable {
    let memory: UnsafeMutableRawBufferPointer
}

extension Logger.Level {
    init(pluginLevel: bp_log_level) {
        switch bp_log_level_code(rawValue: pluginLevel) {
        case BP_LOG_TRACE: self = .trace
        case BP_LOG_DEBUG: self = .debug
        case BP_LOG_INFO: self = .info
        case BP_LOG_NOTICE: self = .notice
        case BP_LOG_WARNING: self = .warning
        case BP_LOG_ERROR: self = .error
        case BP_LOG_CRITICAL: self = .critical
        default: self = .info
        }
    }
}
