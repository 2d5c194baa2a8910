public import BudJSON

/// The status a step ends with when an event completes it.
public enum StepCompletionStatus: String, Sendable, CaseIterable {
    case completed = "COMPLETED"
    case failed = "FAILED"
    case timeout = "TIMEOUT"
}

/// What an `on_event` call decided about the event.
public enum EventOutcome: Sendable, Equatable {
    /// The event finishes the step. `outputs` are merged over the step's stored outputs.
    case complete(status: StepCompletionStatus, outputs: JSONObject = [:], error: String? = nil)
    /// The event reports progress (percent 0...100) and/or a new estimate of the time left.
    case updateProgress(percent: Double?, etaSeconds: Int?, message: String? = nil)
    /// The event does not concern the step.
    case ignore

    /// Interprets what an `on_event` function returned.
    ///
    /// FATAL_ERROR completes the step as FAILED with the error text; UNSUPPORTED means the plugin
    /// does not handle events and yields ``ignore``. RETRYABLE_ERROR is not an outcome: the caller
    /// should deliver the event again later, so this initializer throws for it like for any other
    /// status `on_event` may not return.
    public init(status: CallStatus, output: [UInt8], errorMessage: String) throws(SchemaError) {
        let document = try StepOutcome.parseResultDocument(output)
        let reader = try ObjectReader(document, path: "result")
        switch status {
        case .ok:
            self = try Self.decode(reader)
        case .fatalError:
            let message = errorMessage.isEmpty ? "on_event failed with FATAL_ERROR and no message" : errorMessage
            self = .complete(status: .failed, outputs: try reader.objectMember("outputs") ?? [:], error: message)
        case .unsupported:
            self = .ignore
        default:
            throw SchemaError("returned status \(status), which on_event may not return")
        }
    }

    private static func decode(_ reader: ObjectReader) throws(SchemaError) -> EventOutcome {
        switch try reader.string("action") {
        case "complete":
            let statusName = try reader.string("status") ?? StepCompletionStatus.completed.rawValue
            guard let status = StepCompletionStatus(rawValue: statusName.uppercased()) else {
                throw SchemaError("result.status '\(statusName)' must be COMPLETED, FAILED or TIMEOUT")
            }
            return .complete(
                status: status,
                outputs: try reader.objectMember("outputs") ?? [:],
                error: try reader.string("error")
            )
        case "update_progress":
            let percent = try reader.double("progress")
            let eta = try reader.int("eta_seconds")
            guard percent != nil || eta != nil else {
                throw SchemaError("result of update_progress needs progress or eta_seconds")
            }
            if let percent, !(0...100).contains(percent) {
                throw SchemaError("result.progress \(percent) is outside 0...100")
            }
            if let eta, eta < 0 { throw SchemaError("result.eta_seconds \(eta) is negative") }
            // An estimate beyond the bound of every duration says no more than the bound does.
            return .updateProgress(
                percent: percent, etaSeconds: eta.map(DurationLimits.clamp), message: try reader.string("message"))
        case "ignore", nil:
            return .ignore
        case let other?:
            throw SchemaError("result.action '\(other)' must be complete, update_progress or ignore")
        }
    }

    /// The status, result document and error text that express this outcome over the ABI.
    public var wireForm: (status: CallStatus, document: JSONValue) {
        switch self {
        case .complete(let status, let outputs, let error):
            var object: JSONObject = ["action": "complete", "status": .string(status.rawValue), "outputs": .object(outputs)]
            object.setIfPresent("error", error.map(JSONValue.string))
            return (.ok, .object(object))
        case .updateProgress(let percent, let eta, let message):
            var object: JSONObject = ["action": "update_progress"]
            object.setIfPresent("progress", percent.map(JSONValue.double))
            object.setIfPresent("eta_seconds", eta.map(JSONValue.int))
            object.setIfPresent("message", message.map(JSONValue.string))
            return (.ok, .object(object))
        case .ignore:
            return (.ok, ["action": "ignore"])
        }
    }
}
