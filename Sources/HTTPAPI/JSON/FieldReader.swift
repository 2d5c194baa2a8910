import BudJSON
import Foundation
import Hummingbird
import Storage

/// Reads typed fields out of a request body or query, collecting every problem before failing,
/// with FastAPI's locations and wording (`["body", "params"]`, "Input should be a valid string").
struct FieldReader {
    private let fields: JSONObject
    /// Where the fields are: `["body"]`, `["query"]`, `["body", "schedule"]`.
    private let place: [JSONValue]
    private(set) var problems: [RequestProblem] = []

    init(body: JSONObject) {
        fields = body
        place = ["body"]
    }

    private init(fields: JSONObject, place: [JSONValue]) {
        self.fields = fields
        self.place = place
    }

    /// Reads the object `name` with `read`, reporting its problems at their nested location.
    /// `nil` when absent (or not an object, which is a problem).
    mutating func nested<Result>(_ name: String, _ read: (inout FieldReader) -> Result) -> Result? {
        guard let object = object(name) else { return nil }
        var inner = FieldReader(fields: object, place: place + [.string(name)])
        let result = read(&inner)
        problems += inner.problems
        return result
    }

    /// The request's query parameters, each a string; the first of repeated names counts.
    init(query request: Request) {
        var fields = JSONObject()
        for (name, value) in request.uri.queryParameters where fields[String(name)] == nil {
            fields[String(name)] = .string(String(value))
        }
        self.fields = fields
        place = ["query"]
    }

    /// Throws a 422 listing every problem found so far.
    func finish() throws(APIError) {
        if !problems.isEmpty { throw APIError.unprocessable(problems) }
    }

    /// Records a problem found by a check of the caller's own.
    mutating func reject(_ name: String, _ message: String) {
        problem(name, message, type: "value_error")
    }

    private mutating func problem(_ name: String, _ message: String, type: String) {
        problems.append(RequestProblem(location: place + [.string(name)], message: message, type: type))
    }

    /// Whether the field is there at all, `null` included.
    func isPresent(_ name: String) -> Bool {
        fields[name] != nil
    }

    /// The raw value, `nil` when absent or `null`.
    func value(_ name: String) -> JSONValue? {
        guard let value = fields[name], !value.isNull else { return nil }
        return value
    }

    mutating func requiredObject(_ name: String) -> JSONObject? {
        guard fields[name] != nil else {
            problem(name, "Field required", type: "missing")
            return nil
        }
        return object(name)
    }

    mutating func object(_ name: String) -> JSONObject? {
        guard let value = value(name) else { return nil }
        guard let object = value.objectValue else {
            problem(name, "Input should be a valid dictionary", type: "dict_type")
            return nil
        }
        return object
    }

    mutating func requiredString(_ name: String, maxLength: Int? = nil) -> String? {
        guard value(name) != nil else {
            problem(name, "Field required", type: "missing")
            return nil
        }
        return string(name, maxLength: maxLength)
    }

    mutating func string(_ name: String, maxLength: Int? = nil) -> String? {
        guard let value = value(name) else { return nil }
        guard let text = value.stringValue else {
            problem(name, "Input should be a valid string", type: "string_type")
            return nil
        }
        if text.utf8.contains(0) {
            problem(name, "String must not contain NUL (\\u0000) characters", type: "string_nul")
            return nil
        }
        // Code points, as PostgreSQL's `varchar(n)` and Python's `len()` count: a limit means the
        // same on both stores and to Python clients.
        if let maxLength, text.unicodeScalars.count > maxLength {
            problem(name, "String should have at most \(maxLength) characters", type: "string_too_long")
            return nil
        }
        return text
    }

    mutating func bool(_ name: String) -> Bool? {
        guard let value = value(name) else { return nil }
        if let flag = value.boolValue { return flag }
        switch value.stringValue?.lowercased() {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default:
            problem(name, "Input should be a valid boolean", type: "bool_type")
            return nil
        }
    }

    mutating func stringArray(_ name: String) -> [String]? {
        guard let value = value(name) else { return nil }
        guard let items = value.arrayValue, items.allSatisfy({ $0.stringValue != nil }) else {
            problem(name, "Input should be a valid list of strings", type: "list_type")
            return nil
        }
        return items.compactMap(\.stringValue)
    }

    /// A whole number in `range`; query values are text and are read as numbers.
    mutating func integer(_ name: String, in range: ClosedRange<Int>) -> Int? {
        guard let value = value(name) else { return nil }
        guard let number = value.intValue ?? value.stringValue.flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }) else {
            problem(name, "Input should be a valid integer", type: "int_parsing")
            return nil
        }
        if number < range.lowerBound {
            problem(name, "Input should be greater than or equal to \(range.lowerBound)", type: "greater_than_equal")
            return nil
        }
        if number > range.upperBound {
            problem(name, "Input should be less than or equal to \(range.upperBound)", type: "less_than_equal")
            return nil
        }
        return number
    }

    mutating func uuid(_ name: String) -> String? {
        guard let text = string(name) else { return nil }
        guard let id = UUID(uuidString: text) else {
            problem(name, "Input should be a valid UUID", type: "uuid_parsing")
            return nil
        }
        return id.uuidString.lowercased()
    }

    /// An ISO-8601 date-time (`2026-11-22T10:00:00Z`, fractions and offsets allowed) or a date.
    mutating func date(_ name: String) -> Date? {
        guard let text = string(name) else { return nil }
        if let date = SQLTimestamp.parse(text) { return date }
        if text.count == 10, let date = SQLTimestamp.parse(text + "T00:00:00Z") { return date }
        problem(name, "Input should be a valid datetime", type: "datetime_parsing")
        return nil
    }

    /// One of `cases`, compared exactly.
    mutating func choice<Choice: RawRepresentable<String>>(_ name: String, as type: Choice.Type, among cases: [Choice]) -> Choice? {
        guard let text = string(name) else { return nil }
        guard let choice = Choice(rawValue: text), cases.contains(where: { $0.rawValue == choice.rawValue }) else {
            let expected = cases.map { "'\($0.rawValue)'" }.joined(separator: ", ")
            problem(name, "Input should be \(expected)", type: "enum")
            return nil
        }
        return choice
    }
}
