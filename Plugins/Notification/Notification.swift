import BudServices
import PluginKit

/// The Notification plugin: the `notification` action sends a message to people through budnotify.
@c(bp_plugin_entry_v1)
public func notificationPluginEntry(_ host: UnsafeRawPointer?) -> UnsafeRawPointer? {
    PluginExport.entry(host: host, manifest: notificationManifest, handlers: [SendNotification.self])
}

let notificationManifest = PluginManifest(
    name: "notification", version: "1.0.0", description: "Sends notifications through budnotify (email, Slack, Teams, webhook).")

/// Sends one notification through the host's service invocation to budnotify's `notifications`
/// route, in the request shape budnotify accepts (`notification_type`, `name`, `subscriber_ids`,
/// `payload`), so that its Novu workflow delivers it on the chosen channel.
///
/// It calls budnotify directly rather than publishing to a `notifications` topic, which nothing
/// subscribes to (docs/notification-plugin.md). Configuration: `budnotify_app_id` (`budnotify`),
/// `novu_workflow` (`bud-notification`).
struct SendNotification: ParameterValidating {
    static let channels = ["email", "slack", "teams", "webhook"]
    static let severities = ["info", "warning", "error", "critical"]

    static let metadata = ActionMetadata(
        type: "notification",
        name: "Send Notification",
        category: "Integration",
        description: "Sends a notification by email, Slack, Teams or webhook through budnotify.",
        icon: "bell",
        color: "#F59E0B",
        params: [
            ParamDefinition(
                name: "channel", label: "Channel", type: .select, required: true,
                options: channels.map { SelectOption(label: $0.prefix(1).uppercased() + $0.dropFirst(), value: $0) }),
            ParamDefinition(name: "title", label: "Title", type: .string, defaultValue: "Workflow Notification"),
            ParamDefinition(
                name: "message", label: "Message", type: .template, description: "The text; may use templates.", required: true,
                placeholder: "Deployment {{ steps.deploy.outputs.endpoint_name }} is ready"),
            ParamDefinition(
                name: "severity", label: "Severity", type: .select, defaultValue: "info",
                options: severities.map { SelectOption(label: $0.prefix(1).uppercased() + $0.dropFirst(), value: $0) }),
            ParamDefinition(
                name: "recipients", label: "Recipients", type: .json,
                description: "User ids (a list or a comma-separated string); default: the execution's owner"),
            ParamDefinition(name: "metadata", label: "Metadata", type: .json, description: "Extra fields delivered with the message"),
        ],
        outputs: [
            OutputDefinition(name: "sent", type: "boolean", description: "Whether budnotify accepted the notification"),
            OutputDefinition(name: "notification_id", type: "string", description: "<execution id>-<step id>"),
            OutputDefinition(name: "recipients", type: "array", description: "Who it was sent to"),
        ],
        timeoutSeconds: 30,
        idempotent: false,
        requiredServices: ["budnotify"],
        examples: [
            ActionExample(
                title: "Tell the requester", params: ["channel": "email", "message": "Your model is deployed", "severity": "info"])
        ]
    )

    let appID: String
    let novuWorkflow: String

    init(configuration: PluginConfiguration) {
        appID = configuration["budnotify_app_id"]?.stringValue ?? "budnotify"
        novuWorkflow = configuration["novu_workflow"]?.stringValue ?? "bud-notification"
    }

    func validate(params: JSONObject) -> [String] {
        var problems: [String] = []
        let channel = params["channel"]?.stringValue ?? ""
        if channel.isEmpty {
            problems.append("channel is required")
        } else if !Self.channels.contains(channel) {
            problems.append("channel must be one of: \(Self.channels.joined(separator: ", "))")
        }
        if (params["message"]?.stringValue ?? "").isEmpty { problems.append("message is required") }
        if let severity = params["severity"]?.stringValue, !Self.severities.contains(severity) {
            problems.append("severity must be one of: \(Self.severities.joined(separator: ", "))")
        }
        if let recipients = params["recipients"], Self.recipients(recipients) == nil {
            problems.append("recipients must be a list of user ids or a comma-separated string")
        }
        if let metadata = params["metadata"], metadata != .null, metadata.objectValue == nil {
            problems.append("metadata must be an object")
        }
        return problems
    }

    func execute(_ request: ExecuteRequest, context: StepContext) throws -> StepOutcome {
        let problems = validate(params: request.params)
        let notificationID = "\(request.executionID)-\(request.stepID)"
        let failureOutputs: JSONObject = ["sent": false, "notification_id": .string(notificationID), "recipients": []]
        guard problems.isEmpty else { throw StepFailure(problems.joined(separator: "; "), outputs: failureOutputs) }
        var recipients = request.params["recipients"].flatMap(Self.recipients) ?? []
        if recipients.isEmpty, let user = request.userID, !user.isEmpty { recipients = [user] }
        guard !recipients.isEmpty else {
            throw StepFailure("no recipients: give recipients or run the pipeline with a user_id", outputs: failureOutputs)
        }
        let severity = request.params["severity"]?.stringValue ?? "info"
        var metadata = request.params["metadata"]?.objectValue ?? [:]
        metadata["source"] = "budpipeline"
        metadata["workflow_execution_id"] = .string(request.executionID)
        metadata["step_id"] = .string(request.stepID)
        let body: JSONValue = [
            "notification_type": "event",
            "name": .string(novuWorkflow),
            "subscriber_ids": .array(recipients.map(JSONValue.string)),
            "payload": [
                "category": "internal",
                "type": "pipeline_notification",
                "event": "notification",
                "workflow_id": .string(request.executionID),
                "source": "budpipeline",
                "content": [
                    "title": .string(request.params["title"]?.stringValue ?? "Workflow Notification"),
                    "message": .string(request.params["message"]?.stringValue ?? ""),
                    "status": .string(severity == "error" || severity == "critical" ? "FAILED" : "COMPLETED"),
                    "result": [
                        "notification_id": .string(notificationID), "channel": request.params["channel"] ?? .null,
                        "severity": .string(severity), "metadata": .object(metadata),
                    ],
                ],
            ],
        ]
        do throws(BudServiceError) {
            _ = try context.callBudService(appID, "POST", "notifications", body: body, timeout: .seconds(10))
        } catch {
            throw error.stepFailure("Failed to send notification", outputs: failureOutputs)
        }
        context.log(
            .info,
            "notification \(notificationID) sent to \(recipients.count) recipient(s) by \(request.params["channel"]?.stringValue ?? "")")
        return .completed(outputs: [
            "sent": true, "notification_id": .string(notificationID), "recipients": .array(recipients.map(JSONValue.string)),
        ])
    }

    /// User ids from a list or a comma-separated string; `nil` for anything else.
    static func recipients(_ value: JSONValue) -> [String]? {
        switch value {
        case .null: return []
        case .string(let text): return text.split(separator: ",").map { String($0.filter { !$0.isWhitespace }) }.filter { !$0.isEmpty }
        case .array(let items):
            let ids = items.compactMap(\.stringValue)
            return ids.count == items.count ? ids.filter { !$0.isEmpty } : nil
        default: return nil
        }
    }
}
