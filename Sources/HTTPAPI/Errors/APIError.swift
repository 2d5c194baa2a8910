public import BudJSON
public import Hummingbird

/// An error the API answers with: an HTTP status and a JSON body whose `detail` is what budapp and
/// the SDK read, next to a stable `code` and a plain `message`.
///
/// ```json
/// {"detail": "Pipeline not found: 6f1c…", "code": "PIPELINE_NOT_FOUND", "message": "Pipeline not found: 6f1c…"}
/// ```
public struct APIError: HTTPResponseError, Sendable, Equatable, CustomStringConvertible {
    public let status: HTTPResponse.Status
    /// Stable, machine-readable: `PIPELINE_NOT_FOUND`, `VALIDATION_FAILED`, …
    public let code: String
    public let message: String
    /// The `detail` value budapp and the SDK read: a string, or an object such as
    /// `{"error": "Validation failed", "errors": [...]}`.
    public let detail: JSONValue
    /// Headers the answer carries besides its content type (`Allow`, `WWW-Authenticate`, …).
    public let headers: HTTPFields

    public init(_ status: HTTPResponse.Status, code: String, message: String, detail: JSONValue? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail ?? .string(message)
        self.headers = headers
    }

    public var description: String { "\(status.code) \(code): \(message)" }

    public var body: JSONValue { ["detail": detail, "code": .string(code), "message": .string(message)] }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = JSONResponse(body, status: status).response()
        response.headers.append(contentsOf: headers)
        return response
    }
}

extension APIError {
    /// A request the framework's schema checks reject (FastAPI's 422): `detail` lists each problem
    /// with where it is (`loc`), what is wrong (`msg`) and its kind (`type`).
    static func unprocessable(_ problems: [RequestProblem]) -> APIError {
        let message = problems.map { problem in
            let location = problem.location.map { $0.stringValue ?? $0.serializedString() }.joined(separator: ".")
            return "\(location): \(problem.message)"
        }.joined(separator: "; ")
        return APIError(
            .unprocessableContent, code: "REQUEST_INVALID", message: message,
            detail: .array(problems.map(\.json)))
    }

    static func unprocessable(_ location: [JSONValue], _ message: String, type: String) -> APIError {
        unprocessable([RequestProblem(location: location, message: message, type: type)])
    }

    static func pipelineNotFound(_ id: String) -> APIError {
        APIError(.notFound, code: "PIPELINE_NOT_FOUND", message: "Pipeline not found: \(id)")
    }

    /// The execution 404: `detail.error` holds `code: NOT_FOUND` and the message, as clients check,
    /// and a string `detail.message`, which budapp's error builder reads first (it fails on the object).
    static func executionNotFound(_ id: String, correlationID: String?) -> APIError {
        let message = "Execution \(id) not found"
        return APIError(
            .notFound, code: "EXECUTION_NOT_FOUND", message: message,
            detail: [
                "error": ["code": "NOT_FOUND", "message": .string(message)],
                "message": .string(message),
                "correlation_id": correlationID.map(JSONValue.string) ?? .null,
            ])
    }

    static func validationFailed(_ errors: [String], title: String = "Validation failed", code: String = "VALIDATION_FAILED") -> APIError {
        APIError(
            .badRequest, code: code, message: "\(title): \(errors.joined(separator: "; "))",
            detail: ["error": .string(title), "errors": .array(errors.map(JSONValue.string))])
    }
}

/// One problem with a request, located like FastAPI locates it: `["body", "dag"]`, `["query", "page"]`.
struct RequestProblem: Sendable, Equatable {
    var location: [JSONValue]
    var message: String
    var type: String

    var json: JSONValue {
        ["loc": .array(location), "msg": .string(message), "type": .string(type)]
    }
}
