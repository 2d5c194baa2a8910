public import BudJSON
import PluginSchema

/// Reads DAG documents into ``PipelineDefinition``s, reporting problems in the wording budapp and
/// the SDK pass on (docs/dag.md, "Validation"): a wrong top-level shape, then the first
/// structural problem, then every schema problem (`steps.0.name: Field required`).
public enum PipelineParser {
    /// Parses a DAG document. Unknown keys are ignored.
    public static func parse(_ document: JSONValue) -> Result<PipelineDefinition, PipelineParseError> {
        if let problem = topLevelProblem(document) ?? structuralProblem(document) {
            return .failure(PipelineParseError(errors: [problem]))
        }
        var decoder = SchemaDecoder()
        let definition = decoder.definition(document)
        guard decoder.errors.isEmpty, let definition else { return .failure(PipelineParseError(errors: decoder.errors)) }
        return .success(definition)
    }

    private static func topLevelProblem(_ document: JSONValue) -> String? {
        switch document {
        case .null: return "DAG data cannot be None"
        case .object(let object) where object.isEmpty: return "DAG data cannot be empty"
        case .object: return nil
        default: return "DAG data must be a dictionary, got \(PythonFormat.typeName(document))"
        }
    }

    /// The structural check that runs before the schema is decoded: the first problem only.
    private static func structuralProblem(_ document: JSONValue) -> String? {
        guard let name = document["name"], !name.isNull else { return "name: Field required" }
        guard let stepsValue = document["steps"], !stepsValue.isNull else { return "steps: Field required" }
        guard case .array(let steps) = stepsValue else { return "steps: Must be a list" }
        guard !steps.isEmpty else { return "steps: At least one step is required" }
        var ids: [String] = []
        for (index, step) in steps.enumerated() {
            guard case .object = step else { return "steps.\(index): Must be a dictionary" }
            guard let id = step["id"], !id.isNull else { return "steps.\(index).id: Field required" }
            guard let action = step["action"], !action.isNull else { return "steps.\(index).action: Field required" }
            ids.append(id.stringValue ?? PythonFormat.str(id))
        }
        var seen: Set<String> = []
        for id in ids where !seen.insert(id).inserted { return "steps: Duplicate step ID '\(id)'" }
        for (index, step) in steps.enumerated() {
            guard case .array(let dependencies) = step["depends_on"] ?? .array([]) else { continue }
            for dependency in dependencies {
                let name = dependency.stringValue ?? PythonFormat.str(dependency)
                if name == ids[index] { return "steps.\(ids[index]): Self-dependency not allowed" }
                if !seen.contains(name) { return "steps.\(ids[index]).depends_on: Unknown step '\(name)'" }
            }
        }
        return nil
    }
}

/// The errors that make a document not a valid DAG.
public struct PipelineParseError: Error, Sendable, Equatable {
    public let errors: [String]

    public init(errors: [String]) {
        self.errors = errors
    }
}

/// Decodes the DAG schema, collecting every problem with its location (pydantic's messages).
private struct SchemaDecoder {
    var errors: [String] = []

    mutating func definition(_ document: JSONValue) -> PipelineDefinition? {
        let name = string(document["name"], at: "name", minimumLength: 1, maximumLength: 255)
        let version = document["version"].map { value -> String in
            switch value {
            case .string(let text): return text
            case .int, .double: return PythonFormat.str(value)
            default:
                report("version", "Input should be a valid string")
                return "1.0"
            }
        }
        let description = optionalString(document["description"], at: "description")
        let parameters = list(document["parameters"], at: "parameters") { decoder, element, location in
            decoder.parameter(element, at: location)
        }
        var names: Set<String> = []
        for (index, parameter) in parameters.enumerated() where !names.insert(parameter.name).inserted {
            report("parameters.\(index).name", "Value error, Duplicate parameter name '\(parameter.name)'")
        }
        let settings = document["settings"].flatMap { decodeSettings($0) } ?? PipelineSettings()
        let steps = list(document["steps"], at: "steps") { decoder, element, location in decoder.step(element, at: location) }
        var outputs: [(name: String, template: String)] = []
        if let value = document["outputs"], !value.isNull {
            if case .object(let object) = value {
                for (key, template) in object {
                    guard case .string(let text) = template else {
                        report("outputs.\(key)", "Input should be a valid string")
                        continue
                    }
                    outputs.append((key, text))
                }
            } else {
                report("outputs", "Input should be a valid dictionary")
            }
        }
        guard let name else { return nil }
        return PipelineDefinition(
            name: name,
            version: version ?? "1.0",
            description: description,
            parameters: parameters,
            settings: settings,
            steps: steps,
            outputs: outputs
        )
    }

