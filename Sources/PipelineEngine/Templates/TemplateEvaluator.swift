public import BudJSON
import Foundation

/// The variables a template can read, by root name (`params`, `steps`).
public struct TemplateScope: Sendable {
    public var variables: [String: JSONValue]
    /// What one evaluation in this scope may do.
    public var limits: TemplateLimits

    public init(_ variables: [String: JSONValue] = [:], limits: TemplateLimits = TemplateLimits()) {
        self.variables = variables
        self.limits = limits
    }
}

extension Template {
    /// Evaluates the template.
    ///
    /// A template that is one `{{ expression }}` (white space around it allowed) yields the
    /// expression's own value — a number stays a number, a list a list. Any other template renders
    /// to text. Undefined values render as nothing; when evaluation needs an undefined value (say,
    /// arithmetic on a missing variable) the whole template yields `""` instead of failing the step,
    /// a rule pipelines already written rely on.
    /// Type errors, bad filter arguments and exceeded ``TemplateLimits`` throw; nothing the
    /// template or the scope holds can make evaluation trap or run without bound.
    public func evaluate(in scope: TemplateScope) throws(TemplateError) -> JSONValue {
        do {
            switch try evaluateKeepingUndefined(in: scope) {
            case .value(let value): return value
            case .undefined: return .string("")
            }
        } catch  where error.kind == .undefined {
            return .string("")
        }
    }

    /// Evaluates the template's single expression (or its rendered text) without turning an
    /// undefined result into `""`: what conditions need.
    func evaluateKeepingUndefined(in scope: TemplateScope) throws(TemplateError) -> TemplateValue {
        var evaluator = TemplateEvaluator(scope: scope)
        if let expression = singleExpression {
            let result = try evaluator.evaluate(expression)
            if case .value(let value) = result { try evaluator.budget.allow(value, position: 0) }
            return result
        }
        var text = ""
        for segment in segments {
            switch segment {
            case .text(let literal): text += literal
            case .expression(let expression): text += try evaluator.render(try evaluator.evaluate(expression), position: 0)
            }
            try evaluator.budget.allow(bytes: text.utf8.count, position: 0)
        }
        // The limit counts JSON text, where control characters take up to six bytes each.
        let rendered = JSONValue.string(text)
        try evaluator.budget.allow(rendered, position: 0)
        return .value(rendered)
    }
}

/// Evaluates expressions with Python's (Jinja's) semantics over JSON values, within the scope's
/// ``TemplateLimits``: every node evaluated and every character or element an operation goes
/// through is paid from the budget, and values that grow (repetition, concatenation, joining,
/// replacing, JSON text) are checked against the size limit before they are built.
struct TemplateEvaluator {
    let scope: TemplateScope
    var budget: EvaluationBudget

    init(scope: TemplateScope) {
        self.scope = scope
        budget = EvaluationBudget(scope.limits)
    }

