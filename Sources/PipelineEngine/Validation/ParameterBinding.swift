public import BudJSON

/// The values an execution's parameters take: the caller's, else the declared defaults.
public enum ParameterBinding {
    /// Types whose values are checked; any other declared type is accepted as is.
    static let checkedTypes: Set<String> = [
        "string", "str", "integer", "int", "float", "number", "boolean", "bool", "array", "list", "object", "dict", "json", "any",
        "model_ref", "cluster_ref", "project_ref", "endpoint_ref", "provider_ref", "credential_ref", "cloud_model_ref",
    ]

    /// Merges `provided` over the declared defaults and checks required parameters and types.
    /// Keys the pipeline does not declare are kept. Throws every problem found.
    public static func bind(_ parameters: [PipelineParameter], provided: JSONObject) throws(ParameterBindingError) -> JSONObject {
        var bound = JSONObject()
        var problems: [String] = []
        for parameter in parameters {
            if let value = provided[parameter.name], !value.isNull {
                if let type = parameter.type, let problem = typeProblem(value, type: type) {
                    problems.append("Parameter '\(parameter.name)' \(problem)")
                }
                bound[parameter.name] = value
            } else if let defaultValue = parameter.defaultValue {
                bound[parameter.name] = defaultValue
            } else if parameter.required {
                problems.append("Missing required parameter: \(parameter.name)")
            } else if let value = provided[parameter.name] {
                bound[parameter.name] = value
            }
        }
        for (key, value) in provided where bound[key] == nil && !parameters.contains(where: { $0.name == key }) {
            bound[key] = value
        }
        guard problems.isEmpty else { throw ParameterBindingError(problems: problems) }
        return bound
    }

    /// Why `value` is not of the declared `type`, or `nil` when it is (or the type is not checked).
    static func typeProblem(_ value: JSONValue, type: String) -> String? {
        let expected: String
        switch type.lowercased() {
        case "string", "str", "model_ref", "cluster_ref", "project_ref", "endpoint_ref", "provider_ref", "credential_ref",
            "cloud_model_ref":
            if value.stringValue != nil { return nil }
            expected = "a string"
        case "integer", "int":
            if case .int = value { return nil }
            if case .double(let number) = value, number.rounded() == number { return nil }
            expected = "an integer"
        case "float", "number":
            if value.doubleValue != nil && value.boolValue == nil { return nil }
            expected = "a number"
        case "boolean", "bool":
            if value.boolValue != nil { return nil }
            expected = "a boolean"
        case "array", "list":
            if value.arrayValue != nil { return nil }
            expected = "an array"
        case "object", "dict":
            if value.objectValue != nil { return nil }
            expected = "an object"
        default:
            return nil
        }
        return "must be \(expected), got \(value.typeName)"
    }
}

/// Parameters an execution cannot start with.
public struct ParameterBindingError: Error, Sendable, Equatable, CustomStringConvertible {
    public let problems: [String]

    public init(problems: [String]) {
        self.problems = problems
    }

    public var description: String { problems.joined(separator: "; ") }
}
