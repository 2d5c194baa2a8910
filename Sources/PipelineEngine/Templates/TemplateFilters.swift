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

    static func apply(
        _ name: String, to input: TemplateValue, arguments: EvaluatedArguments, position: Int, budget: inout EvaluationBudget
    ) throws(TemplateError) -> TemplateValue {
        func fail(_ message: String) -> TemplateError {
            TemplateError(.evaluation, "filter '\(name)': \(message)", position: position)
        }
        func requireDefined() throws(TemplateError) -> JSONValue {
            guard case .value(let value) = input else {
                throw TemplateError(.undefined, "filter '\(name)' needs a value, but it is undefined", position: position)
            }
            return value
        }
        /// The input as text, paid for by the characters a filter goes through.
        func text() throws(TemplateError) -> String {
            let text = try budget.render(input, position: position)
            try budget.spend(text.utf8.count, position: position)
            return text
        }
        /// A text result: case mappings can lengthen text (`ß` → `SS`), so it is checked again.
        func textResult(_ result: String) throws(TemplateError) -> TemplateValue {
            try budget.allow(bytes: result.utf8.count, position: position)
            return .value(.string(result))
        }
        func elements(of value: JSONValue) throws(TemplateError) -> [JSONValue] {
            let elements = try sequence(value, fail: fail)
            try budget.spend(elements.count, position: position)
            return elements
        }
        /// The input's elements; an undefined input iterates as an empty sequence, as in Jinja.
        func sequenceOrEmpty() throws(TemplateError) -> [JSONValue] {
            guard case .value(let value) = input else { return [] }
            return try elements(of: value)
        }

        switch name {
        case "default", "d":
            let fallback = arguments.value(0, "default_value") ?? .value(.string(""))
            let useOnFalsy = arguments.value(1, "boolean")?.isTruthy ?? false
            return input.isUndefined || (useOnFalsy && !input.isTruthy) ? fallback : input
        case "upper": return try textResult(try text().uppercased())
        case "lower": return try textResult(try text().lowercased())
        case "capitalize":
            let text = try text()
            return try textResult(text.prefix(1).uppercased() + text.dropFirst().lowercased())
        case "title": return try textResult(titleCase(try text()))
        case "trim":
            let text = try text()
            if let characters = arguments.value(0, "chars")?.json?.stringValue {
                let strip = Set(characters.unicodeScalars)
                return .value(.string(stripped(text) { strip.contains($0) }))
            }
            return .value(.string(stripped(text) { $0.properties.isWhitespace }))
        case "replace":
            guard let oldValue = arguments.value(0, "old"), let newValue = arguments.value(1, "new") else {
                throw fail("needs the text to replace and its replacement")
            }
            let old = try budget.render(oldValue, position: position)
            let new = try budget.render(newValue, position: position)
            var count: Int?
            if let countValue = arguments.value(2, "count"), !countValue.isUndefined, countValue != .null {
                guard let number = countValue.json?.intValue else { throw fail("count must be an integer") }
                count = number
            }
            return .value(.string(try replace(try text(), old, with: new, count: count, position: position, budget: &budget)))
        case "length", "count":
            switch input {
            case .undefined: return .value(.int(0))
            case .value(.string(let text)):
                try budget.spend(text.utf8.count, position: position)
                return .value(.int(text.count))
            case .value(.array(let elements)): return .value(.int(elements.count))
            case .value(.object(let object)): return .value(.int(object.count))
            case .value(let other): throw fail("object of type '\(PythonFormat.typeName(other))' has no len()")
            }
        case "first", "last":
            guard case .value(let value) = input else { return input }
            let elements = try elements(of: value)
            let element = name == "first" ? elements.first : elements.last
            return element.map(TemplateValue.value) ?? .undefined(name: "the \(name) item of an empty sequence")
        case "join":
            guard case .value(let value) = input else { return .value(.string("")) }
            let separator =
                try arguments.value(0, "d").map { value throws(TemplateError) in try budget.render(value, position: position) } ?? ""
            let attribute = arguments.value(1, "attribute")?.json?.stringValue
            var joined = ""
            for (index, element) in try elements(of: value).enumerated() {
                // A missing attribute is undefined, which renders as nothing.
                let item: TemplateValue =
                    if let attribute { element[attribute].map(TemplateValue.value) ?? .undefined(name: attribute) } else { .value(element) }
                let part = try budget.render(item, position: position)
                let added = part.utf8.count + (index > 0 ? separator.utf8.count : 0)
                try budget.allow(bytes: joined.utf8.count + added, position: position)
                try budget.spend(added, position: position)
                if index > 0 { joined += separator }
                joined += part
            }
            return .value(.string(joined))
        case "int":
            _ = try requireDefined()
            let fallback = arguments.value(0, "default")?.json ?? .int(0)
            // Jinja reads a string in `base`; when that fails (a base outside 0 and 2–36 included)
            // it reads the value as a float and truncates it, and else gives the default.
            var base: Int? = 10
            if let baseValue = arguments.value(1, "base"), !baseValue.isUndefined {
                base = baseValue.json.flatMap(TemplateEvaluator.integer).flatMap { $0 == 0 || (2...36).contains($0) ? $0 : nil }
            }
            if case .value(.string(let text)) = input { try budget.spend(text.utf8.count, position: position) }
            return .value(toInteger(input.json, base: base).map(JSONValue.int) ?? fallback)
        case "float":
            _ = try requireDefined()
            let fallback = arguments.value(0, "default")?.json ?? .double(0)
            if case .value(.string(let text)) = input { try budget.spend(text.utf8.count, position: position) }
            return .value(toDouble(input.json).map(JSONValue.double) ?? fallback)
        case "string":
            return .value(.string(try budget.render(input, position: position)))
        case "tojson":
            var indent: Int?
            if let indentValue = arguments.value(0, "indent"), !indentValue.isUndefined, indentValue != .null {
                guard let number = indentValue.json.flatMap(TemplateEvaluator.integer) else { throw fail("indent must be an integer") }
                // Python writes a negative indent as no indent at all, with the line breaks.
                indent = max(0, number)
            }
            let value = try requireDefined()
            guard let text = PythonJSON.dumps(value, indent: indent, limit: budget.limits.maximumValueBytes) else {
                try budget.allow(bytes: nil, position: position)
                return .value(.string(""))
            }
            try budget.spend(text.utf8.count, position: position)
            return .value(.string(text))
        case "abs":
            switch try requireDefined() {
            case .int(let number):
                guard number != Int.min else { throw TemplateEvaluator.overflow("abs(\(number))", position: position) }
                return .value(.int(abs(number)))
            case .double(let number): return .value(.double(abs(number)))
            case .bool(let flag): return .value(.int(flag ? 1 : 0))
            case let other: throw fail("bad operand type for abs(): '\(PythonFormat.typeName(other))'")
            }
        case "round":
            guard let given = TemplateEvaluator.number(try requireDefined()) else { throw fail("needs a number") }
            let number = given.double
            var precision = 0
            if let precisionValue = arguments.value(0, "precision"), !precisionValue.isUndefined {
                guard let digits = precisionValue.json.flatMap(TemplateEvaluator.integer) else {
                    throw fail("precision must be an integer")
                }
                precision = digits
            }
            let method = arguments.value(1, "method")?.json?.stringValue ?? "common"
            let rule: FloatingPointRoundingRule
            switch method {
            case "common": rule = .toNearestOrEven
            case "ceil": rule = .up
            case "floor": rule = .down
            default: throw fail("method must be common, ceil or floor")
            }
            // Python's round() of an integer is an integer; ceil and floor divide, giving a float.
            if case .integer(let integer) = given, method == "common" {
                guard let rounded = roundInteger(integer, precision: precision) else {
                    throw TemplateEvaluator.overflow("round(\(integer), \(precision))", position: position)
                }
                return .value(.int(rounded))
            }
            return .value(.double(round(number, precision: precision, rule: rule)))
        case "list":
            return .value(.array(try sequenceOrEmpty()))
        case "reverse":
            guard case .value(let value) = input else { return .value(.array([])) }
            switch value {
            case .string(let text):
                try budget.spend(text.utf8.count, position: position)
                return .value(.string(String(text.reversed())))
            case let value: return .value(.array(try elements(of: value).reversed()))
            }
        case "sort":
            let reverse = arguments.value(0, "reverse")?.isTruthy ?? false
            let caseSensitive = arguments.value(1, "case_sensitive")?.isTruthy ?? false
            let attribute = arguments.value(2, "attribute")?.json?.stringValue
            let elements = try sequenceOrEmpty()
            // A comparison sort makes about n·log2(n) comparisons.
            try budget.spend(elements.count * max(1, Int.bitWidth - elements.count.leadingZeroBitCount), position: position)
            let keys = elements.map { sortKey($0, attribute: attribute, caseSensitive: caseSensitive) }
            var sortError: TemplateError?
            // Python's sort is stable, also in reverse: equal elements keep their order.
            let order = elements.indices.sorted { left, right in
                guard sortError == nil else { return false }
                // Equal keys need no ordering (Python compares Jinja's key lists for equality first).
                if TemplateEvaluator.equal(keys[left], keys[right]) { return left < right }
                do throws(TemplateError) {
                    let ordering = try TemplateEvaluator.order(keys[left], keys[right], .less, position: position)
                    if ordering == 0 { return left < right }
                    return reverse ? ordering > 0 : ordering < 0
                } catch {
                    sortError = error
                    return false
                }
            }
            if let sortError { throw sortError }
            return .value(.array(order.map { elements[$0] }))
        case "unique":
            let caseSensitive = arguments.value(0, "case_sensitive")?.isTruthy ?? false
            let attribute = arguments.value(1, "attribute")?.json?.stringValue
            var unique: [JSONValue] = []
            var seen: [JSONValue] = []
            for element in try sequenceOrEmpty() {
                let key = sortKey(element, attribute: attribute, caseSensitive: caseSensitive)
                if case .array = key { throw fail("unhashable type: 'list'") }
                if case .object = key { throw fail("unhashable type: 'dict'") }
                try budget.spend(seen.count, position: position)
                if !seen.contains(where: { TemplateEvaluator.equal($0, key) }) {
                    seen.append(key)
                    unique.append(element)
                }
            }
            return .value(.array(unique))
        case "min", "max":
            let caseSensitive = arguments.value(0, "case_sensitive")?.isTruthy ?? false
            let attribute = arguments.value(1, "attribute")?.json?.stringValue
            let elements = try sequenceOrEmpty()
            guard var best = elements.first else {
                return .undefined(name: "the \(name) of an empty sequence")
            }
            var bestKey = sortKey(best, attribute: attribute, caseSensitive: caseSensitive)
            for element in elements.dropFirst() {
                let key = sortKey(element, attribute: attribute, caseSensitive: caseSensitive)
                let ordering = try TemplateEvaluator.order(key, bestKey, .less, position: position)
                if name == "min" ? ordering < 0 : ordering > 0 {
                    best = element
                    bestKey = key
                }
            }
            return .value(best)
        case "sum":
            let attribute = arguments.value(0, "attribute")?.json?.stringValue
            var total = arguments.value(1, "start")?.json ?? .int(0)
            for element in try sequenceOrEmpty() {
                var item = element
                if let attribute {
                    guard let value = element[attribute] else {
                        throw TemplateError(.undefined, "filter 'sum': an element has no '\(attribute)'", position: position)
                    }
                    item = value
                }
                guard let a = TemplateEvaluator.number(total), let b = TemplateEvaluator.number(item) else {
                    throw fail("can only sum numbers, got '\(PythonFormat.typeName(item))'")
                }
                if case .integer(let x) = a, case .integer(let y) = b {
                    let (result, overflow) = x.addingReportingOverflow(y)
                    guard !overflow else { throw TemplateEvaluator.overflow("the sum \(x) + \(y)", position: position) }
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
        guard case .value(let value) = input else {
            // These need arithmetic on the value, which an undefined value cannot do.
            if ["even", "odd", "divisibleby"].contains(name) {
                throw TemplateError(.undefined, "test '\(name)' needs a value, but it is undefined", position: position)
            }
            return false
        }
        switch name {
        case "none": return value.isNull
        case "boolean": return value.boolValue != nil
        case "true": return value == .bool(true)
        case "false": return value == .bool(false)
        case "number":
            // Python's booleans are numbers too.
            return TemplateEvaluator.number(value) != nil
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
            guard let number = TemplateEvaluator.number(value) else {
                throw TemplateError(.evaluation, "test '\(name)' needs a number", position: position)
            }
            // Python: `value % 2 == 0` and `value % 2 == 1` (0.5 is neither).
            return name == "even" ? isMultiple(number, of: .integer(2)) : pythonModulo(number, 2) == 1
        case "divisibleby":
            guard let number = TemplateEvaluator.number(value),
                let divisor = arguments.value(0, "num")?.json.flatMap(TemplateEvaluator.number)
            else { throw TemplateError(.evaluation, "test 'divisibleby' needs two numbers", position: position) }
            guard divisor.double != 0 else { throw TemplateError(.evaluation, "integer division or modulo by zero", position: position) }
            return isMultiple(number, of: divisor)
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

    /// Jinja's `int`: strings in `base` (0: the prefix says, as Python's `int(text, 0)`), floats
    /// truncated, anything else not convertible. Values outside the 64-bit range do not convert.
    private static func toInteger(_ value: JSONValue?, base: Int?) -> Int? {
        switch value {
        case .int(let number): return number
        case .bool(let flag): return flag ? 1 : 0
        case .double(let number): return integer(truncating: number)
        case .string(let text):
            let trimmed = stripped(text) { $0.properties.isWhitespace }
            if let base, let digits = withoutDigitSeparators(trimmed), let number = parseInteger(digits, base: base) { return number }
            return toDouble(.string(trimmed)).flatMap(integer(truncating:))
        default: return nil
        }
    }

    /// `text` without the underscores Python allows between digits; `nil` when one stands
    /// anywhere else (`_1`, `1__0`, `1_`).
    private static func withoutDigitSeparators(_ text: String) -> String? {
        let scalars = Array(text.unicodeScalars)
        var kept = String.UnicodeScalarView()
        for (index, scalar) in scalars.enumerated() {
            guard scalar == "_" else {
                kept.append(scalar)
                continue
            }
            guard index > 0, index + 1 < scalars.count, scalars[index - 1].properties.isASCIIHexDigit,
                scalars[index + 1].properties.isASCIIHexDigit
            else { return nil }
        }
        return String(kept)
    }

    /// `number` without its fraction, when that fits in an `Int`.
    private static func integer(truncating number: Double) -> Int? {
        guard number.isFinite, abs(number) < 9.2e18 else { return nil }
        return Int(number.rounded(.towardZero))
    }

    /// An integer written in `base` (2–36, or 0 for Python's prefixes `0x`, `0o`, `0b`, else 10),
    /// with an optional sign and, where it matches the base, its prefix.
    private static func parseInteger(_ text: String, base: Int) -> Int? {
        var digits = Substring(text)
        var negative = false
        if let sign = digits.first, sign == "+" || sign == "-" {
            negative = sign == "-"
            digits = digits.dropFirst()
        }
        var radix = base == 0 ? 10 : base
        let prefixes: [(prefix: String, radix: Int)] = [("0x", 16), ("0o", 8), ("0b", 2)]
        for (prefix, prefixRadix) in prefixes where digits.lowercased().hasPrefix(prefix) && (base == 0 || base == prefixRadix) {
            digits = digits.dropFirst(2)
            radix = prefixRadix
        }
        guard !digits.isEmpty, digits.first != "+", digits.first != "-", let magnitude = UInt(digits, radix: radix) else { return nil }
        if negative {
            guard magnitude <= UInt(Int.max) + 1 else { return nil }
            return magnitude == UInt(Int.max) + 1 ? Int.min : -Int(magnitude)
        }
        guard magnitude <= UInt(Int.max) else { return nil }
        return Int(magnitude)
    }

    private static func toDouble(_ value: JSONValue?) -> Double? {
        switch value {
        case .int(let number): return Double(number)
        case .double(let number): return number
        case .bool(let flag): return flag ? 1 : 0
        case .string(let text):
            let trimmed = stripped(text) { $0.properties.isWhitespace }.lowercased()
            switch trimmed {
            case "inf", "+inf", "infinity", "+infinity": return .infinity
            case "-inf", "-infinity": return -.infinity
            case "nan", "+nan", "-nan": return .nan
            default: return decimalLiteral(trimmed).flatMap { Double($0) }
            }
        default: return nil
        }
    }

    /// `text` without its underscores when it is a decimal number as Python's `float()` reads one
    /// (sign, digits with single underscores between them, fraction, exponent); `nil` otherwise —
    /// in particular for the hexadecimal forms Swift's `Double(_:)` would take.
    private static func decimalLiteral(_ text: String) -> String? {
        var digits = ""
        var previous: Unicode.Scalar?
        var sawDigit = false
        for scalar in text.unicodeScalars {
            switch scalar {
            case "0"..."9":
                sawDigit = true
                digits.unicodeScalars.append(scalar)
            case "_":
                guard let before = previous, ("0"..."9").contains(before) else { return nil }
            case "+", "-":
                guard previous == nil || previous == "e" else { return nil }
                digits.unicodeScalars.append(scalar)
            case ".", "e":
                guard previous != "_" else { return nil }
                digits.unicodeScalars.append(scalar)
            default:
                return nil
            }
            if previous == "_", !("0"..."9").contains(scalar) { return nil }
            previous = scalar
        }
        return sawDigit && previous != "_" ? digits : nil
    }

    /// Jinja's `title`: the text is cut before and after runs of white space, `-`, `(`, `{`, `[`
    /// and `<`; each piece gets its first character upper case and the rest lower case.
    private static func titleCase(_ text: String) -> String {
        func isBreak(_ character: Character) -> Bool { character.isWhitespace || "-({[<".contains(character) }
        var result = ""
        var piece = ""
        var pieceIsBreak = false
        func flush() {
            guard let first = piece.first else { return }
            result += first.uppercased() + piece.dropFirst().lowercased()
            piece = ""
        }
        for character in text {
            if !piece.isEmpty, isBreak(character) != pieceIsBreak { flush() }
            pieceIsBreak = isBreak(character)
            piece.append(character)
        }
        flush()
        return result
    }

    /// What `sort`, `min`, `max` and `unique` compare: the element or its attribute, and text in
    /// lower case unless asked otherwise (Jinja's default).
    private static func sortKey(_ element: JSONValue, attribute: String?, caseSensitive: Bool) -> JSONValue {
        let value = attribute.flatMap { element[$0] } ?? (attribute == nil ? element : .null)
        if !caseSensitive, case .string(let text) = value { return .string(text.lowercased()) }
        return value
    }

    /// Python's `number % divisor == 0`, for integers and floats (`divisor` is not zero).
    private static func isMultiple(_ number: TemplateEvaluator.Number, of divisor: TemplateEvaluator.Number) -> Bool {
        if case .integer(let value) = number, case .integer(let by) = divisor {
            // Int.min % -1 overflows in Swift; every integer is divisible by -1.
            let (remainder, overflow) = value.remainderReportingOverflow(dividingBy: by)
            return overflow || remainder == 0
        }
        let remainder = number.double.truncatingRemainder(dividingBy: divisor.double)
        return remainder == 0
    }

    /// Python's `number % divisor` as a double, for the odd test.
    private static func pythonModulo(_ number: TemplateEvaluator.Number, _ divisor: Double) -> Double {
        if case .integer(let value) = number { return Double(((value % 2) + 2) % 2) }
        let remainder = number.double.truncatingRemainder(dividingBy: divisor)
        return remainder < 0 ? remainder + divisor : remainder
    }

    /// Python's `round(integer, precision)`: the integer itself for a precision of 0 or more, else
    /// rounded half to even at that power of ten; `nil` when the result leaves the 64-bit range.
    static func roundInteger(_ value: Int, precision: Int) -> Int? {
        guard precision < 0 else { return value }
        guard precision > -19 else { return 0 }
        var scale = 1
        for _ in 0..<(-precision) { scale *= 10 }
        let (quotient, remainder) = value.quotientAndRemainder(dividingBy: scale)
        // Python floors: make the remainder non-negative.
        var floor = quotient
        var rest = remainder
        if rest < 0 {
            floor -= 1
            rest += scale
        }
        let twice = rest * 2
        if twice > scale || (twice == scale && floor % 2 != 0) { floor += 1 }
        let (result, overflow) = floor.multipliedReportingOverflow(by: scale)
        return overflow ? nil : result
    }

    /// Python's `str.replace`: at most `count` occurrences (all when `nil` or negative), left to
    /// right; an empty `old` inserts `new` before every character and at the end. The result's
    /// size is checked before it is built.
    private static func replace(
        _ text: String, _ old: String, with new: String, count: Int?, position: Int, budget: inout EvaluationBudget
    ) throws(TemplateError) -> String {
        let limit = count.flatMap { $0 >= 0 ? $0 : nil } ?? Int.max
        guard limit > 0 else { return text }
        let scalars = Array(text.unicodeScalars)
        let oldLength = old.unicodeScalars.count
        let matches = ScalarSearch(old).matches(in: scalars, limit: limit)
        let growth = new.utf8.count - old.utf8.count
        let (extra, overflow) = growth.multipliedReportingOverflow(by: matches.count)
        let size = overflow ? nil : text.utf8.count.addingReportingOverflow(extra).partialValue
        try budget.allow(bytes: size, position: position)
        try budget.spend(scalars.count + (size ?? 0), position: position)
        var result = String.UnicodeScalarView()
        var copied = 0
        for start in matches {
            result.append(contentsOf: scalars[copied..<start])
            result.append(contentsOf: new.unicodeScalars)
            copied = start + oldLength
        }
        result.append(contentsOf: scalars[min(copied, scalars.count)...])
        return String(result)
    }

    /// `text` without the code points `strip` matches at either end (Python's `str.strip`).
    private static func stripped(_ text: String, _ strip: (Unicode.Scalar) -> Bool) -> String {
        let scalars = text.unicodeScalars
        guard let first = scalars.firstIndex(where: { !strip($0) }), let last = scalars.lastIndex(where: { !strip($0) }) else {
            return ""
        }
        return String(scalars[first...last])
    }

    /// Python's `round(number, precision)`: a precision beyond what a double holds leaves the
    /// number as it is; far below it gives zero.
    private static func round(_ number: Double, precision: Int, rule: FloatingPointRoundingRule) -> Double {
        guard number.isFinite else { return number }
        if precision > 308 { return number }
        if precision < -308 { return (0.0).rounded(rule) * (number < 0 ? -1 : 1) }
        let scale = pow(10, Double(precision))
        let scaled = number * scale
        guard scaled.isFinite else { return number }
        let result = scaled.rounded(rule) / scale
        return result.isFinite ? result : number
    }
}

/// Python's `json.dumps` as Jinja's `tojson` calls it: sorted keys, `", "` and `": "` separators,
/// non-ASCII escaped, and `<`, `>`, `&`, `'` escaped so the result is safe inside HTML.
enum PythonJSON {
    /// The JSON text, or `nil` when it would be longer than `limit` bytes (the writing stops there).
    static func dumps(_ value: JSONValue, indent: Int?, limit: Int = .max) -> String? {
        var writer = Writer(indent: indent, limit: limit)
        writer.write(value, level: 0)
        return writer.exceeded ? nil : writer.output
    }

    private struct Writer {
        let indent: Int?
        let limit: Int
        var output = ""
        var exceeded = false

        mutating func write(_ value: JSONValue, level: Int) {
            guard !exceeded else { return }
            switch value {
            case .null: output += "null"
            case .bool(let flag): output += flag ? "true" : "false"
            case .int(let number): output += String(number)
            case .double(let number):
                output += number.isNaN ? "NaN" : number.isInfinite ? (number < 0 ? "-Infinity" : "Infinity") : number.description
            case .string(let text): PythonJSON.writeString(text, to: &output)
            case .array(let elements):
                guard !elements.isEmpty else {
                    output += "[]"
                    return
                }
                output += "["
                for (index, element) in elements.enumerated() {
                    separator(first: index == 0, level: level + 1)
                    write(element, level: level + 1)
                    guard !exceeded else { return }
                }
                closing("]", level: level)
            case .object(let object):
                guard !object.isEmpty else {
                    output += "{}"
                    return
                }
                output += "{"
                let members = object.sorted { $0.key.unicodeScalars.lexicographicallyPrecedes($1.key.unicodeScalars) }
                for (index, member) in members.enumerated() {
                    separator(first: index == 0, level: level + 1)
                    PythonJSON.writeString(member.key, to: &output)
                    output += ": "
                    write(member.value, level: level + 1)
                    guard !exceeded else { return }
                }
                closing("}", level: level)
            }
            if output.utf8.count > limit { exceeded = true }
        }

        private mutating func separator(first: Bool, level: Int) {
            if indent != nil {
                if !first { output += "," }
                newline(level: level)
            } else if !first {
                output += ", "
            }
        }

        private mutating func closing(_ bracket: String, level: Int) {
            if indent != nil { newline(level: level) }
            output += bracket
        }

        /// A line break and the indentation of `level`, unless that would pass the limit.
        private mutating func newline(level: Int) {
            let (spaces, overflow) = (indent ?? 0).multipliedReportingOverflow(by: level)
            guard !overflow, spaces <= limit - output.utf8.count else {
                exceeded = true
                return
            }
            output += "\n" + String(repeating: " ", count: spaces)
        }
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
