public import PluginKit

/// A call to a bud service that did not bring back a usable answer.
public struct BudServiceError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The service that was called (its Dapr app id).
    public var app: String
    /// The HTTP status of the answer; `nil` when no answer came (refused, timed out, circuit open).
    public var statusCode: Int?
    /// The service's own explanation (`detail`, `message` or `error` of its body), or the transport's.
    public var detail: String
    /// Whether the call was never made: a path value was unusable, or the host refused the request.
    public var isRefused: Bool

    public init(app: String, statusCode: Int?, detail: String, isRefused: Bool = false) {
        self.app = app
        self.statusCode = statusCode
        self.detail = detail
        self.isRefused = isRefused
    }

    /// Whether another attempt may succeed: no answer, 408, 429 or a 5xx; never a refused call.
    public var isRetryable: Bool {
        guard !isRefused else { return false }
        guard let statusCode else { return true }
        return statusCode >= 500 || statusCode == 408 || statusCode == 429
    }

    public var description: String {
        if isRefused { return "call to \(app) not made: \(detail)" }
        if let statusCode { return "\(app) answered HTTP \(statusCode): \(detail)" }
        return "\(app) did not answer: \(detail)"
    }

    /// The step failure this error causes, its message starting with `prefix`.
    public func stepFailure(_ prefix: String, outputs: JSONObject) -> StepFailure {
        StepFailure("\(prefix): \(description)", outputs: outputs, retryable: isRetryable)
    }
}

extension StepContext {
    /// Calls a bud service and returns its JSON answer (`{}` for an empty body).
    ///
    /// Each value of `path` is one percent-encoded segment, and a value that is empty, `.` or
    /// `..` is refused before anything is sent (see ``ServicePath``). `query` items with a `nil`
    /// value are left out; keys and values are percent-encoded. A 2xx answer whose body carries
    /// `code >= 400` (budapp's error envelope) counts as that error. A refused call, here or by
    /// the host, throws an error that is not retryable.
    public func callBudService(
        _ app: String,
        _ method: String,
        _ path: ServicePath,
        query: KeyValuePairs<String, String?> = [:],
        body: JSONValue? = nil,
        timeout: Duration
    ) throws(BudServiceError) -> JSONValue {
        let encodedPath: String
        do {
            encodedPath = try path.encoded()
        } catch {
            throw BudServiceError(app: app, statusCode: nil, detail: error.description, isRefused: true)
        }
        let items = query.compactMap { key, value in
            value.map { "\(ServicePath.percentEncoded(key))=\(ServicePath.percentEncoded($0))" }
        }
        let fullPath = items.isEmpty ? encodedPath : "\(encodedPath)?\(items.joined(separator: "&"))"
        let answer: ServiceResponse
        do {
            answer = try invokeService(app, method: method, path: fullPath, body: body, timeout: timeout)
        } catch {
            throw BudServiceError(app: app, statusCode: nil, detail: error.message, isRefused: error.isRefused)
        }
        let json: JSONValue? = answer.body.isEmpty ? .object([:]) : answer.json
        let embeddedCode = json?["code"]?.intValue ?? 0
        guard answer.isSuccess, embeddedCode < 400, let json else {
            let status = answer.isSuccess && embeddedCode >= 400 ? embeddedCode : answer.statusCode
            throw BudServiceError(app: app, statusCode: status, detail: Self.explanation(json, body: answer.body))
        }
        return json
    }

    /// ``callBudService(_:_:_:query:body:timeout:)`` for a call the step cannot do without: no
    /// usable answer fails the step with `prefix: <what went wrong>` and `outputs` marked failed.
    public func requireBudService(
        _ app: String,
        _ method: String,
        _ path: ServicePath,
        query: KeyValuePairs<String, String?> = [:],
        body: JSONValue? = nil,
        timeout: Duration,
        failing prefix: String,
        outputs: JSONObject
    ) throws(StepFailure) -> JSONValue {
        do {
            return try callBudService(app, method, path, query: query, body: body, timeout: timeout)
        } catch {
            throw error.stepFailure(prefix, outputs: outputs.failed(with: error.description))
        }
    }

    /// The service's explanation of an error answer: the first of `detail`, `message` and `error`
    /// that is set, else the start of the body.
    static func explanation(_ json: JSONValue?, body: [UInt8]) -> String {
        for key in ["detail", "message", "error"] {
            switch json?[key] {
            case .string(let text)? where !text.isEmpty: return text
            case let value? where value != .null: return value.serializedString()
            default: continue
            }
        }
        let text = String(decoding: body.prefix(500), as: UTF8.self)
        return text.isEmpty ? "no explanation given" : text
    }
}
