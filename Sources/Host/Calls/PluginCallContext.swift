/// Who a plugin call is for: the ids that go into its log lines and where its progress reports go.
public struct PluginCallContext: Sendable {
    public var executionID: String?
    public var stepID: String?
    /// The W3C `traceparent` of the call's span: the parent of the spans of the service calls the
    /// plugin makes, and what they pass on.
    public var traceparent: String?
    /// Receives `report_progress` calls of an `execute` call, on the plugin's thread.
    public var progressHandler: (@Sendable (PluginProgress) -> Void)?

    public init(
        executionID: String? = nil,
        stepID: String? = nil,
        progressHandler: (@Sendable (PluginProgress) -> Void)? = nil
    ) {
        self.executionID = executionID
        self.stepID = stepID
        self.progressHandler = progressHandler
    }
}

/// A progress report a plugin made while executing a step.
public struct PluginProgress: Sendable, Equatable {
    /// 0...100, when reported.
    public var percent: Double?
    /// Estimated seconds left, when reported.
    public var etaSeconds: Int?
    public var message: String?

    public init(percent: Double? = nil, etaSeconds: Int? = nil, message: String? = nil) {
        self.percent = percent
        self.etaSeconds = etaSeconds
        self.message = message
    }
}
