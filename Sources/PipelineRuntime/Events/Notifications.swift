public import BudJSON
import Foundation
public import PipelineEngine
import PluginSchema
public import Storage

/// Who hears about an execution's events, from its stored options.
public struct NotificationAudience: Sendable, Equatable {
    public var executionID: ExecutionID
    /// The execution's `callback_topics`.
    public var callbackTopics: [String]
    /// When set, every event also goes to the notification service's topic.
    public var subscriberIDs: String?
    /// `payload.type`; `pipeline_execution` by default.
    public var payloadType: String?
    /// `payload.workflow_id`; the execution id by default.
    public var notificationWorkflowID: String?

    public init(
        executionID: ExecutionID, callbackTopics: [String], subscriberIDs: String? = nil, payloadType: String? = nil,
        notificationWorkflowID: String? = nil
    ) {
        self.executionID = executionID
        self.callbackTopics = callbackTopics
        self.subscriberIDs = subscriberIDs
        self.payloadType = payloadType
        self.notificationWorkflowID = notificationWorkflowID
    }

    /// Whether an execution with these options may have a topic to publish to: callback topics,
    /// or subscribers. Whether subscribers get notified is the publishing process's setting
    /// (its notification topic), so the writing process's own setting decides nothing here.
    public static func mayHaveTopics(callbackTopics: [String], subscriberIDs: String?) -> Bool {
        !callbackTopics.isEmpty || subscriberIDs?.isEmpty == false
    }

    /// The topics an event goes to: the callback topics, then `notifyTopic` when the execution has
    /// subscribers (budnotify requires `subscriber_ids`).
    public func topics(notifyTopic: String?) -> [String] {
        var topics = callbackTopics
        if let notifyTopic, !notifyTopic.isEmpty, subscriberIDs?.isEmpty == false, !topics.contains(notifyTopic) {
            topics.append(notifyTopic)
        }
        return topics
    }
}

/// The notifications budapp and budnotify accept, made from the events transitions write to the
/// outbox. Their top-level keys are exactly `notification_type`, `name`, `subscriber_ids`,
/// `payload`, `source` and `source_topic`: both consumers reject unknown ones, so extras go inside
/// `payload.content.result` (docs/compatibility.md, "Events out").
public enum Notifications {
    /// The event types that make notifications; ``make(for:audience:)`` makes none for others.
    public static let notifiedEventTypes: Set<String> = [
        "step_started", "step_completed", "step_failed", "workflow_progress", "workflow_completed", "workflow_failed",
        "workflow_cancelled",
    ]

    /// The notifications for one outbox event, without `source_topic` (added per topic). Empty for
    /// events clients are not told about (execution started, step skipped, retrying, awaiting).
    public static func make(for event: OutboxEvent, audience: NotificationAudience) -> [JSONObject] {
        let fields = event.payload.objectValue ?? [:]
        let stepID = fields["step_id"]?.stringValue ?? ""
        let stepName = fields["step_name"]?.stringValue ?? stepID
        let pipelineTitle = "Pipeline Execution"
        switch event.eventType {
        case "step_started":
            return [
                notification(
                    audience, event: stepID, title: stepName, status: "STARTED", message: "Step '\(stepName)' started",
                    result: ["sequence_number": fields["sequence_number"] ?? .null])
            ]
        case "step_completed":
            var result: JSONObject = ["progress_percentage": 100.0]
            if let duration = fields["duration_seconds"], duration != .null { result["duration_seconds"] = duration }
            return [
                notification(
                    audience, event: stepID, title: stepName, status: "COMPLETED", message: "Step '\(stepName)' completed", result: result)
            ]
        case "step_failed":
            let error = fields["error"]?.stringValue ?? "Step '\(stepName)' failed"
            return [notification(audience, event: stepID, title: stepName, status: "FAILED", message: error, result: [:])]
        case "workflow_progress":
            let percent = fields["progress"]?.doubleValue ?? 0
            var made = [
                notification(
                    audience, event: "progress", title: pipelineTitle, status: "RUNNING",
                    message: "Progress: \(String(format: "%.1f", percent))%", result: ["progress_percentage": .double(percent)])
            ]
            if let stored = fields["eta_seconds"]?.intValue {
                let eta = DurationLimits.clamp(stored)
                let minutes = (eta + 59) / 60
                made.append(
                    notification(
                        audience, event: "eta", title: pipelineTitle, status: "RUNNING", message: String(minutes),
                        result: ["eta_seconds": .int(eta)]))
            }
            return made
        case "workflow_completed":
            var result: JSONObject = ["success": true]
            if let outputs = fields["step_outputs"]?.objectValue, !outputs.isEmpty { result["outputs"] = .object(outputs) }
            return [
                notification(
                    audience, event: "results", title: pipelineTitle, status: "COMPLETED", message: "Pipeline execution completed",
                    result: result)
            ]
        case "workflow_failed", "workflow_cancelled":
            let message = fields["error"]?.stringValue ?? fields["reason"]?.stringValue ?? "Pipeline execution failed"
            var result: JSONObject = ["success": false]
            if event.eventType == "workflow_cancelled" { result["cancelled"] = true }
            return [notification(audience, event: "results", title: pipelineTitle, status: "FAILED", message: message, result: result)]
        default:
            return []
        }
    }

    /// `notification` as sent to `topic`.
    public static func addressed(_ notification: JSONObject, to topic: String) -> JSONObject {
        var addressed = notification
        addressed["source_topic"] = .string(topic)
        return addressed
    }

    private static func notification(
        _ audience: NotificationAudience, event: String, title: String, status: String, message: String, result: JSONObject
    ) -> JSONObject {
        var content: JSONObject = ["title": .string(title), "message": .string(message), "status": .string(status)]
        if !result.isEmpty { content["result"] = .object(result) }
        let workflowID = audience.notificationWorkflowID.flatMap { $0.isEmpty ? nil : $0 } ?? audience.executionID.rawValue
        return [
            "notification_type": "event",
            "name": "bud-notification",
            "subscriber_ids": audience.subscriberIDs.map(JSONValue.string) ?? .null,
            "payload": [
                "category": "internal",
                "type": .string(audience.payloadType.flatMap { $0.isEmpty ? nil : $0 } ?? "pipeline_execution"),
                "event": .string(event),
                "workflow_id": .string(workflowID),
                "source": "budpipeline",
                "content": .object(content),
            ],
            "source": "budpipeline",
        ]
    }
}
