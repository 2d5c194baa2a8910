public import PluginKit

/// An event a bud service published on `budpipelineEvents`, with the fields the domain actions
/// read from it.
///
/// Two shapes arrive: the notification budmicroframe publishes (`payload.type` is the workflow
/// kind, `payload.event` the activity, `payload.content` its status, message and result) and
/// budapp's flat `workflow_completed` (`status`, `result`, `reason` at the top level).
public struct BudWorkflowEvent: Sendable, Equatable {
    /// The top-level `type`: `notification`, `workflow_completed`, or a workflow kind when the
    /// service published without subscribers.
    public var type: String
    /// `payload.type`: the workflow kind (`perform_deployment`, `performance_benchmark`, …).
    public var workflowKind: String?
    /// `payload.event`: the activity (`deploy_model`, `eta`, `results`, …).
    public var activity: String?
    /// The status, upper-cased: `payload.content.status`, or the top-level `status`.
    public var status: String?
    public var title: String?
    public var message: String?
    /// `payload.content.error`, or the flat shape's `reason`.
    public var error: String?
    /// `payload.content.result` (or `results`), or the flat shape's `result`.
    public var result: JSONObject

    public init(_ event: JSONValue) {
        type = event["type"]?.stringValue ?? "unknown"
        let payload = event["payload"]
        let content = payload?["content"]
        workflowKind = payload?["type"]?.stringValue
        activity = payload?["event"]?.stringValue
        status = (content?["status"]?.stringValue ?? event["status"]?.stringValue)?.uppercased()
        title = content?["title"]?.stringValue
        message = content?["message"]?.stringValue ?? event["message"]?.stringValue
        error = content?["error"]?.stringValue ?? event["reason"]?.stringValue
        result =
            content?["result"]?.objectValue ?? content?["results"]?.objectValue ?? event["result"]?.objectValue ?? [:]
    }

    /// Whether this is budapp's flat completion event.
    public var isWorkflowCompleted: Bool { type == "workflow_completed" }

    public var isCompleted: Bool { status == "COMPLETED" }
    public var isFailed: Bool { status == "FAILED" }
    public var isStarted: Bool { status == "STARTED" }

    /// The remaining time an `eta` event announces: its message holds minutes as a string.
    public var etaSeconds: Int? {
        guard activity == "eta", let text = message?.trimmingWhitespace, let minutes = Int(text) else { return nil }
        // More than a year says no more than a year does (the host clamps ETAs to that anyway).
        return min(max(0, minutes), 525_600) * 60
    }

    /// Why the workflow failed: the message, else the error, else `fallback`.
    public func failureReason(_ fallback: String) -> String {
        for text in [message, error] { if let text, !text.isEmpty { return text } }
        return fallback
    }

    /// Why a flat `workflow_completed` event failed: its `reason`, else `fallback`.
    public func flatFailureReason(_ fallback: String) -> String {
        guard let error, !error.isEmpty else { return fallback }
        return error
    }
}

extension String {
    fileprivate var trimmingWhitespace: String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
