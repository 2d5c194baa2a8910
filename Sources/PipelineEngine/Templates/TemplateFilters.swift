import BudJSON
import Foundation

/// The filters (`value | name(arguments)`) and tests (`value is name`) templates may use.
enum TemplateFilters {
    /// Every filter name, for validation and documentation.
    static let filterNames: Set<String> = [
        "abs", "capitalize", "count", "d", "default", "first", "float", "int", "join", "last", "length", "list", "lower", "max",
        "min", "replace", "reverse", "round", "sort", "string", "sum", "title", "tojson", "trim", "unique", "upper",
    ]

    /// Every test name.
    static let testNames: Set<String> = [
        "boolean", "defined", "divisibleby", "even", "false", "float", "integer", "iterable", "mapping", "none", "number", "odd",
        "sequence", "string", "true", "undefined",
    ]

    static func apply(_ name: String, to input: TemplateValue, arguments: EvaluatedArguments, position: Int) throws(TemplateError)
        -> TemplateValue
    {
        func fail(_ message: String) -> TemplateError {
            TemplateError(.evaluation, "filter '\(name)': \(message)", position: position)
        }
        func requireDefined() throws(TemplateError) -> JSONValue {
            guard case .value(let value) = input else {
                throw TemplateError(.undefined, "filter '\(name)' needs a value, but it is undefined", position: position)
            }
            return value
        }

        switch name {
        case "default", "d":
            let fallback = arguments.value(0, "default_value") ?? .value(.string(""))
            let useOnFalsy = arguments.value(1, "boolean")?.isTruthy ?? false
            return input.isUndefined || (useOnFalsy && !input.isTruthy) ? fallback : input
        case "upper": return .value(.string(input.rendered.uppercased()))
        case "lower": return .value(.string(input.rendered.lowercased()))
        case "capitalize":
            let text = input.rendered
            return .value(.string(text.prefix(1).uppercased() + text.dropFirst().lowercased()))
        case "title": return .value(.string(titleCase(input.rendered)))
        case "trim":
            if let characters = arguments.value(0, "chars")?.json?.stringValue {
                return .value(.string(input.rendered.trimmingCharacters(in: CharacterSet(charactersIn: characters))))
            }
            return .value(.string(input.rendered.trimmingCharacters(in: .whitespacesAndNewlines)))
        case "replace":
            guard let old = arguments.value(0, "old")?.rendered, let new = arguments.value(1, "new")?.rendered else {
                throw fail("needs the text to replace and its replacement")
            }
            return .value(.string(replace(input.rendered, old, with: new, count: arguments.value(2, "count")?.json?.intValue)))
        case "length", "count":
            switch input {
            case .undefined: return .value(.int(0))
            case .value(.string(let text)): return .value(.int(text.count))
            case .value(.array(let elements)): return .value(.int(elements.count))
            case .value(.object(let object)): return .value(.int(object.count))
            case .value(let other): throw fail("object of type '\(PythonFormat.typeName(other))' has no len()")
            }
        case "first", "last":
            guard case .value(let value) = input else { return input }
            let elements = try sequence(value, fail: fail)
            let element = name == "first" ? elements.first : elements.last
            return element.map(TemplateValue.value) ?? .undefined(name: "the \(name) item of an empty sequence")
        case "join":
            guard case .value(let value) = input else { return .value(.string("")) }
            let separator = arguments.value(0, "d")?.rendered ?? ""
            let attribute = arguments.value(1, "attribute")?.json?.stringValue
            let parts = try sequence(value, fail: fail).map { element in
                PythonFormat.str(attribute.flatMap { element[$0] } ?? (attribute == nil ? element : .null))
            }
            return .value(.string(parts.joined(separator: separator)))
        case "int":
            let fallback = arguments.value(0, "default")?.json ?? .int(0)
            let base = arguments.value(1, "base")?.json?.intValue ?? 10
            return .value(toInteger(input.json, base: base).map(JSONValue.int) ?? fallback)
        case "float":
            let fallback = arguments.value(0, "default")?.json ?? .double(0)
            return .value(toDouble(input.json).map(JSONValue.double) ?? fallback)
        case "string":
            return .value(.string(input.rendered))
        case "tojson":
            let indent = arguments.value(0, "indent")?.json?.intValue
            return .value(.string(PythonJSON.dumps(try requireDefined(), indent: indent)))
        case "abs":
            switch try requireDefined() {
            case .int(let number): return .value(.int(number == Int.min ? number : abs(number)))
            case .double(let number): return .value(.double(abs(number)))
            case .bool(let flag): return .value(.int(flag ? 1 : 0))
            case let other: throw fail("bad operand type for abs(): '\(PythonFormat.typeName(other))'")
            }
        case "round":
            guard let number = TemplateEvaluator.number(try requireDefined())?.double else { throw fail("needs a number") }
            let precision = arguments.value(0, "precision")?.json?.intValue ?? 0
            let method = arguments.value(1, "method")?.json?.stringValue ?? "common"
            let scale = pow(10, Double(precision))
            let rule: FloatingPointRoundingRule
            switch method {
            case "common": rule = .toNearestOrEven
            case "ceil": rule = .up
            case "floor": rule = .down
            default: throw fail("method must be common, ceil or floor")
            }
            return .value(.double((number * scale).rounded(rule) / scale))
        case "list":
            return .value(.array(try sequence(try requireDefined(), fail: fail)))
        case "reverse":
            switch try requireDefined() {
            case .string(let text): return .value(.string(String(text.reversed())))
            case let value: return .value(.array(try sequence(value, fail: fail).reversed()))
            }
        case "sort":
            let reverse = arguments.value(0, "reverse")?.isTruthy ?? false
            let attribute = arguments.value(2, "attribute")?.json?.stringValue
            let elements = try sequence(try requireDefined(), fail: fail)
            var sortError: TemplateError?
            let sorted = elements.sorted { left, right in
                let a = attribute.flatMap { left[$0] } ?? left
                let b = attribute.flatMap { right[$0] } ?? right
                do throws(TemplateError) {
                    return try TemplateEvaluator.order(a, b, .less, position: position) < 0
                } catch {
                    sortError = error
                    return false
                }
            }
            if let sortError { throw sortError }
            return .value(.array(reverse ? sorted.reversed() : sorted))
        case "unique":
            var unique: [JSONValue] = []
            for element in try sequence(try requireDefined(), fail: fail)
            where !unique.contains(where: { TemplateEvaluator.equal($0, element) }) {
                unique.append(element)
            }
            return .value(.array(unique))
        case "min", "max":
            let elements = try sequence(try requireDefined(), fail: fail)
            guard var best = elements.first else {
                return .undefined(name: "the \(name) of an empty sequence")
            }
            for element in elements.dropFirst() {
                let ordering = try TemplateEvaluator.order(element, best, .less, position: position)
                if name == "min" ? ordering < 0 : ordering > 0 { best = element }
            }
            return .value(best)
        case "sum":
            let attribute = arguments.value(0, "attribute")?.json?.stringValue
            var total = arguments.value(1, "start")?.json ?? .int(0)
            for element in try sequence(try requireDefined(), fail: fail) {
                let item = attribute.flatMap { element[$0] } ?? element
                guard let a = TemplateEvaluator.number(total), let b = TemplateEvaluator.number(item) else {
                    throw fail("can only sum numbers, got '\(PythonFormat.typeName(item))'")
                }
                if case .integer(let x) = a, case .integer(let y) = b, case (let result, false) = x.addingReportingOverflow(y) {
                    total = .int(result)
                } else {
                    total = .double(a.double + b.double)
                }
            }
            return .value(total)
        default:
            throw TemplateError(.evaluation, "no filter named '\(name)'", position: position)
        }
    }

