public import BudJSON
public import PluginSchema

/// Checks parameter values against an action's metadata: required, numeric bounds, lengths,
/// pattern, options and kind. Values that are templates are resolved only at run time, so they
/// are checked for presence only.
public enum ActionParameterCheck {
    /// One parameter value that does not fit its definition.
    public enum Problem: Sendable, Equatable {
        case missing(String)
        case belowMinimum(String, value: JSONValue, minimum: Double)
        case aboveMaximum(String, value: JSONValue, maximum: Double)
        case tooShort(String, length: Int, minimum: Int)
        case tooLong(String, length: Int, maximum: Int)
        case patternMismatch(String, message: String)
        case notAnOption(String, value: String, options: [String])
        case wrongKind(String, expected: String, got: String)

        /// Whether DAG validation reports this problem as an error. Missing values, numeric bounds and
        /// lengths always were errors; the pattern, option and kind checks came later and are reported
        /// as warnings, so that no DAG that validated before becomes invalid.
        public var isReferenceCheck: Bool {
            switch self {
            case .missing, .belowMinimum, .aboveMaximum, .tooShort, .tooLong: true
            case .patternMismatch, .notAnOption, .wrongKind: false
            }
        }

        /// As `POST /actions/validate` words it (the admin UI shows these messages as they are).
        public var actionValidationMessage: String {
            switch self {
            case .missing(let name): "Missing required parameter: \(name)"
            case .belowMinimum(let name, _, let minimum): "\(name): must be >= \(PythonFormat.str(.double(minimum)))"
            case .aboveMaximum(let name, _, let maximum): "\(name): must be <= \(PythonFormat.str(.double(maximum)))"
            case .tooShort(let name, _, let minimum): "\(name): must be at least \(minimum) chars"
            case .tooLong(let name, _, let maximum): "\(name): must be at most \(maximum) chars"
            case .patternMismatch(let name, let message): "\(name): \(message)"
            case .notAnOption(let name, let value, let options): "\(name): '\(value)' is not one of: \(options.joined(separator: ", "))"
            case .wrongKind(let name, let expected, let got): "\(name): must be \(expected), got \(got)"
            }
        }

        /// As DAG validation words it for step `stepID` (budapp and the SDK pass these messages on).
        public func dagMessage(stepID: String) -> String {
            switch self {
            case .missing(let name):
                "Step '\(stepID)': Required parameter '\(name)' is missing or empty"
            case .belowMinimum(let name, let value, let minimum):
                "Step '\(stepID)': Parameter '\(name)' value \(PythonFormat.str(value)) is less than minimum \(PythonFormat.str(.double(minimum)))"
            case .aboveMaximum(let name, let value, let maximum):
                "Step '\(stepID)': Parameter '\(name)' value \(PythonFormat.str(value)) exceeds maximum \(PythonFormat.str(.double(maximum)))"
            case .tooShort(let name, let length, let minimum):
                "Step '\(stepID)': Parameter '\(name)' length \(length) is less than minimum \(minimum)"
            case .tooLong(let name, let length, let maximum):
                "Step '\(stepID)': Parameter '\(name)' length \(length) exceeds maximum \(maximum)"
            case .patternMismatch(let name, let message):
                "Step '\(stepID)': Parameter '\(name)' \(message)"
            case .notAnOption(let name, let value, let options):
                "Step '\(stepID)': Parameter '\(name)' value '\(value)' is not one of: \(options.joined(separator: ", "))"
            case .wrongKind(let name, let expected, let got):
                "Step '\(stepID)': Parameter '\(name)' must be \(expected), got \(got)"
            }
        }
    }

    /// The problems of `params` for an action described by `metadata`.
    public static func problems(_ params: JSONObject, metadata: ActionMetadata) -> [Problem] {
        var problems: [Problem] = []
        for definition in metadata.params {
            let value = params[definition.name]
            let isTemplate = value?.stringValue.map(Template.containsSyntax) ?? false
            let isEmpty = value == nil || value == .null || value == .string("")
            if isEmpty {
                if definition.required && definition.defaultValue == nil && isVisible(definition, in: params, metadata: metadata) {
                    problems.append(.missing(definition.name))
                }
                continue
            }
            guard let value, !isTemplate else { continue }
            problems.append(contentsOf: valueProblems(value, definition: definition))
        }
        return problems
    }

    private static func valueProblems(_ value: JSONValue, definition: ParamDefinition) -> [Problem] {
        var problems: [Problem] = []
        let name = definition.name
        switch definition.type {
        case .number where value.doubleValue == nil || value.boolValue != nil:
            return [.wrongKind(name, expected: "a number", got: value.typeName)]
        case .boolean where value.boolValue == nil:
            return [.wrongKind(name, expected: "a boolean", got: value.typeName)]
        case .select:
            let options = (definition.options ?? []).map(\.value)
            if let text = value.stringValue, !options.contains(text) {
                problems.append(.notAnOption(name, value: text, options: options))
            }
        case .multiselect:
            let options = (definition.options ?? []).map(\.value)
            for case .string(let text) in value.arrayValue ?? [] where !options.contains(text) {
                problems.append(.notAnOption(name, value: text, options: options))
            }
        default:
            break
        }
        guard let rules = definition.validation else { return problems }
        if let number = value.doubleValue, value.boolValue == nil {
            if let minimum = rules.min, number < minimum { problems.append(.belowMinimum(name, value: value, minimum: minimum)) }
            if let maximum = rules.max, number > maximum { problems.append(.aboveMaximum(name, value: value, maximum: maximum)) }
        }
        if let text = value.stringValue {
            if let minimum = rules.minLength, text.count < minimum {
                problems.append(.tooShort(name, length: text.count, minimum: minimum))
            }
            if let maximum = rules.maxLength, text.count > maximum { problems.append(.tooLong(name, length: text.count, maximum: maximum)) }
            if let pattern = rules.pattern, let regex = try? Regex(pattern), (try? regex.wholeMatch(in: text)) == nil {
                problems.append(.patternMismatch(name, message: rules.patternMessage ?? "does not match the pattern \(pattern)"))
            }
        }
        return problems
    }

    /// Whether a parameter with `show_when` is shown for these values. A controlling value that is a
    /// template is unknown until run time: the parameter counts as hidden.
    private static func isVisible(_ definition: ParamDefinition, in params: JSONObject, metadata: ActionMetadata) -> Bool {
        guard let condition = definition.showWhen else { return true }
        let controlling = params[condition.param] ?? metadata.params.first { $0.name == condition.param }?.defaultValue ?? .null
        if let text = controlling.stringValue, Template.containsSyntax(text) { return false }
        if let equals = condition.equals, controlling != equals { return false }
        if let notEquals = condition.notEquals, controlling == notEquals { return false }
        return true
    }
}
