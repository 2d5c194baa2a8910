public import BudJSON
import Foundation

/// The variables a template can read, by root name (`params`, `steps`).
public struct TemplateScope: Sendable {
    public var variables: [String: JSONValue]

    public init(_ variables: [String: JSONValue] = [:]) {
        self.variables = variables
    }
}

extension Template {
    /// Evaluates the template.
    ///
    /// A template that is one `{{ expression }}` (white space around it allowed) yields the
    /// expression's own value — a number stays a number, a list a list. Any other template renders
    /// to text. Undefined values render as nothing; when evaluation needs an undefined value (say,
    /// arithmetic on a missing variable) the whole template yields `""`, as the reference does.
    /// Type errors and bad filter arguments throw.
    public func evaluate(in scope: TemplateScope) throws(TemplateError) -> JSONValue {
        let evaluator = TemplateEvaluator(scope: scope)
        do {
            if let expression = singleExpression {
                switch try evaluator.evaluate(expression) {
                case .value(let value): return value
                case .undefined: return .string("")
                }
            }
            var text = ""
            for segment in segments {
                switch segment {
                case .text(let literal): text += literal
                case .expression(let expression): text += try evaluator.evaluate(expression).rendered
                }
            }
            return .string(text)
        } catch  where error.kind == .undefined {
            return .string("")
        }
    }

    /// Evaluates the template's single expression (or its rendered text) without turning an
    /// undefined result into `""`: what conditions need.
    func evaluateKeepingUndefined(in scope: TemplateScope) throws(TemplateError) -> TemplateValue {
        let evaluator = TemplateEvaluator(scope: scope)
        if let expression = singleExpression { return try evaluator.evaluate(expression) }
        var text = ""
        for segment in segments {
            switch segment {
            case .text(let literal): text += literal
            case .expression(let expression): text += try evaluator.evaluate(expression).rendered
            }
        }
        return .value(.string(text))
    }
}

/// Evaluates expressions with Python's (Jinja's) semantics over JSON values.
struct TemplateEvaluator {
    let scope: TemplateScope

    func evaluate(_ expression: Expression) throws(TemplateError) -> TemplateValue {
        switch expression {
        case .literal(let value):
            return .value(value)
        case .variable(let name, _):
            guard let value = scope.variables[name] else { return .undefined(name: name) }
            return .value(value)
        case .attribute(let base, let name, _):
            return member(of: try evaluate(base), name, describing: expression)
        case .subscript(let base, let key, let position):
            return try subscriptValue(try evaluate(base), try evaluate(key), position: position, describing: expression)
        case .list(let elements):
            var values: [JSONValue] = []
            for element in elements { values.append(try evaluate(element).json ?? .null) }
            return .value(.array(values))
        case .dictionary(let pairs):
            var object = JSONObject()
            for pair in pairs {
                object[try evaluate(pair.key).rendered] = try evaluate(pair.value).json ?? .null
            }
            return .value(.object(object))
        case .not(let operand):
            return .value(.bool(!(try evaluate(operand).isTruthy)))
        case .negate(let operand, let position):
            switch try defined(evaluate(operand), position: position) {
            case .int(let number): return .value(.int(-number))
            case .double(let number): return .value(.double(-number))
            case .bool(let flag): return .value(.int(flag ? -1 : 0))
            case let other:
                throw TemplateError(.evaluation, "bad operand type for unary -: '\(PythonFormat.typeName(other))'", position: position)
            }
        case .and(let left, let right):
            let first = try evaluate(left)
            return first.isTruthy ? try evaluate(right) : first
        case .or(let left, let right):
            let first = try evaluate(left)
            return first.isTruthy ? first : try evaluate(right)
        case .binary(let operation, let left, let right, let position):
            return try binary(operation, try evaluate(left), try evaluate(right), position: position)
        case .comparison(let first, let rest, let position):
            var left = try evaluate(first)
            for (operation, rightExpression) in rest {
                let right = try evaluate(rightExpression)
                guard try compare(operation, left, right, position: position) else { return .value(.bool(false)) }
                left = right
            }
            return .value(.bool(true))
        case .conditional(let then, let condition, let otherwise):
            if try evaluate(condition).isTruthy { return try evaluate(then) }
            guard let otherwise else { return .undefined(name: "the else branch") }
            return try evaluate(otherwise)
        case .filter(let base, let name, let arguments, let position):
            return try TemplateFilters.apply(
                name,
                to: try evaluate(base),
                arguments: try evaluateArguments(arguments),
                position: position
            )
        case .test(let base, let name, let negated, let arguments, let position):
            let result = try TemplateFilters.test(
                name,
                try evaluate(base),
                arguments: try evaluateArguments(arguments),
                position: position
            )
            return .value(.bool(result != negated))
        }
    }

