import PluginKit

/// The Greeter plugin: an example written in Swift with PluginKit.
///
/// `greet` is a synchronous action; `await_approval` shows the event-driven pattern: it starts
/// waiting for an external decision and finishes when an event carrying that decision arrives.
@c(bp_plugin_entry_v1)
public func greeterPluginEntry(_ host: UnsafeRawPointer?) -> UnsafeRawPointer? {
    PluginExport.entry(host: host, manifest: greeterManifest, handlers: [Greet.self, AwaitApproval.self])
}

let greeterManifest = PluginManifest(name: "greeter", version: "1.0.0", description: "Example Swift plugin built with PluginKit.")

/// Builds a greeting in one of a few languages.
struct Greet: ParameterValidating {
    static let metadata = ActionMetadata(
        type: "greet",
        name: "Greet",
        category: "Examples",
        description: "Builds a greeting for a name in one of a few languages.",
        icon: "hand-waving",
        color: "#22c55e",
        params: [
            ParamDefinition(
                name: "name", label: "Name", type: .template, required: true, placeholder: "Ada",
                validation: ValidationRules(minLength: 1, maxLength: 200)),
            ParamDefinition(
                name: "language", label: "Language", type: .select, defaultValue: "en",
                options: [
                    SelectOption(label: "English", value: "en"), SelectOption(label: "French", value: "fr"),
                    SelectOption(label: "German", value: "de"), SelectOption(label: "Spanish", value: "es"),
                ]
            ),
            ParamDefinition(name: "excited", label: "Exclamation mark", type: .boolean, defaultValue: false),
        ],
        outputs: [
            OutputDefinition(name: "greeting", type: "string", description: "The greeting"),
            OutputDefinition(name: "length", type: "number", description: "Characters in the greeting"),
        ],
        examples: [ActionExample(title: "Greet Ada in French", params: ["name": "Ada", "language": "fr"])]
    )

    static let salutations = ["en": "Hello", "fr": "Bonjour", "de": "Hallo", "es": "Hola"]
    let defaultLanguage: String

    init(configuration: PluginConfiguration) throws {
        let language = configuration["default_language"]?.stringValue ?? "en"
        guard Self.salutations[language] != nil else {
            throw StepFailure("default_language '\(language)' is not one of: \(Self.salutations.keys.sorted().joined(separator: ", "))")
        }
        defaultLanguage = language
    }

    func execute(_ request: ExecuteRequest, context: StepContext) throws -> StepOutcome {
        let errors = validate(params: request.params)
        guard errors.isEmpty else { throw StepFailure(errors.joined(separator: "; ")) }
        let name = request.params["name"]?.stringValue ?? ""
        let language = request.params["language"]?.stringValue ?? defaultLanguage
        let excited = request.params["excited"]?.boolValue ?? false
        let greeting = "\(Self.salutations[language] ?? "Hello"), \(name)\(excited ? "!" : ".")"
        context.log(.info, "greeted \(name) in \(language)")
        context.reportProgress(percent: 100, message: "greeting ready")
        return .completed(outputs: ["greeting": .string(greeting), "length": .int(greeting.count)])
    }

    func validate(params: JSONObject) -> [String] {
        var errors: [String] = []
        switch params["name"] {
        case .string(let name) where !name.isEmpty: break
        case .string, nil, .null: errors.append("name is required")
        default: errors.append("name must be a string")
        }
        if let language = params["language"], !language.isNull {
            if let code = language.stringValue, Self.salutations[code] != nil {
            } else {
                errors.append("language must be one of: \(Self.salutations.keys.sorted().joined(separator: ", "))")
            }
        }
        return errors
    }
}

/// Waits for an approval decision delivered as an event.
///
/// The step awaits the external id `approval:<request_id>`. An event `{"type": "approval",
/// "workflow_id": "approval:<id>", "decision": "approved" | "rejected", "approver": ..., "comment": ...}`
/// finishes it; `{"type": "reminder", "workflow_id": ..., "eta_minutes": n}` updates its ETA.
struct AwaitApproval: EventHandling, CleanupHandling {
    static let metadata = ActionMetadata(
        type: "await_approval",
        name: "Await Approval",
        category: "Examples",
        description: "Pauses the step until an approval decision arrives as an event.",
        icon: "seal-check",
        color: "#a855f7",
        params: [
            ParamDefinition(name: "request_id", label: "Request id", type: .string, required: true),
            ParamDefinition(name: "approver", label: "Approver", type: .string, placeholder: "team-lead"),
            ParamDefinition(
                name: "timeout_seconds", label: "Wait at most (seconds)", type: .number, defaultValue: 3600,
                validation: ValidationRules(min: 1, max: 604_800)
            ),
        ],
        outputs: [
            OutputDefinition(name: "status", type: "string", description: "pending, approved or rejected"),
            OutputDefinition(name: "approver", type: "string"),
            OutputDefinition(name: "comment", type: "string"),
        ],
        executionMode: .eventDriven,
        timeoutSeconds: 3600,
        idempotent: true
    )

    init(configuration: PluginConfiguration) {}

    func execute(_ request: ExecuteRequest, context: StepContext) throws -> StepOutcome {
        guard let requestID = request.params["request_id"]?.stringValue, !requestID.isEmpty else {
            throw StepFailure("request_id is required")
        }
        let timeout = request.params["timeout_seconds"]?.intValue ?? 3600
        guard timeout > 0, timeout <= 31_536_000 else { throw StepFailure("timeout_seconds must be from 1 to 31536000 (a year)") }
        context.log(.info, "waiting for approval of \(requestID)")
        return .awaitingEvent(
            externalWorkflowID: "approval:\(requestID)",
            timeoutSeconds: timeout,
            outputs: ["status": "pending", "approver": request.params["approver"] ?? .null, "comment": .null]
        )
    }

    func onEvent(_ event: EventRequest, context: StepContext) throws -> EventOutcome {
        switch event.eventType {
        case "approval":
            let outputs: JSONObject = [
                "status": event.event["decision"] ?? .null,
                "approver": event.event["approver"] ?? event.stepOutputs["approver"] ?? .null,
                "comment": event.event["comment"] ?? .null,
            ]
            switch event.event["decision"]?.stringValue {
            case "approved": return .complete(status: .completed, outputs: outputs)
            case "rejected":
                let reason = event.event["comment"]?.stringValue.map { ": \($0)" } ?? ""
                return .complete(status: .failed, outputs: outputs, error: "request was rejected\(reason)")
            default:
                throw StepFailure("approval event without a decision of 'approved' or 'rejected'")
            }
        case "reminder":
            guard let minutes = event.event["eta_minutes"]?.intValue, minutes >= 0 else { return .ignore }
            let (seconds, overflow) = minutes.multipliedReportingOverflow(by: 60)
            return .updateProgress(percent: nil, etaSeconds: overflow ? Int.max : seconds, message: "approval expected in \(minutes) min")
        default:
            return .ignore
        }
    }

    func cleanup(_ request: CleanupRequest, context: StepContext) throws {
        context.log(.notice, "approval \(request.externalWorkflowID ?? "?") abandoned (\(request.reason.rawValue))")
    }
}