    mutating func evaluate(_ expression: Expression) throws(TemplateError) -> TemplateValue {
        try budget.spend(1, position: 0)
        switch expression {
        case .literal(let value):
            return .value(value)
        case .variable(let name, _):
            guard let value = scope.variables[name] else { return .undefined(name: name) }
            return .value(value)
        case .attribute(let base, let name, _):
            return member(of: try evaluate(base), name, describing: expression)
        case .subscript(let base, let key, let position):
            let container = try evaluate(base)
            return try subscriptValue(container, try evaluate(key), position: position, describing: expression)
        case .list(let elements):
            var values: [JSONValue] = []
            for element in elements { values.append(try evaluate(element).json ?? .null) }
            let list = JSONValue.array(values)
            try budget.allow(list, position: 0)
            return .value(list)
        case .dictionary(let pairs):
            var object = JSONObject()
            for pair in pairs {
                let key = try render(try evaluate(pair.key), position: 0)
                object[key] = try evaluate(pair.value).json ?? .null
            }
            let dictionary = JSONValue.object(object)
            try budget.allow(dictionary, position: 0)
            return .value(dictionary)
        case .not(let operand):
            return .value(.bool(!(try evaluate(operand).isTruthy)))
        case .negate(let operand, let position):
            switch try defined(evaluate(operand), position: position) {
            case .int(let number):
                let (negated, overflow) = Int(0).subtractingReportingOverflow(number)
                guard !overflow else { throw Self.overflow("-\(number)", position: position) }
                return .value(.int(negated))
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
            let a = try evaluate(left)
            let b = try evaluate(right)
            return try binary(operation, a, b, position: position)
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
            let input = try evaluate(base)
            let evaluated = try evaluateArguments(arguments)
            return try TemplateFilters.apply(name, to: input, arguments: evaluated, position: position, budget: &budget)
        case .test(let base, let name, let negated, let arguments, let position):
            let input = try evaluate(base)
            let evaluated = try evaluateArguments(arguments)
            let result = try TemplateFilters.test(name, input, arguments: evaluated, position: position)
            return .value(.bool(result != negated))
        }
    }

    /// The value's text (Python's `str()`), within the size limit.
    mutating func render(_ value: TemplateValue, position: Int) throws(TemplateError) -> String {
        try budget.render(value, position: position)
    }

    private mutating func evaluateArguments(_ arguments: Expression.Arguments) throws(TemplateError) -> EvaluatedArguments {
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

    private mutating func subscriptValue(
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
            guard let offset = Self.index(index, count: elements.count) else { return missing }
            return .value(elements[offset])
        case (.string(let text), .value(let index)):
            try budget.spend(text.utf8.count, position: position)
            let characters = Array(text)
            guard let offset = Self.index(index, count: characters.count) else { return missing }
            return .value(.string(String(characters[offset])))
        default:
            return missing
        }
    }

    /// The offset `value` designates in a sequence of `count` elements (negative from the end),
    /// when it is an integer within it.
    private static func index(_ value: JSONValue, count: Int) -> Int? {
        guard let index = value.intValue else { return nil }
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

    private mutating func binary(_ operation: BinaryOperator, _ left: TemplateValue, _ right: TemplateValue, position: Int)
        throws(TemplateError) -> TemplateValue
    {
        if operation == .concatenate { return .value(.string(try concatenate(left, right, position: position))) }
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
        case (.add, .string(let x), .string(let y)):
            try budget.allow(bytes: x.utf8.count + y.utf8.count, position: position)
            try budget.spend(x.utf8.count + y.utf8.count, position: position)
            return .value(.string(x + y))
        case (.add, .array(let x), .array(let y)):
            try budget.spend(x.count + y.count, position: position)
            let joined = JSONValue.array(x + y)
            try budget.allow(joined, position: position)
            return .value(joined)
        case (.multiply, .string(let text), _), (.multiply, _, .string(let text)):
            guard let times = Self.integer(a.stringValue != nil ? b : a) else { throw unsupported() }
            guard times > 0, !text.isEmpty else { return .value(.string("")) }
            let (bytes, overflow) = text.utf8.count.multipliedReportingOverflow(by: times)
            try budget.allow(bytes: overflow ? nil : bytes, position: position)
            try budget.spend(bytes, position: position)
            return .value(.string(String(repeating: text, count: times)))
        case (.multiply, .array(let elements), _), (.multiply, _, .array(let elements)):
            guard let times = Self.integer(a.arrayValue != nil ? b : a) else { throw unsupported() }
            guard times > 0, !elements.isEmpty else { return .value(.array([])) }
            guard case .fits(let once) = JSONValue.array(elements).measure(limit: budget.limits.maximumValueBytes) else {
                try budget.allow(bytes: nil, position: position)
                return .value(.array([]))
            }
            let (bytes, overflow) = once.multipliedReportingOverflow(by: times)
            try budget.allow(bytes: overflow ? nil : bytes, position: position)
            try budget.spend(elements.count * times, position: position)
            return .value(.array(Array(repeatElement(elements, count: times).joined())))
        default:
            break
        }
        guard let x = Self.number(a), let y = Self.number(b) else { throw unsupported() }
        if case .integer(let i) = x, case .integer(let j) = y {
            return try integerArithmetic(operation, i, j, position: position)
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
            // Python: the result takes the divisor's sign, zero included.
            let remainder = p.truncatingRemainder(dividingBy: q)
            if remainder == 0 { return .value(.double(q < 0 ? -0.0 : 0.0)) }
            return .value(.double((remainder < 0) != (q < 0) ? remainder + q : remainder))
        case .power: return .value(.double(try Self.floatPower(p, q, position: position)))
        case .concatenate: return .value(.string(try concatenate(left, right, position: position)))
        }
    }

    /// `~`: both sides as text.
    private mutating func concatenate(_ left: TemplateValue, _ right: TemplateValue, position: Int) throws(TemplateError) -> String {
        let first = try render(left, position: position)
        let second = try render(right, position: position)
        try budget.allow(bytes: first.utf8.count + second.utf8.count, position: position)
        try budget.spend(first.utf8.count + second.utf8.count, position: position)
        return first + second
    }

    /// Integer arithmetic with Python's rules (floor division and modulo round towards negative
    /// infinity); a result outside the 64-bit range is an error, never a trap or a silent change
    /// of type.
    private func integerArithmetic(_ operation: BinaryOperator, _ i: Int, _ j: Int, position: Int) throws(TemplateError)
        -> TemplateValue
    {
        func checked(_ result: (partialValue: Int, overflow: Bool)) throws(TemplateError) -> TemplateValue {
            guard !result.overflow else { throw Self.overflow("\(i) \(operation.rawValue) \(j)", position: position) }
            return .value(.int(result.partialValue))
        }
        switch operation {
        case .add: return try checked(i.addingReportingOverflow(j))
        case .subtract: return try checked(i.subtractingReportingOverflow(j))
        case .multiply: return try checked(i.multipliedReportingOverflow(by: j))
        case .floorDivide:
            guard j != 0 else { throw TemplateError(.evaluation, "integer division or modulo by zero", position: position) }
            let (quotient, overflow) = i.dividedReportingOverflow(by: j)
            guard !overflow else { throw Self.overflow("\(i) // \(j)", position: position) }
            let (remainder, _) = i.remainderReportingOverflow(dividingBy: j)
            return .value(.int(remainder != 0 && (i < 0) != (j < 0) ? quotient - 1 : quotient))
        case .modulo:
            guard j != 0 else { throw TemplateError(.evaluation, "integer division or modulo by zero", position: position) }
            // Int.min % -1 overflows in Swift; its remainder is 0, as Python says.
            let (remainder, overflow) = i.remainderReportingOverflow(dividingBy: j)
            guard !overflow else { return .value(.int(0)) }
            return .value(.int(remainder != 0 && (remainder < 0) != (j < 0) ? remainder + j : remainder))
        case .power:
            guard j >= 0 else { return .value(.double(try Self.floatPower(Double(i), Double(j), position: position))) }
            guard let power = Self.integerPower(i, j) else { throw Self.overflow("\(i) ** \(j)", position: position) }
            return .value(.int(power))
        case .divide:
            guard j != 0 else { throw TemplateError(.evaluation, "division by zero", position: position) }
            return .value(.double(Double(i) / Double(j)))
        case .concatenate:
            return .value(.string(String(i) + String(j)))
        }
    }

    /// Python's float power: zero to a negative power and results that are not real numbers
    /// are errors; a result too large is an error, as Python's `OverflowError`.
    private static func floatPower(_ base: Double, _ exponent: Double, position: Int) throws(TemplateError) -> Double {
        if base == 0 && exponent < 0 {
            throw TemplateError(.evaluation, "0.0 cannot be raised to a negative power", position: position)
        }
        let result = pow(base, exponent)
        if result.isNaN && !base.isNaN && !exponent.isNaN {
            throw TemplateError(.evaluation, "a negative number raised to a fractional power is not a real number", position: position)
        }
        if result.isInfinite && base.isFinite && exponent.isFinite {
            throw TemplateError(
                .evaluation, "numerical result out of range: \(PythonFormat.float(base)) ** \(PythonFormat.float(exponent))",
                position: position)
        }
        return result
    }

    static func overflow(_ operation: String, position: Int) -> TemplateError {
        TemplateError(.evaluation, "integer overflow: \(operation) does not fit in a 64-bit integer", position: position)
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

    private mutating func compare(_ operation: ComparisonOperator, _ left: TemplateValue, _ right: TemplateValue, position: Int)
        throws(TemplateError)
        -> Bool
    {
        switch (operation, right) {
        case (.contains, .value(.array(let elements))), (.notContains, .value(.array(let elements))):
            try budget.spend(elements.count, position: position)
        case (.contains, .value(.string(let text))), (.notContains, .value(.string(let text))):
            try budget.spend(text.utf8.count, position: position)
        default: break
        }
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
            return !ScalarSearch(needle).matches(in: Array(text.unicodeScalars), limit: 1).isEmpty
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