    private func evaluateArguments(_ arguments: Expression.Arguments) throws(TemplateError) -> EvaluatedArguments {
        var evaluated = EvaluatedArguments()
        for argument in arguments.positional { evaluated.positional.append(try evaluate(argument)) }
        for argument in arguments.keyword { evaluated.keyword.append((argument.name, try evaluate(argument.value))) }
        return evaluated
    }

    private func member(of base: TemplateValue, _ name: String, describing expression: Expression) -> TemplateValue {
        switch base {
        case .undefined(let baseName): return .undefined(name: "\(baseName).\(name)")
        case .value(.object(let object)): return object[name].map(TemplateValue.value) ?? .undefined(name: describe(expression))
        case .value: return .undefined(name: describe(expression))
        }
    }

    private func subscriptValue(
        _ base: TemplateValue,
        _ key: TemplateValue,
        position: Int,
        describing expression: Expression
    ) throws(TemplateError) -> TemplateValue {
        guard case .value(let container) = base else { return .undefined(name: describe(expression)) }
        let missing = TemplateValue.undefined(name: describe(expression))
        switch (container, key) {
        case (.object(let object), .value(.string(let name))):
            return object[name].map(TemplateValue.value) ?? missing
        case (.array(let elements), .value(let index)):
            guard let offset = Self.index(index, count: elements.count, position: position) else { return missing }
            return .value(elements[offset])
        case (.string(let text), .value(let index)):
            let characters = Array(text)
            guard let offset = Self.index(index, count: characters.count, position: position) else { return missing }
            return .value(.string(String(characters[offset])))
        default:
            return missing
        }
    }

    private static func index(_ value: JSONValue, count: Int, position: Int) -> Int? {
        guard let index = value.intValue, !(value.boolValue != nil) else { return nil }
        let offset = index < 0 ? count + index : index
        return (0..<count).contains(offset) ? offset : nil
    }

    private func describe(_ expression: Expression) -> String {
        var references: [VariableReference] = []
        expression.collectReferences(into: &references)
        return references.first?.dotted ?? "value"
    }

    // MARK: Operators

    private func defined(_ value: TemplateValue, position: Int) throws(TemplateError) -> JSONValue {
        switch value {
        case .value(let json): return json
        case .undefined(let name): throw TemplateError(.undefined, "'\(name)' is undefined", position: position)
        }
    }