    static func test(_ name: String, _ input: TemplateValue, arguments: EvaluatedArguments, position: Int) throws(TemplateError) -> Bool {
        switch name {
        case "defined": return !input.isUndefined
        case "undefined": return input.isUndefined
        default: break
        }
        guard case .value(let value) = input else { return false }
        switch name {
        case "none": return value.isNull
        case "boolean": return value.boolValue != nil
        case "true": return value == .bool(true)
        case "false": return value == .bool(false)
        case "number":
            if case .int = value { return true }
            if case .double = value { return true }
            return false
        case "integer":
            if case .int = value { return true }
            return false
        case "float":
            if case .double = value { return true }
            return false
        case "string": return value.stringValue != nil
        case "mapping": return value.objectValue != nil
        case "sequence", "iterable": return value.stringValue != nil || value.arrayValue != nil || value.objectValue != nil
        case "even", "odd":
            guard let number = TemplateEvaluator.integer(value) else {
                throw TemplateError(.evaluation, "test '\(name)' needs an integer", position: position)
            }
            return (number % 2 == 0) == (name == "even")
        case "divisibleby":
            guard let number = TemplateEvaluator.integer(value),
                let divisor = arguments.value(0, "num")?.json.flatMap(TemplateEvaluator.integer), divisor != 0
            else { throw TemplateError(.evaluation, "test 'divisibleby' needs an integer and a non-zero divisor", position: position) }
            return number % divisor == 0
        default:
            throw TemplateError(.evaluation, "no test named '\(name)'", position: position)
        }
    }

    // MARK: Helpers

    /// What Python iterates: a list's elements, a string's characters, a dictionary's keys.
    private static func sequence(_ value: JSONValue, fail: (String) -> TemplateError) throws(TemplateError) -> [JSONValue] {
        switch value {
        case .array(let elements): return elements
        case .string(let text): return text.map { .string(String($0)) }
        case .object(let object): return object.keys.map(JSONValue.string)
        default: throw fail("'\(PythonFormat.typeName(value))' object is not iterable")
        }
    }