    private mutating func parameter(_ value: JSONValue, at location: String) -> PipelineParameter? {
        guard case .object = value else {
            report(location, "Input should be a valid dictionary")
            return nil
        }
        let name = string(value["name"], at: "\(location).name", minimumLength: 1, maximumLength: 100)
        if let name, let first = name.first, !(first.isLetter || first == "_") {
            report("\(location).name", "Value error, Parameter name must start with a letter or underscore")
        }
        let type = optionalString(value["type"], at: "\(location).type")
        let description = optionalString(value["description"], at: "\(location).description")
        let required = value["required"].flatMap { boolean($0, at: "\(location).required") } ?? true
        let defaultValue = value["default"].flatMap { $0.isNull ? nil : $0 }
        guard let name else { return nil }
        return PipelineParameter(name: name, type: type, description: description, required: required, defaultValue: defaultValue)
    }

    private mutating func decodeSettings(_ value: JSONValue) -> PipelineSettings? {
        if value.isNull { return nil }
        guard case .object = value else {
            report("settings", "Input should be a valid dictionary")
            return nil
        }
        var settings = PipelineSettings()
        settings.timeoutSeconds = value["timeout_seconds"].flatMap {
            integer($0, at: "settings.timeout_seconds", minimum: 1, maximum: DurationLimits.maximumSeconds)
        }
        settings.failFast = value["fail_fast"].flatMap { boolean($0, at: "settings.fail_fast") } ?? true
        settings.maxParallelSteps =
            value["max_parallel_steps"].flatMap { integer($0, at: "settings.max_parallel_steps", minimum: 1, maximum: 100) } ?? 10
        settings.retryPolicy = value["retry_policy"].flatMap { decodeRetry($0, at: "settings.retry_policy") }
        return settings
    }

    private mutating func step(_ value: JSONValue, at location: String) -> PipelineStep? {
        let id = string(value["id"], at: "\(location).id", minimumLength: 1, maximumLength: 100)
        if let id, let first = id.first, !(first.isLetter || first.isNumber) {
            report("\(location).id", "Value error, Step ID must start with alphanumeric character")
        }
        let name = string(value["name"], at: "\(location).name", minimumLength: 1, maximumLength: 255)
        let action = string(value["action"], at: "\(location).action", minimumLength: 1, maximumLength: 255)
        var params = JSONObject()
        if let paramsValue = value["params"], !paramsValue.isNull {
            if case .object(let object) = paramsValue {
                params = object
            } else {
                report("\(location).params", "Input should be a valid dictionary")
            }
        }
        let dependsOn = stringList(value["depends_on"], at: "\(location).depends_on")
        let outputs = stringList(value["outputs"], at: "\(location).outputs")
        var condition: String?
        switch value["condition"] {
        case nil, .null?: break
        case .string(let text)?: condition = text
        case .bool(let flag)?: condition = flag ? "true" : "false"
        default: report("\(location).condition", "Input should be a valid string")
        }
        var onFailure = FailurePolicy.fail
        if let policy = value["on_failure"], !policy.isNull {
            if let text = policy.stringValue, let parsed = FailurePolicy(rawValue: text.lowercased()) {
                onFailure = parsed
            } else {
                report(
                    "\(location).on_failure",
                    "Value error, '\(policy.stringValue ?? PythonFormat.str(policy))' is not a valid OnFailureAction")
            }
        }
        let timeout = value["timeout_seconds"].flatMap {
            integer($0, at: "\(location).timeout_seconds", minimum: 1, maximum: DurationLimits.maximumSeconds)
        }
        let retry = value["retry"].flatMap { decodeRetry($0, at: "\(location).retry") }
        let estimate = value["estimated_duration_seconds"].flatMap {
            integer($0, at: "\(location).estimated_duration_seconds", minimum: 1, maximum: 31_536_000)
        }
        guard let id, let name, let action else { return nil }
        return PipelineStep(
            id: id,
            name: name,
            action: action,
            params: params,
            dependsOn: dependsOn,
            outputs: outputs,
            condition: condition,
            onFailure: onFailure,
            timeoutSeconds: timeout,
            retry: retry,
            estimatedDurationSeconds: estimate
        )
    }

    private mutating func decodeRetry(_ value: JSONValue, at location: String) -> StepRetry? {
        if value.isNull { return nil }
        guard case .object = value else {
            report(location, "Input should be a valid dictionary")
            return nil
        }
        let defaults = StepRetry()
        return StepRetry(
            maxAttempts: templatedNumber(value["max_attempts"], at: "\(location).max_attempts", integer: true, minimum: 1, maximum: 10)
                ?? defaults.maxAttempts,
            backoffSeconds: templatedNumber(
                value["backoff_seconds"], at: "\(location).backoff_seconds", integer: true, minimum: 1,
                maximum: Double(DurationLimits.maximumSeconds))
                ?? defaults.backoffSeconds,
            backoffMultiplier: templatedNumber(
                value["backoff_multiplier"], at: "\(location).backoff_multiplier", integer: false, minimum: 1, maximum: 100)
                ?? defaults.backoffMultiplier,
            maxBackoffSeconds: templatedNumber(
                value["max_backoff_seconds"], at: "\(location).max_backoff_seconds", integer: true, minimum: 1,
                maximum: Double(DurationLimits.maximumSeconds))
                ?? defaults.maxBackoffSeconds
        )
    }

