import BudJSON

/// A parsed template: literal text and `{{ expression }}` parts.
public struct Template: Sendable {
    /// The text the template was parsed from.
    public let source: String
    let segments: [Segment]
    /// The expression, when the whole text (ignoring surrounding white space) is one `{{ … }}`.
    /// Such a template evaluates to the expression's own value (number, list, object, …).
    let singleExpression: Expression?

    enum Segment: Sendable {
        case text(String)
        case expression(Expression)
    }

    init(source: String, segments: [Segment]) {
        self.source = source
        self.segments = segments
        singleExpression = Self.onlyExpression(in: segments)
    }

    private static func onlyExpression(in segments: [Segment]) -> Expression? {
        var found: Expression?
        for segment in segments {
            switch segment {
            case .text(let text) where text.allSatisfy(\.isWhitespace): continue
            case .text: return nil
            case .expression(let expression):
                if found != nil { return nil }
                found = expression
            }
        }
        return found
    }

    /// Whether the text contains any template syntax at all.
    public static func containsSyntax(_ text: String) -> Bool {
        text.contains("{{") || text.contains("{%") || text.contains("{#")
    }

    /// Every variable path the template reads, e.g. `params.x` or `steps.fetch.outputs.url`.
    public var references: [VariableReference] {
        var references: [VariableReference] = []
        for case .expression(let expression) in segments { expression.collectReferences(into: &references) }
        return references
    }
}

/// A variable path a template reads: the root name and the attribute names or constant keys after it.
public struct VariableReference: Sendable, Equatable {
    public let root: String
    public let path: [String]
    /// Character offset in the template text.
    public let position: Int

    /// `root.path.joined`, e.g. `steps.fetch.outputs.url`.
    public var dotted: String { ([root] + path).joined(separator: ".") }
}

/// An expression inside `{{ … }}`.
indirect enum Expression: Sendable {
    case literal(JSONValue)
    case variable(String, position: Int)
    case attribute(Expression, String, position: Int)
    case `subscript`(Expression, Expression, position: Int)
    case list([Expression])
    case dictionary([(key: Expression, value: Expression)])
    case not(Expression)
    case negate(Expression, position: Int)
    case and(Expression, Expression)
    case or(Expression, Expression)
    case binary(BinaryOperator, Expression, Expression, position: Int)
    case comparison(Expression, [(ComparisonOperator, Expression)], position: Int)
    case conditional(then: Expression, condition: Expression, otherwise: Expression?)
    case filter(Expression, name: String, arguments: Arguments, position: Int)
    case test(Expression, name: String, negated: Bool, arguments: Arguments, position: Int)

    /// Positional and keyword arguments of a filter or test.
    struct Arguments: Sendable {
        var positional: [Expression] = []
        var keyword: [(name: String, value: Expression)] = []
    }

    func collectReferences(into references: inout [VariableReference]) {
        if let reference = pathReference {
            references.append(reference)
            return
        }
        switch self {
        case .literal, .variable: break
        case .attribute(let base, _, _): base.collectReferences(into: &references)
        case .subscript(let base, let key, _):
            base.collectReferences(into: &references)
            key.collectReferences(into: &references)
        case .list(let elements): elements.forEach { $0.collectReferences(into: &references) }
        case .dictionary(let pairs):
            for pair in pairs {
                pair.key.collectReferences(into: &references)
                pair.value.collectReferences(into: &references)
            }
        case .not(let operand), .negate(let operand, _): operand.collectReferences(into: &references)
        case .and(let left, let right), .or(let left, let right), .binary(_, let left, let right, _):
            left.collectReferences(into: &references)
            right.collectReferences(into: &references)
        case .comparison(let first, let rest, _):
            first.collectReferences(into: &references)
            rest.forEach { $0.1.collectReferences(into: &references) }
        case .conditional(let then, let condition, let otherwise):
            then.collectReferences(into: &references)
            condition.collectReferences(into: &references)
            otherwise?.collectReferences(into: &references)
        case .filter(let base, _, let arguments, _), .test(let base, _, _, let arguments, _):
            base.collectReferences(into: &references)
            arguments.positional.forEach { $0.collectReferences(into: &references) }
            arguments.keyword.forEach { $0.value.collectReferences(into: &references) }
        }
    }

    /// The variable path this expression is, when it is only a variable followed by attribute names
    /// and constant keys (`steps.a.outputs['k']`).
    private var pathReference: VariableReference? {
        switch self {
        case .variable(let name, let position):
            return VariableReference(root: name, path: [], position: position)
        case .attribute(let base, let name, _):
            guard let reference = base.pathReference else { return nil }
            return VariableReference(root: reference.root, path: reference.path + [name], position: reference.position)
        case .subscript(let base, .literal(let key), _):
            guard let reference = base.pathReference else { return nil }
            let component: String
            switch key {
            case .string(let text): component = text
            case .int(let index): component = String(index)
            default: return nil
            }
            return VariableReference(root: reference.root, path: reference.path + [component], position: reference.position)
        default:
            return nil
        }
    }
}

enum BinaryOperator: String, Sendable {
    case add = "+", subtract = "-", multiply = "*", divide = "/", floorDivide = "//", modulo = "%", power = "**"
    case concatenate = "~"
}

enum ComparisonOperator: String, Sendable {
    case equal = "==", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
    case contains = "in", notContains = "not in"
}
