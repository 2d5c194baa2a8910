public import BudJSON
internal import PluginABI

/// The host services available during one call: logging, progress, service calls, cancellation.
///
/// Valid only until the handler method that received it returns — do not store it. It may be used
/// from other threads during that time.
///
/// `@unchecked Sendable` is safe: it holds the host's service table, which is immutable and valid
/// while the plugin is loaded, and the call handle, whose functions the ABI makes thread-safe for
/// the duration of the call.
public struct StepContext: @unchecked Sendable {
    let host: UnsafePointer<bp_host_api_v1>
    let call: OpaquePointer?

    /// The plugin's configuration.
    public let configuration: PluginConfiguration

    init(host: UnsafePointer<bp_host_api_v1>, call: OpaquePointer?, configuration: PluginConfiguration) {
        self.host = host
        self.call = call
        self.configuration = configuration
    }

    /// Severity of a log line.
    public enum LogLevel: UInt32, Sendable {
        case trace = 0, debug, info, notice, warning, error, critical
    }

    /// Writes a log line attributed to this plugin, action and step.
    public func log(_ level: LogLevel, _ message: String) {
        guard let log = host.pointee.log else { return }
        withBytes(message) { log(call, level.rawValue, $0) }
    }

    /// Reports how far the step is. Returns false when the host rejected the report (a percent
    /// outside 0...100 or a negative ETA).
    @discardableResult
    public func reportProgress(percent: Double? = nil, etaSeconds: Int? = nil, message: String? = nil) -> Bool {
        guard let report = host.pointee.report_progress else { return false }
        var progress = bp_progress()
        progress.struct_size = UInt32(MemoryLayout<bp_progress>.size)
        if let percent {
            progress.fields |= BP_PROGRESS_PERCENT.rawValue
            progress.percent = percent
        }
        if let etaSeconds {
            progress.fields |= BP_PROGRESS_ETA.rawValue
            progress.eta_seconds = Int64(etaSeconds)
        }
        let text = message ?? ""
        if message != nil { progress.fields |= BP_PROGRESS_MESSAGE.rawValue }
        return withBytes(text) { bytes in
            progress.message = bytes
            return report(call, &progress) == BP_STATUS_OK.rawValue
        }
    }

    /// Whether the host stopped waiting for this call (timeout or cancellation). Long work should
    /// check it and return early.
    public var isCancelled: Bool {
        host.pointee.is_cancelled?(call) == 1
    }

    /// Calls another service through the host and waits for its answer.
    ///
    /// Any HTTP status is an answer; check ``ServiceResponse/statusCode``. Throws
    /// ``ServiceCallError`` (a ``RetryableError``) when no answer arrived or the host cannot
    /// invoke services, and one marked ``ServiceCallError/isRefused`` when the host refused the
    /// request: `path` must stay under the app's method path — no `.`, `..` or empty segments,
    /// no fragment, backslash or control character, not even percent-encoded.
    public func invokeService(
        _ appID: String,
        method: String = "POST",
        path: String,
        body: JSONValue? = nil,
        timeout: Duration? = nil
    ) throws(ServiceCallError) -> ServiceResponse {
        guard let invoke = host.pointee.invoke_service else {
            throw ServiceCallError(message: "this host does not offer service invocation")
        }
        let bodyBytes = body?.serialized() ?? []
        var response = bp_service_response()
        response.struct_size = UInt32(MemoryLayout<bp_service_response>.size)
        let status = withBytes(appID) { appIDBytes in
            withBytes(method) { methodBytes in
                withBytes(path) { pathBytes in
                    bodyBytes.withUnsafeBufferPointer { bodyBuffer in
                        var request = bp_service_request()
                        request.struct_size = UInt32(MemoryLayout<bp_service_request>.size)
                        request.timeout_ms = timeout.map(Self.milliseconds) ?? 0
                        request.app_id = appIDBytes
                        request.method = methodBytes
                        request.path = pathBytes
                        request.body = bp_bytes(ptr: bodyBuffer.baseAddress, len: bodyBuffer.count)
                        return invoke(call, &request, &response)
                    }
                }
            }
        }
        let answer = response.body.ptr.map { Array(UnsafeBufferPointer(start: $0, count: response.body.len)) } ?? []
        guard status == BP_STATUS_OK.rawValue else {
            let refused = status == BP_STATUS_INVALID_ARGUMENT.rawValue
            let message = String(decoding: answer, as: UTF8.self)
            throw ServiceCallError(
                message: message.isEmpty && refused ? "the host refused the call as malformed" : message, isRefused: refused)
        }
        return ServiceResponse(statusCode: Int(response.http_status), body: answer)
    }

    private static func milliseconds(_ duration: Duration) -> UInt32 {
        let (seconds, attoseconds) = duration.components
        return UInt32(clamping: max(1, seconds * 1000 + attoseconds / 1_000_000_000_000_000))
    }
}

/// The answer of a service called through the host.
public struct ServiceResponse: Sendable, Equatable {
    public var statusCode: Int
    public var body: [UInt8]

    /// Whether the status is 2xx.
    public var isSuccess: Bool { (200..<300).contains(statusCode) }

    /// The body as JSON; `nil` when it is empty or not JSON.
    public var json: JSONValue? {
        body.isEmpty ? nil : try? JSONValue(parsing: body)
    }

    public init(statusCode: Int, body: [UInt8]) {
        self.statusCode = statusCode
        self.body = body
    }
}

/// No answer came from the called service (connection refused, timed out, circuit open, not
/// configured), or the host refused to make the call.
///
/// A call the host refused to make (``isRefused``: a malformed request, or an app id or path it
/// does not allow) fails the step without a retry, even though the type is a ``RetryableError``:
/// the same request would be refused again.
public struct ServiceCallError: RetryableError, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    /// Whether the host refused to make the call (`BP_STATUS_INVALID_ARGUMENT`), rather than no
    /// answer arriving.
    public var isRefused = false

    public var description: String { message }
}

/// Calls `body` with the UTF-8 bytes of `text`, valid during the call.
func withBytes<Result>(_ text: String, _ body: (bp_bytes) -> Result) -> Result {
    var text = text
    return text.withUTF8 { buffer in body(bp_bytes(ptr: buffer.baseAddress, len: buffer.count)) }
}