    /// Jinja's `int`: strings in `base`, floats truncated, anything else not convertible.
    private static func toInteger(_ value: JSONValue?, base: Int) -> Int? {
        switch value {
        case .int(let number): return number
        case .bool(let flag): return flag ? 1 : 0
        case .double(let number): return number.isFinite && abs(number) < 9.2e18 ? Int(number) : nil
        case .string(let text):
            let trimmed = text.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "_", with: "")
            if let number = Int(trimmed, radix: base) { return number }
            return toDouble(.string(trimmed)).flatMap { abs($0) < 9.2e18 ? Int($0) : nil }
        default: return nil
        }
    }

    private static func toDouble(_ value: JSONValue?) -> Double? {
        switch value {
        case .int(let number): return Double(number)
        case .double(let number): return number
        case .bool(let flag): return flag ? 1 : 0
        case .string(let text):
            let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
            switch trimmed {
            case "inf", "+inf", "infinity": return .infinity
            case "-inf", "-infinity": return -.infinity
            case "nan": return .nan
            default: return Double(trimmed.replacingOccurrences(of: "_", with: ""))
            }
        default: return nil
        }
    }

    private static func titleCase(_ text: String) -> String {
        var result = ""
        var previousIsLetter = false
        for character in text {
            result += previousIsLetter ? character.lowercased() : character.uppercased()
            previousIsLetter = character.isLetter
        }
        return result
    }

    private static func replace(_ text: String, _ old: String, with new: String, count: Int?) -> String {
        guard let count, count >= 0 else { return text.replacingOccurrences(of: old, with: new) }
        var result = text
        var searchStart = result.startIndex
        for _ in 0..<count {
            guard let range = result.range(of: old, range: searchStart..<result.endIndex) else { break }
            result.replaceSubrange(range, with: new)
            searchStart = result.index(range.lowerBound, offsetBy: new.count)
        }
        return result
    }
}

/// Python's `json.dumps` as Jinja's `tojson` calls it: sorted keys, `", "` and `": "` separators,
/// non-ASCII escaped, and `<`, `>`, `&`, `'` escaped so the result is safe inside HTML.
enum PythonJSON {
    static func dumps(_ value: JSONValue, indent: Int?) -> String {
        var output = ""
        write(value, indent: indent, level: 0, to: &output)
        return output
    }

    private static func write(_ value: JSONValue, indent: Int?, level: Int, to output: inout String) {
        switch value {
        case .null: output += "null"
        case .bool(let flag): output += flag ? "true" : "false"
        case .int(let number): output += String(number)
        case .double(let number):
            output += number.isNaN ? "NaN" : number.isInfinite ? (number < 0 ? "-Infinity" : "Infinity") : number.description
        case .string(let text): writeString(text, to: &output)
        case .array(let elements):
            guard !elements.isEmpty else {
                output += "[]"
                return
            }
            output += "["
            for (index, element) in elements.enumerated() {
                separator(first: index == 0, indent: indent, level: level + 1, to: &output)
                write(element, indent: indent, level: level + 1, to: &output)
            }
            closing("]", indent: indent, level: level, to: &output)
        case .object(let object):
            guard !object.isEmpty else {
                output += "{}"
                return
            }
            output += "{"
            let members = object.sorted { $0.key.unicodeScalars.lexicographicallyPrecedes($1.key.unicodeScalars) }
            for (index, member) in members.enumerated() {
                separator(first: index == 0, indent: indent, level: level + 1, to: &output)
                writeString(member.key, to: &output)
                output += ": "
                write(member.value, indent: indent, level: level + 1, to: &output)
            }
            closing("}", indent: indent, level: level, to: &output)
        }
    }

    private static func separator(first: Bool, indent: Int?, level: Int, to output: inout String) {
        if let indent {
            if !first { output += "," }
            output += "\n" + String(repeating: " ", count: indent * level)
        } else if !first {
            output += ", "
        }
    }

    private static func closing(_ bracket: String, indent: Int?, level: Int, to output: inout String) {
        if let indent { output += "\n" + String(repeating: " ", count: indent * level) }
        output += bracket
    }

    private static func writeString(_ text: String, to output: inout String) {
        output += "\""
        for unit in text.utf16 {
            switch unit {
            case 0x22: output += "\\\""
            case 0x5C: output += "\\\\"
            case 0x0A: output += "\\n"
            case 0x0D: output += "\\r"
            case 0x09: output += "\\t"
            case 0x08: output += "\\b"
            case 0x0C: output += "\\f"
            case 0x3C, 0x3E, 0x26, 0x27, 0..<0x20, 0x7F...:
                let hex = String(unit, radix: 16)
                output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: output.unicodeScalars.append(Unicode.Scalar(unit) ?? "?")
            }
        }
        output += "\""
    }
}