    // MARK: Field readers

    private static func format(_ number: Double) -> String {
        number.rounded() == number ? String(Int(number)) : String(number)
    }

    private mutating func report(_ location: String, _ message: String) {
        errors.append("\(location): \(message)")
    }

    private mutating func list<Element>(
        _ value: JSONValue?,
        at location: String,
        _ element: (inout SchemaDecoder, JSONValue, String) -> Element?
    ) -> [Element] {
        guard let value, !value.isNull else { return [] }
        guard case .array(let elements) = value else {
            report(location, "Input should be a valid list")
            return []
        }
        return elements.enumerated().compactMap { index, item in element(&self, item, "\(location).\(index)") }
    }

    private mutating func string(_ value: JSONValue?, at location: String, minimumLength: Int, maximumLength: Int) -> String? {
        guard let value, !value.isNull else {
            report(location, "Field required")
            return nil
        }
        guard case .string(let text) = value else {
            report(location, "Input should be a valid string")
            return nil
        }
        if text.unicodeScalars.count < minimumLength {
            report(location, "String should have at least \(minimumLength) character\(minimumLength == 1 ? "" : "s")")
            return nil
        }
        if text.unicodeScalars.count > maximumLength {
            report(location, "String should have at most \(maximumLength) characters")
            return nil
        }
        return text
    }

    private mutating func optionalString(_ value: JSONValue?, at location: String) -> String? {
        guard let value, !value.isNull else { return nil }
        guard case .string(let text) = value else {
            report(location, "Input should be a valid string")
            return nil
        }
        return text
    }

    private mutating func stringList(_ value: JSONValue?, at location: String) -> [String] {
        guard let value, !value.isNull else { return [] }
        guard case .array(let elements) = value else {
            report(location, "Input should be a valid list")
            return []
        }
        var strings: [String] = []
        for (index, element) in elements.enumerated() {
            guard case .string(let text) = element else {
                report("\(location).\(index)", "Input should be a valid string")
                continue
            }
            strings.append(text)
        }
        return strings
    }

    /// Pydantic's lax booleans: `true`/`false`, `0`/`1`, and the strings `true`, `yes`, `on`, `1`, … .
    private mutating func boolean(_ value: JSONValue, at location: String) -> Bool? {
        switch value {
        case .null: return nil
        case .bool(let flag): return flag
        case .int(0): return false
        case .int(1): return true
        case .string(let text):
            switch text.lowercased() {
            case "true", "yes", "on", "1", "t", "y": return true
            case "false", "no", "off", "0", "f", "n": return false
            default: break
            }
            report(location, "Input should be a valid boolean, unable to interpret input")
        default:
            report(location, "Input should be a valid boolean")
        }
        return nil
    }

    /// Pydantic's lax integers: whole numbers and strings of digits.
    private mutating func integer(_ value: JSONValue, at location: String, minimum: Int? = nil, maximum: Int? = nil) -> Int? {
        let number: Int
        switch value {
        case .null: return nil
        case .int(let integer): number = integer
        case .double(let real):
            guard let integer = Int(exactly: real) else {
                report(location, "Input should be a valid integer, got a number with a fractional part")
                return nil
            }
            number = integer
        case .string(let text):
            guard let integer = Int(text.trimmingWhitespace()) else {
                report(location, "Input should be a valid integer, unable to parse string as an integer")
                return nil
            }
            number = integer
        default:
            report(location, "Input should be a valid integer")
            return nil
        }
        if let minimum, number < minimum {
            report(location, "Input should be greater than or equal to \(minimum)")
            return nil
        }
        if let maximum, number > maximum {
            report(location, "Input should be less than or equal to \(maximum)")
            return nil
        }
        return number
    }

    private mutating func templatedNumber(
        _ value: JSONValue?,
        at location: String,
        integer: Bool,
        minimum: Double,
        maximum: Double? = nil
    ) -> TemplatedNumber? {
        guard let value, !value.isNull else { return nil }
        let number: Double
        switch value {
        case .string(let text) where Template.containsSyntax(text):
            return .template(text)
        case .int, .double, .string:
            guard let parsed = value.doubleValue ?? value.stringValue.flatMap({ Double($0.trimmingWhitespace()) }) else {
                report(location, "Input should be a valid number, unable to parse string as a number")
                return nil
            }
            number = parsed
        default:
            report(location, integer ? "Input should be a valid integer" : "Input should be a valid number")
            return nil
        }
        guard number.isFinite else {
            report(location, "Input should be a finite number")
            return nil
        }
        if integer && number.rounded() != number {
            report(location, "Input should be a valid integer, got a number with a fractional part")
            return nil
        }
        if number < minimum {
            report(location, "Input should be greater than or equal to \(Self.format(minimum))")
            return nil
        }
        if let maximum, number > maximum {
            report(location, "Input should be less than or equal to \(Self.format(maximum))")
            return nil
        }
        return .number(number)
    }
}
