public import BudJSON

/// Reads what a `validate_params` function returned: `{"errors": ["...", ...]}`.
public enum ParamsValidation {
    /// The input document of `validate_params`.
    public static func request(params: JSONObject) -> JSONValue {
        ["params": .object(params)]
    }

    /// The error messages in a `validate_params` result; empty when the parameters are valid.
    public static func errors(status: CallStatus, output: [UInt8], errorMessage: String) throws(SchemaError) -> [String] {
        switch status {
        case .ok:
            let reader = try ObjectReader(try StepOutcome.parseResultDocument(output), path: "result")
            return try reader.stringArray("errors") ?? []
        case .unsupported:
            return []
        case .fatalError, .retryableError:
            return ["Validation error: \(errorMessage.isEmpty ? "validate_params failed with \(status)" : errorMessage)"]
        default:
            throw SchemaError("returned status \(status), which validate_params may not return")
        }
    }

    /// The result document of `validate_params`.
    public static func result(errors: [String]) -> JSONValue {
        ["errors": .array(errors.map(JSONValue.string))]
    }
}
