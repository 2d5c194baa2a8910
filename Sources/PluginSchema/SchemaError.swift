import BudJSON

/// A JSON document that does not have the shape a plugin document must have.
public struct SchemaError: Error, Sendable, Equatable, CustomStringConvertible {
    /// One line naming the field and what is wrong, e.g. `param[0].label is required`.
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// Reads the members of one JSON object and names the offending field in every error.
struct ObjectReader {
    let object: JSONObject
    let path: String

    /// Fails unless `value` is an object; `path` names it in messages (empty for the document root).
    init(_ value: JSONValue, path: String = "") throws(SchemaError) {
        guard case .object(let object) = value else {
            throw SchemaError("\(path.isEmpty ? "document" : path) must be an object, got \(value.typeName)")
        }
        self.object = object
        self.path = path
    }

    func field(_ key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
    }

    /// The member, with JSON `null` treated as absent.
    func value(_ key: String) -> JSONValue? {
        guard let value = object[key], !value.isNull else { return nil }
        return value
    }

    func string(_ key: String) throws(SchemaError) -> String? {
        guard let value = value(key) else { return nil }
        guard case .string(let text) = value else { throw typeMismatch(key, "a string", value) }
        return text
    }

    /// A string that must be present and non-empty.
    func requiredString(_ key: String) throws(SchemaError) -> String {
        guard let text = try string(key), !text.isEmpty else { throw SchemaError("\(field(key)) is required") }
        return text
    }

    func bool(_ key: String) throws(SchemaError) -> Bool? {
        guard let value = value(key) else { return nil }
        guard case .bool(let flag) = value else { throw typeMismatch(key, "a boolean", value) }
        return flag
    }

    func int(_ key: String) throws(SchemaError) -> Int? {
        guard let value = value(key) else { return nil }
        guard let number = value.intValue else { throw typeMismatch(key, "an integer", value) }
        return number
    }

    func double(_ key: String) throws(SchemaError) -> Double? {
        guard let value = value(key) else { return nil }
        guard let number = value.doubleValue else { throw typeMismatch(key, "a number", value) }
        return number
    }

    func objectMember(_ key: String) throws(SchemaError) -> JSONObject? {
        guard let value = value(key) else { return nil }
        guard case .object(let members) = value else { throw typeMismatch(key, "an object", value) }
        return members
    }

    func array(_ key: String) throws(SchemaError) -> [JSONValue]? {
        guard let value = value(key) else { return nil }
        guard case .array(let elements) = value else { throw typeMismatch(key, "an array", value) }
        return elements
    }

    func stringArray(_ key: String) throws(SchemaError) -> [String]? {
        guard let elements = try array(key) else { return nil }
        var strings: [String] = []
        for (index, element) in elements.enumerated() {
            guard case .string(let text) = element else {
                throw SchemaError("\(field(key))[\(index)] must be a string, got \(element.typeName)")
            }
            strings.append(text)
        }
        return strings
    }

    private func typeMismatch(_ key: String, _ expected: String, _ value: JSONValue) -> SchemaError {
        SchemaError("\(field(key)) must be \(expected), got \(value.typeName)")
    }
}

extension JSONObject {
    /// The members that say which step a request is about, shared by every request document.
    static func stepIdentity(action: String, executionID: String, stepID: String, stepExecutionID: String?) -> JSONObject {
        var object: JSONObject = ["action": .string(action), "execution_id": .string(executionID), "step_id": .string(stepID)]
        object.setIfPresent("step_execution_id", stepExecutionID.map(JSONValue.string))
        return object
    }

    /// Sets `key` only when `value` is present.
    mutating func setIfPresent(_ key: String, _ value: JSONValue?) {
        if let value { self[key] = value }
    }
}
