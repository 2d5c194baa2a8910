public import BudJSON

/// How one `execute` call ended.
public enum StepOutcome: Sendable, Equatable {
    /// The step finished.
    case completed(outputs: JSONObject)
    /// The step started external work; an event carrying `externalWorkflowID` will finish it.
    /// `timeoutSeconds` bounds the wait (the host's default when `nil`).
    case awaitingEvent(externalWorkflowID: String, timeoutSeconds: Int? = nil, outputs: JSONObject = [:])
    /// The step failed; `retryable` says whether another attempt may succeed.
    case failed(message: String, retryable: Bool = false, outputs: JSONObject = [:])

    /// Interprets what an `execute` function returned: its status, result document and error text.
    ///
    /// An empty `output` means an empty result. Throws when the document is malformed or does not fit
    /// the status (AWAIT_EVENT without `external_workflow_id`, an undefined status value).
    public init(status: CallStatus, output: [UInt8], errorMessage: String) throws(SchemaError) {
        let document = try Self.parseResultDocument(output)
        let reader = try ObjectReader(document, path: "result")
        let outputs = try reader.objectMember("outputs") ?? [:]
        switch status {
        case .ok:
            self = .completed(outputs: outputs)
        case .awaitEvent:
            guard let externalID = try reader.string("external_workflow_id"), !externalID.isEmpty else {
                throw SchemaError("returned AWAIT_EVENT without result.external_workflow_id")
            }
            guard externalID.unicodeScalars.count <= 255 else {
                throw SchemaError("returned AWAIT_EVENT with a result.external_workflow_id longer than 255 characters")
            }
            let timeout = try reader.int("timeout_seconds")
            if let timeout, timeout <= 0 || timeout > DurationLimits.maximumSeconds {
                throw SchemaError(
                    "returned AWAIT_EVENT with result.timeout_seconds \(timeout); it must be positive and at most \(DurationLimits.maximumSeconds)"
                )
            }
            self = .awaitingEvent(externalWorkflowID: externalID, timeoutSeconds: timeout, outputs: outputs)
        case .retryableError, .fatalError:
            let message = errorMessage.isEmpty ? "step failed with \(status) and no message" : errorMessage
            self = .failed(message: message, retryable: status == .retryableError, outputs: outputs)
        default:
            throw SchemaError("returned status \(status), which execute may not return")
        }
    }

    /// The status, result document and error text that express this outcome over the ABI.
    public var wireForm: (status: CallStatus, document: JSONValue, errorMessage: String?) {
        switch self {
        case .completed(let outputs):
            (.ok, ["outputs": .object(outputs)], nil)
        case .awaitingEvent(let externalID, let timeout, let outputs):
            (
                .awaitEvent,
                [
                    "outputs": .object(outputs), "external_workflow_id": .string(externalID),
                    "timeout_seconds": timeout.map(JSONValue.int) ?? .null,
                ],
                nil
            )
        case .failed(let message, let retryable, let outputs):
            (retryable ? .retryableError : .fatalError, ["outputs": .object(outputs)], message)
        }
    }

    static func parseResultDocument(_ output: [UInt8]) throws(SchemaError) -> JSONValue {
        if output.isEmpty { return .object([:]) }
        do {
            return try JSONValue(parsing: output)
        } catch {
            throw SchemaError("wrote a result that is not valid JSON: \(error)")
        }
    }
}
