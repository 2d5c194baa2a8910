/// A request a plugin makes, through the host, to another service (`invoke_service`).
public struct ServiceInvocation: Sendable, Equatable {
    /// Target service id, e.g. `budapp`.
    public var appID: String
    /// HTTP method, upper case.
    public var method: String
    /// Path on the target service, possibly with a query string.
    public var path: String
    /// JSON request body; empty for none.
    public var body: [UInt8]
    /// How long to wait for the answer; `nil` for the invoker's default.
    public var timeout: Duration?
    /// Name of the plugin making the request.
    public var pluginName: String
    public var executionID: String?
    public var stepID: String?

    public init(
        appID: String,
        method: String,
        path: String,
        body: [UInt8] = [],
        timeout: Duration? = nil,
        pluginName: String,
        executionID: String? = nil,
        stepID: String? = nil
    ) {
        self.appID = appID
        self.method = method
        self.path = path
        self.body = body
        self.timeout = timeout
        self.pluginName = pluginName
        self.executionID = executionID
        self.stepID = stepID
    }
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