    private func binary(_ operation: BinaryOperator, _ left: TemplateValue, _ right: TemplateValue, position: Int) throws(TemplateError)
        -> TemplateValue
    {
        if operation == .concatenate { return .value(.string(left.rendered + right.rendered)) }
        let a = try defined(left, position: position)
        let b = try defined(right, position: position)
        func unsupported() -> TemplateError {
            TemplateError(
                .evaluation,
                "unsupported operand type(s) for \(operation.rawValue): '\(PythonFormat.typeName(a))' and '\(PythonFormat.typeName(b))'",
                position: position
            )
        }
        switch (operation, a, b) {
        case (.add, .string(let x), .string(let y)): return .value(.string(x + y))
        case (.add, .array(let x), .array(let y)): return .value(.array(x + y))
        case (.multiply, .string(let text), _), (.multiply, _, .string(let text)):
            guard let times = Self.integer(a.stringValue != nil ? b : a) else { throw unsupported() }
            return .value(.string(String(repeating: text, count: max(0, times))))
        case (.multiply, .array(let elements), _), (.multiply, _, .array(let elements)):
            guard let times = Self.integer(a.arrayValue != nil ? b : a) else { throw unsupported() }
            return .value(.array(Array(repeatElement(elements, count: max(0, times)).joined())))
        default:
            break
        }
        guard let x = Self.number(a), let y = Self.number(b) else { throw unsupported() }
        if case .integer(let i) = x, case .integer(let j) = y {
            switch operation {
            case .add: return Self.intResult(i.addingReportingOverflow(j), fallback: Double(i) + Double(j))
            case .subtract: return Self.intResult(i.subtractingReportingOverflow(j), fallback: Double(i) - Double(j))
            case .multiply: return Self.intResult(i.multipliedReportingOverflow(by: j), fallback: Double(i) * Double(j))
            case .floorDivide:
                guard j != 0 else { throw TemplateError(.evaluation, "integer division or modulo by zero", position: position) }
                let quotient = i / j
                return .value(.int((i % j != 0 && (i < 0) != (j < 0)) ? quotient - 1 : quotient))
            case .modulo:
                guard j != 0 else { throw TemplateError(.evaluation, "integer division or modulo by zero", position: position) }
                let remainder = i % j
                return .value(.int(remainder != 0 && (remainder < 0) != (j < 0) ? remainder + j : remainder))
            case .power where j >= 0:
                return Self.integerPower(i, j).map { .value(.int($0)) } ?? .value(.double(pow(Double(i), Double(j))))
            default: break
            }
        }
        let p = x.double
        let q = y.double
        switch operation {
        case .add: return .value(.double(p + q))
        case .subtract: return .value(.double(p - q))
        case .multiply: return .value(.double(p * q))
        case .divide:
            guard q != 0 else { throw TemplateError(.evaluation, "division by zero", position: position) }
            return .value(.double(p / q))
        case .floorDivide:
            guard q != 0 else { throw TemplateError(.evaluation, "float floor division by zero", position: position) }
            return .value(.double((p / q).rounded(.down)))
        case .modulo:
            guard q != 0 else { throw TemplateError(.evaluation, "float modulo", position: position) }
            let remainder = p.truncatingRemainder(dividingBy: q)
            return .value(.double(remainder != 0 && (remainder < 0) != (q < 0) ? remainder + q : remainder))
        case .power: return .value(.double(pow(p, q)))
        case .concatenate: return .value(.string(left.rendered + right.rendered))
        }
    }

    /// `base ** exponent` for a non-negative exponent; `nil` on overflow.
    static func integerPower(_ base: Int, _ exponent: Int) -> Int? {
        var result = 1
        var factor = base
        var remaining = exponent
        while remaining > 0 {
            if remaining & 1 == 1 {
                let (product, overflow) = result.multipliedReportingOverflow(by: factor)
                if overflow { return nil }
                result = product
            }
            remaining >>= 1
            if remaining > 0 {
                let (square, overflow) = factor.multipliedReportingOverflow(by: factor)
                if overflow { return nil }
                factor = square
            }
        }
        return result
    }

    private static func intResult(_ result: (partialValue: Int, overflow: Bool), fallback: Double) -> TemplateValue {
        result.overflow ? .value(.double(fallback)) : .value(.int(result.partialValue))
    }

    private func compare(_ operation: ComparisonOperator, _ left: TemplateValue, _ right: TemplateValue, position: Int)
        throws(TemplateError)
        -> Bool
    {
        switch operation {
        case .equal: return Self.equal(left, right)
        case .notEqual: return !Self.equal(left, right)
        case .contains: return try Self.contains(right, left, position: position)
        case .notContains: return !(try Self.contains(right, left, position: position))
        case .less, .lessOrEqual, .greater, .greaterOrEqual:
            let ordering = try Self.order(
                try defined(left, position: position), try defined(right, position: position), operation, position: position)
            switch operation {
            case .less: return ordering < 0
            case .lessOrEqual: return ordering <= 0
            case .greater: return ordering > 0
            default: return ordering >= 0
            }
        }
    }

