public import PluginKit

/// A call to a bud service that did not bring back a usable answer.
public struct BudServiceError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The service that was called (its Dapr app id).
    public var app: String
    /// The HTTP status of the answer; `nil` when no answer came (refused, timed out, circuit open).
    public var statusCode: Int?
    /// The service's own explanation (`detail`, `message` or `error` of its body), or the transport's.
    public var detail: String

    public init(app: String, statusCode: Int?, detail: String) {
        self.app = app
        self.statusCode = statusCode
        self.detail = detail
    }

    /// Whether another attempt may succeed: no answer, 408, 429 or a 5xx.
    public var isRetryable: Bool {
        guard let statusCode else { return true }
        return statusCode >= 500 || statusCode == 408 || statusCode == 429
    }

    public var description: String {
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
    /// `query` items with a `nil` value are left out; values are percent-encoded. A 2xx answer
    /// whose body carries `code >= 400` (budapp's error envelope) counts as that error.
    public func callBudService(
        _ app: String,
        _ method: String,
        _ path: String,
        query: KeyValuePairs<String, String?> = [:],
        body: JSONValue? = nil,
        timeout: Duration
    ) throws(BudServiceError) -> JSONValue {
        let items = query.compactMap { key, value in value.map { "\(key)=\(Self.percentEncoded($0))" } }
        let fullPath = items.isEmpty ? path : "\(path)?\(items.joined(separator: "&"))"
        let answer: ServiceResponse
        do {
            answer = try invokeService(app, method: method, path: fullPath, body: body, timeout: timeout)
        } catch {
            throw BudServiceError(app: app, statusCode: nil, detail: error.message)
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
        _ path: String,
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

    /// The service's explanation of an error answer, as the reference reads it.
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

    /// `text` with everything but RFC 3986 unreserved characters percent-encoded.
    static func percentEncoded(_ text: String) -> String {
        var encoded = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                encoded += "%" + String(decoding: [hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]], as: UTF8.self)
            }
        }
        return encoded
    }
}
