/// A request a plugin makes, through the host, to another service (`invoke_service`).
///
/// It exists only with a checked ``ServiceTarget`` and method: whatever the plugin passed, an
/// invoker can send it nowhere but to the target app's method path.
public struct ServiceInvocation: Sendable, Equatable {
    /// The app and the method path under its invocation API.
    public let target: ServiceTarget
    /// HTTP method, upper case: ASCII letters only (`GET`, `POST`, `PUT`, `PATCH`, `DELETE`, …).
    public let method: String
    /// JSON request body; empty for none.
    public var body: [UInt8]
    /// How long to wait for the answer; `nil` for the invoker's default.
    public var timeout: Duration?
    /// Name of the plugin making the request.
    public var pluginName: String
    public var executionID: String?
    public var stepID: String?
    /// The W3C `traceparent` of the plugin call making the request (the server's, never the
    /// plugin's), when it has one.
    public var traceparent: String?

    /// The longest method name accepted.
    public static let maximumMethodBytes = 16

    /// Checks the target (see ``ServiceTarget``) and the method (upper-cased; 1 to
    /// ``maximumMethodBytes`` ASCII letters); throws a refusal naming the problem.
    public init(
        appID: String,
        method: String,
        path: String,
        body: [UInt8] = [],
        timeout: Duration? = nil,
        pluginName: String,
        executionID: String? = nil,
        stepID: String? = nil
    ) throws(ServiceRequestRefusal) {
        let method = method.uppercased()
        guard (1...Self.maximumMethodBytes).contains(method.utf8.count),
            method.utf8.allSatisfy({ (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) })
        else {
            throw ServiceRequestRefusal("the HTTP method is not 1 to \(Self.maximumMethodBytes) ASCII letters")
        }
        self.target = try ServiceTarget(appID: appID, path: path)
        self.method = method
        self.body = body
        self.timeout = timeout
        self.pluginName = pluginName
        self.executionID = executionID
        self.stepID = stepID
    }

    /// Target service id, e.g. `budapp`.
    public var appID: String { target.appID }

    /// Path on the target service, possibly with a query string (without a leading `/`).
    public var path: String { target.pathWithQuery }
}

/// The answer of another service.
public struct ServiceInvocationResponse: Sendable, Equatable {
    public var statusCode: Int
    public var body: [UInt8]

    public init(statusCode: Int, body: [UInt8]) {
        self.statusCode = statusCode
        self.body = body
    }
}

/// No answer arrived (connection refused, timeout, circuit open). Plugins see RETRYABLE_ERROR.
public struct ServiceInvocationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// Carries out the service calls plugins make through the host.
public protocol ServiceInvoker: Sendable {
    func invoke(_ invocation: ServiceInvocation) async throws(ServiceInvocationError) -> ServiceInvocationResponse
}
