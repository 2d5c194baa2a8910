public import BudJSON

/// A value during template evaluation: a JSON value, or Jinja's "undefined" (a missing variable,
/// key or index), which can be chained (`steps.missing.outputs.x` is undefined, not an error).
public enum TemplateValue: Sendable, Equatable {
    case value(JSONValue)
    /// `name` describes what was missing, for messages (e.g. `steps.fetch.outputs.url`).
    case undefined(name: String)

    static let null = TemplateValue.value(.null)

    var json: JSONValue? {
        if case .value(let value) = self { return value }
        return nil
    }

    var isUndefined: Bool {
        if case .undefined = self { return true }
        return false
    }

    /// Python truthiness: `None`, `False`, `0`, `0.0`, `""`, `[]`, `{}` and undefined are false.
    public var isTruthy: Bool {
        guard case .value(let value) = self else { return false }
        switch value {
        case .null: return false
        case .bool(let flag): return flag
        case .int(let number): return number != 0
        case .double(let number): return number != 0
        case .string(let text): return !text.isEmpty
        case .array(let elements): return !elements.isEmpty
        case .object(let members): return !members.isEmpty
        }
    }

    /// The text Jinja renders for the value: Python's `str()`; undefined renders as nothing.
    public var rendered: String {
        switch self {
        case .undefined: ""
        case .value(let value): PythonFormat.str(value)
        }
    }
}

/// Python's text forms of JSON values: templates render values as Jinja does (`True`, `None`,
/// `{'k': 1}`), so text that existing pipelines render stays the same.
public enum PythonFormat {
    /// `str(value)`: strings as they are, everything else as `repr`.
    public static func str(_ value: JSONValue) -> String {
        if case .string(let text) = value { return text }
        return repr(value)
    }

    /// `repr(value)`: `None`, `True`, `1.0`, `'text'`, `[1, 'a']`, `{'k': None}`.
    public static func repr(_ value: JSONValue) -> String {
        var output = ""
        writeRepr(value, to: &output)
        return output
    }

    /// The Python type name of a JSON value: `NoneType`, `bool`, `int`, `float`, `str`, `list`, `dict`.
    public static func typeName(_ value: JSONValue) -> String {
        switch value {
        case .null: "NoneType"
        case .bool: "bool"
        case .int: "int"
        case .double: "float"
        case .string: "str"
        case .array: "list"
        case .object: "dict"
        }
    }

    private static func writeRepr(_ value: JSONValue, to output: inout String) {
        switch value {
        case .null: output += "None"
        case .bool(let flag): output += flag ? "True" : "False"
        case .int(let number): output += String(number)
        case .double(let number): output += float(number)
        case .string(let text): output += quoted(text)
        case .array(let elements):
            output += "["
            for (index, element) in elements.enumerated() {
                if index > 0 { output += ", " }
                writeRepr(element, to: &output)
            }
            output += "]"
        case .object(let members):
            output += "{"
            for (index, member) in members.enumerated() {
                if index > 0 { output += ", " }
                output += quoted(member.key)
                output += ": "
                writeRepr(member.value, to: &output)
            }
            output += "}"
        }
    }

    /// Python's `repr` of a float (Swift's shortest round-trip form agrees with it), with Python's
    /// names for the non-finite values.
    static func float(_ number: Double) -> String {
        if number.isNaN { return "nan" }
        if number.isInfinite { return number < 0 ? "-inf" : "inf" }
        return number.description
    }

    /// Python's string `repr`: single quotes unless the text has a single quote and no double quote.
    private static func quoted(_ text: String) -> String {
        let quote: Character = text.contains("'") && !text.contains("\"") ? "\"" : "'"
        var output = String(quote)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case _ where Character(scalar) == quote: output += "\\\(quote)"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                let hex = String(scalar.value, radix: 16)
                output += "\\x" + (hex.count == 1 ? "0" : "") + hex
            default: output.unicodeScalars.append(scalar)
            }
        }
        output.append(quote)
        return output
    }
}
