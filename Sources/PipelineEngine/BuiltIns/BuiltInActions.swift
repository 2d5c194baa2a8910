public import BudJSON
import Foundation
public import PluginSchema

/// The control-flow actions the engine runs itself, without a plugin: `log`, `fail`, `set_output`,
/// `transform`, `aggregate`, `conditional` and `wait_until`.
public enum BuiltInActions {
    static let conditionalType = "conditional"
    static let waitUntilType = "wait_until"
    static let transformOperations = [
        "passthrough", "uppercase", "lowercase", "keys", "values", "count", "flatten", "unique", "sort", "reverse",
    ]
    static let aggregateOperations = ["list", "sum", "join", "merge", "first", "last", "min", "max", "average", "count", "flatten"]

    /// The metadata of every built-in action.
    public static let all: [ActionMetadata] = [
        logMetadata, setOutputMetadata, transformMetadata, aggregateMetadata, conditionalMetadata, failMetadata, waitUntilMetadata,
    ]

    /// The built-in action types: plugins may not register these.
    public static let types: Set<String> = Set(all.map(\.type))

    /// A catalog of the built-in actions alone.
    public static let catalog = StaticActionCatalog(all)

    /// The action's own parameter checks (its `validate_params`), beyond what its metadata says.
    public static func validateParams(_ type: String, _ params: JSONObject) -> [String] {
        switch type {
        case "set_output":
            guard let outputs = params["outputs"], outputs.objectValue == nil else { return [] }
            return ["outputs must be a dictionary, got \(PythonFormat.typeName(outputs))"]
        case "aggregate":
            var errors: [String] = []
            if let inputs = params["inputs"], inputs.arrayValue == nil, !inputs.isNull { errors.append("inputs must be a list") }
            if let operation = params["operation"]?.stringValue, !aggregateOperations.contains(operation) {
                errors.append("Invalid operation: \(operation). Valid: \(aggregateOperations.joined(separator: ", "))")
            }
            return errors
        case conditionalType:
            guard case .array(let branches)? = params["branches"] else { return [] }
            var errors: [String] = []
            for (index, branch) in branches.enumerated() {
                guard case .object(let fields) = branch else {
                    errors.append("Branch \(index) must be a dictionary")
                    continue
                }
                if fields["id"] == nil { errors.append("Branch \(index) missing 'id' field") }
                if fields["condition"] == nil { errors.append("Branch \(index) missing 'condition' field") }
            }
            return errors
        case waitUntilType:
            return WaitUntil.validate(params)
        default:
            return []
        }
    }

    /// What running a synchronous built-in produced.
    enum Result: Equatable {
        case completed(JSONObject)
        case failed(String, outputs: JSONObject)
    }

    /// Runs one of the synchronous built-ins (all but `wait_until`) with resolved parameters.
    static func run(_ type: String, params: JSONObject, branches: [CompiledBranch]?, scope: TemplateScope) -> Result {
        switch type {
        case "log": return .completed(log(params).outputs)
        case "fail": return fail(params)
        case "set_output":
            let outputs = params["outputs"] ?? .object([:])
            guard case .object(let object) = outputs else {
                return .failed("outputs must be a dictionary, got \(PythonFormat.typeName(outputs))", outputs: [:])
            }
            return .completed(object)
        case "transform": return transform(params)
        case "aggregate": return aggregate(params)
        case conditionalType: return .completed(conditional(params, branches: branches ?? [], scope: scope))
        default: return .failed("'\(type)' is not a synchronous built-in action", outputs: [:])
        }
    }

    /// The outputs of `log` and the line to write.
    static func log(_ params: JSONObject) -> (outputs: JSONObject, level: String, message: String) {
        let message = params["message"].map(PythonFormat.str) ?? "No message provided"
        let level = (params["level"].map(PythonFormat.str) ?? "info").lowercased()
        return (["logged": true, "message": .string(message), "level": .string(level)], level, message)
    }

    private static func fail(_ params: JSONObject) -> Result {
        let message = params["message"].map(PythonFormat.str) ?? "Intentional failure"
        let code = params["error_code"].map(PythonFormat.str) ?? "INTENTIONAL_FAILURE"
        return .failed(message, outputs: ["error_code": .string(code), "message": .string(message)])
    }

    // MARK: transform

    private static func transform(_ params: JSONObject) -> Result {
        let input = params["input"] ?? .object([:])
        let operation = params["operation"].map(PythonFormat.str) ?? "passthrough"
        let result: JSONValue
        switch operation {
        case "uppercase", "lowercase":
            let change: (String) -> String = operation == "uppercase" ? { $0.uppercased() } : { $0.lowercased() }
            switch input {
            case .string(let text): result = .string(change(text))
            case .object(let object):
                result = .object(JSONObject(object.map { ($0.key, $0.value.stringValue.map { .string(change($0)) } ?? $0.value) }))
            default: result = input
            }
        case "keys": result = .array(input.objectValue?.keys.map(JSONValue.string) ?? [])
        case "values": result = .array(input.objectValue?.values ?? [])
        case "count":
            switch input {
            case .string(let text): result = .int(text.count)
            case .array(let elements): result = .int(elements.count)
            case .object(let object): result = .int(object.count)
            default: result = .int(0)
            }
        case "flatten": result = input.arrayValue.map { .array(flattened($0)) } ?? input
        case "unique":
            guard let elements = input.arrayValue else {
                result = input
                break
            }
            var seen: Set<String> = []
            result = .array(elements.filter { seen.insert(PythonFormat.repr($0)).inserted })
        case "sort": result = input.arrayValue.map { .array(naturallySorted($0)) } ?? input
        case "reverse":
            switch input {
            case .array(let elements): result = .array(elements.reversed())
            case .string(let text): result = .string(String(text.reversed()))
            default: result = input
            }
        default: result = input
        }
        return .completed([
            "result": result, "operation": .string(operation), "input_type": .string(PythonFormat.typeName(input)),
            "output_type": .string(PythonFormat.typeName(result)),
        ])
    }