    /// Python equality: numbers by value (`True == 1`), containers deeply; undefined equals only undefined.
    static func equal(_ left: TemplateValue, _ right: TemplateValue) -> Bool {
        switch (left, right) {
        case (.undefined, .undefined): return true
        case (.value(let a), .value(let b)): return equal(a, b)
        default: return false
        }
    }

    static func equal(_ a: JSONValue, _ b: JSONValue) -> Bool {
        if let x = number(a), let y = number(b) { return x.double == y.double && x.isExactlyEqual(y) }
        switch (a, b) {
        case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { equal($0, $1) }
        case (.object(let x), .object(let y)):
            return x.count == y.count && x.allSatisfy { member in y[member.key].map { equal(member.value, $0) } ?? false }
        default: return a == b
        }
    }

    private static func contains(_ container: TemplateValue, _ item: TemplateValue, position: Int) throws(TemplateError) -> Bool {
        guard case .value(let haystack) = container else { return false }
        switch haystack {
        case .string(let text):
            guard case .value(.string(let needle)) = item else {
                throw TemplateError(.evaluation, "'in <string>' requires string as left operand", position: position)
            }
            return needle.isEmpty || text.contains(needle)
        case .array(let elements):
            return elements.contains { equal(item, .value($0)) }
        case .object(let object):
            guard case .value(.string(let key)) = item else { return false }
            return object[key] != nil
        default:
            throw TemplateError(.evaluation, "argument of type '\(PythonFormat.typeName(haystack))' is not iterable", position: position)
        }
    }

    /// Python ordering: numbers, strings (by code point) and lists (element-wise); anything else is a type error.
    static func order(_ a: JSONValue, _ b: JSONValue, _ operation: ComparisonOperator, position: Int) throws(TemplateError) -> Int {
        if let x = number(a), let y = number(b) { return x.double < y.double ? -1 : (x.double > y.double ? 1 : 0) }
        switch (a, b) {
        case (.string(let x), .string(let y)):
            return x.unicodeScalars.lexicographicallyPrecedes(y.unicodeScalars) ? -1 : (x == y ? 0 : 1)
        case (.array(let x), .array(let y)):
            for (p, q) in zip(x, y) where !equal(p, q) { return try order(p, q, operation, position: position) }
            return x.count < y.count ? -1 : (x.count > y.count ? 1 : 0)
        default:
            throw TemplateError(
                .evaluation,
                "'\(operation.rawValue)' not supported between instances of '\(PythonFormat.typeName(a))' and '\(PythonFormat.typeName(b))'",
                position: position
            )
        }
    }

    // MARK: Numbers

    enum Number {
        case integer(Int)
        case real(Double)

        var double: Double {
            switch self {
            case .integer(let value): Double(value)
            case .real(let value): value
            }
        }

        func isExactlyEqual(_ other: Number) -> Bool {
            if case .integer(let a) = self, case .integer(let b) = other { return a == b }
            return true
        }
    }

    /// A number in Python's sense: ints, floats and booleans.
    static func number(_ value: JSONValue) -> Number? {
        switch value {
        case .int(let integer): .integer(integer)
        case .double(let real): .real(real)
        case .bool(let flag): .integer(flag ? 1 : 0)
        default: nil
        }
    }

    static func integer(_ value: JSONValue) -> Int? {
        switch value {
        case .int(let integer): integer
        case .bool(let flag): flag ? 1 : 0
        default: nil
        }
    }
}

/// Filter and test arguments after evaluation.
struct EvaluatedArguments {
    var positional: [TemplateValue] = []
    var keyword: [(name: String, value: TemplateValue)] = []

    /// The argument at `index`, or the keyword argument `name`.
    func value(_ index: Int, _ name: String) -> TemplateValue? {
        if let match = keyword.first(where: { $0.name == name }) { return match.value }
        return positional[safe: index]
    }
}
