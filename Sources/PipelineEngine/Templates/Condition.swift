import BudJSON

/// A step or branch condition (docs/dag.md, "Conditions"). Existing pipelines rely on these rules:
///
/// - empty, missing or white space: true;
/// - text without template syntax: `true`, `1`, `yes` (any case) are true; `false`, `0`, `no` are
///   false; any other text is true;
/// - a template: evaluated; an undefined result is false; a string result is read as rendered
///   text, so a value that rendered as `"false"`, `"none"`, `"0"`, `""`, `"[]"` or `"{}"` is false
///   (``renderedTruth(_:)``); any other value by its truthiness.
public struct Condition: Sendable {
    private enum Form: Sendable {
        case literal(Bool)
        case template(Template)
    }

    private let form: Form

    /// The condition of a step without one: always true.
    public static let always = Condition(form: .literal(true))

    private init(form: Form) {
        self.form = form
    }

    /// Parses a condition; throws for template syntax errors.
    public init(_ text: String?) throws(TemplateError) {
        let trimmed = (text ?? "").trimmingWhitespace()
        if trimmed.isEmpty {
            form = .literal(true)
        } else if !Template.containsSyntax(trimmed) {
            form = .literal(Self.literalTruth(trimmed))
        } else {
            form = .template(try Template(parsing: trimmed))
        }
    }

    /// The template, when the condition has one (validation checks the variables it reads).
    public var template: Template? {
        if case .template(let template) = form { return template }
        return nil
    }

    /// Evaluates the condition. Throws for evaluation errors other than undefined values.
    public func evaluate(in scope: TemplateScope) throws(TemplateError) -> Bool {
        switch form {
        case .literal(let value):
            return value
        case .template(let template):
            let result: TemplateValue
            do {
                result = try template.evaluateKeepingUndefined(in: scope)
            } catch  where error.kind == .undefined {
                return false
            }
            switch result {
            case .undefined: return false
            case .value(.string(let text)): return Self.renderedTruth(text)
            case .value: return result.isTruthy
            }
        }
    }

    /// Text without templates: `false|0|no` → false, anything else (`true|1|yes|…`) → true.
    static func literalTruth(_ text: String) -> Bool {
        switch text.lowercased() {
        case "false", "0", "no": false
        default: true
        }
    }

    /// Rendered text as a truth value (trimmed, any case): `false`, `none`, empty text, a zero number
    /// and the text of an empty container (`[]`, `{}`, `()`, `set()`) are false; anything else is true.
    static func renderedTruth(_ text: String) -> Bool {
        let trimmed = text.trimmingWhitespace()
        switch trimmed.lowercased() {
        case "true": return true
        case "false", "", "none", "[]", "{}", "()", "set()": return false
        default: break
        }
        if let number = Double(trimmed) { return number != 0 }
        return true
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while scalars.first?.isWhitespace == true { scalars.removeFirst() }
        while scalars.last?.isWhitespace == true { scalars.removeLast() }
        return String(scalars)
    }
}