    private static func flattened(_ elements: [JSONValue]) -> [JSONValue] {
        elements.flatMap { $0.arrayValue ?? [$0] }
    }

    /// Python's `sorted`, falling back to the text forms when the types do not compare.
    private static func naturallySorted(_ elements: [JSONValue]) -> [JSONValue] {
        var failed = false
        let sorted = elements.sorted { left, right in
            do throws(TemplateError) {
                return try TemplateEvaluator.order(left, right, .less, position: 0) < 0
            } catch {
                failed = true
                return false
            }
        }
        guard failed else { return sorted }
        return elements.sorted { PythonFormat.str($0).unicodeScalars.lexicographicallyPrecedes(PythonFormat.str($1).unicodeScalars) }
    }

    // MARK: aggregate

    private static func aggregate(_ params: JSONObject) -> Result {
        let rawInputs = params["inputs"] ?? .array([])
        let inputs: [JSONValue]
        switch rawInputs {
        case .null: inputs = []
        case .array(let elements): inputs = elements
        default: inputs = [rawInputs]
        }
        let count = rawInputs.arrayValue?.count ?? 0
        let operation = params["operation"].map(PythonFormat.str) ?? "list"
        let numbers = inputs.compactMap { TemplateEvaluator.number($0) }
        let allNumeric = numbers.count == inputs.count
        let result: JSONValue
        switch operation {
        case "list": result = .array(inputs)
        case "sum":
            guard allNumeric else {
                result = .int(0)
                break
            }
            result = sum(numbers)
        case "join":
            let separator = params["separator"].map(PythonFormat.str) ?? ", "
            result = .string(inputs.map(PythonFormat.str).joined(separator: separator))
        case "merge":
            var merged = JSONObject()
            for case .object(let object) in inputs { merged.merge(object) }
            result = .object(merged)
        case "first": result = inputs.first ?? .null
        case "last": result = inputs.last ?? .null
        case "min", "max":
            guard allNumeric, !numbers.isEmpty else {
                result = .null
                break
            }
            let pick =
                operation == "min" ? inputs.min { numberValue($0) < numberValue($1) } : inputs.max { numberValue($0) < numberValue($1) }
            result = pick ?? .null
        case "average":
            guard allNumeric, !numbers.isEmpty else {
                result = .null
                break
            }
            result = .double(numbers.map(\.double).reduce(0, +) / Double(numbers.count))
        case "count": result = .int(inputs.count)
        case "flatten": result = .array(flattened(inputs))
        default:
            return .failed("Invalid operation: \(operation). Valid: \(aggregateOperations.joined(separator: ", "))", outputs: [:])
        }
        return .completed(["result": result, "count": .int(count), "operation": .string(operation)])
    }

    private static func numberValue(_ value: JSONValue) -> Double {
        TemplateEvaluator.number(value)?.double ?? 0
    }

    private static func sum(_ numbers: [TemplateEvaluator.Number]) -> JSONValue {
        var integer = 0
        for number in numbers {
            guard case .integer(let value) = number, case (let total, false) = integer.addingReportingOverflow(value) else {
                return .double(numbers.map(\.double).reduce(0, +))
            }
            integer = total
        }
        return .int(integer)
    }

    // MARK: conditional

    private static func conditional(_ params: JSONObject, branches: [CompiledBranch], scope: TemplateScope) -> JSONObject {
        if !branches.isEmpty {
            for branch in branches {
                guard (try? branch.condition.evaluate(in: scope)) == true else { continue }
                let label = branch.label ?? branch.id
                return [
                    "matched_branch": .string(branch.id), "matched_label": .string(label),
                    "target_step": branch.target.map(JSONValue.string) ?? .null, "result": .string(label), "branch": .string(branch.id),
                ]
            }
            return ["matched_branch": .null, "matched_label": "none", "target_step": .null, "result": .null, "branch": "none"]
        }
        let condition = params["condition"] ?? .bool(true)
        let holds: Bool
        if case .string(let text) = condition {
            holds = Condition.renderedTruth(text)
        } else {
            holds = TemplateValue.value(condition).isTruthy
        }
        let branch = holds ? "true" : "false"
        let result = holds ? params["true_result"] ?? ["branch": "true"] : params["false_result"] ?? ["branch": "false"]
        return [
            "result": result, "branch": .string(branch), "matched_branch": .string(branch), "matched_label": .string(branch),
            "target_step": .null,
        ]
    }
}
