public import BudJSON

/// A JSON value whose strings may contain templates, parsed once so that evaluating it at run time
/// does no parsing.
public indirect enum CompiledValue: Sendable {
    /// No templates anywhere inside.
    case constant(JSONValue)
    case template(Template)
    case array([CompiledValue])
    case object([(key: String, value: CompiledValue)])

    /// Compiles every string of `value` that contains template syntax. `path` names `value` in
    /// error messages (e.g. `params.message`).
    public static func compile(_ value: JSONValue, path: String) throws(FieldTemplateError) -> CompiledValue {
        switch value {
        case .string(let text) where Template.containsSyntax(text):
            do {
                return .template(try Template(parsing: text))
            } catch {
                throw FieldTemplateError(field: path, error: error)
            }
        case .array(let elements):
            var compiled: [CompiledValue] = []
            var hasTemplates = false
            for (index, element) in elements.enumerated() {
                let item = try compile(element, path: "\(path)[\(index)]")
                if case .constant = item {} else { hasTemplates = true }
                compiled.append(item)
            }
            return hasTemplates ? .array(compiled) : .constant(value)
        case .object(let members):
            var compiled: [(key: String, value: CompiledValue)] = []
            var hasTemplates = false
            for (key, member) in members {
                let item = try compile(member, path: path.isEmpty ? key : "\(path).\(key)")
                if case .constant = item {} else { hasTemplates = true }
                compiled.append((key, item))
            }
            return hasTemplates ? .object(compiled) : .constant(value)
        default:
            return .constant(value)
        }
    }

    /// Whether any string inside is a template.
    public var isConstant: Bool {
        if case .constant = self { return true }
        return false
    }

    /// Evaluates every template inside; `path` names this value in error messages.
    public func resolve(in scope: TemplateScope, path: String) throws(FieldTemplateError) -> JSONValue {
        switch self {
        case .constant(let value):
            return value
        case .template(let template):
            do {
                return try template.evaluate(in: scope)
            } catch {
                throw FieldTemplateError(field: path, error: error)
            }
        case .array(let elements):
            var values: [JSONValue] = []
            values.reserveCapacity(elements.count)
            for (index, element) in elements.enumerated() { values.append(try element.resolve(in: scope, path: "\(path)[\(index)]")) }
            return .array(values)
        case .object(let members):
            var object = JSONObject()
            for (key, member) in members { object[key] = try member.resolve(in: scope, path: path.isEmpty ? key : "\(path).\(key)") }
            return .object(object)
        }
    }

    /// Every variable path the templates inside read, with the field each one is in.
    public func references(path: String) -> [(field: String, reference: VariableReference)] {
        switch self {
        case .constant: return []
        case .template(let template): return template.references.map { (path, $0) }
        case .array(let elements):
            return elements.enumerated().flatMap { index, element in element.references(path: "\(path)[\(index)]") }
        case .object(let members):
            return members.flatMap { member in member.value.references(path: path.isEmpty ? member.key : "\(path).\(member.key)") }
        }
    }
}

/// A template error in a named field (`params.message`, `condition`, `outputs.result`).
public struct FieldTemplateError: Error, Sendable, Equatable, CustomStringConvertible {
    public let field: String
    public let error: TemplateError

    public init(field: String, error: TemplateError) {
        self.field = field
        self.error = error
    }

    /// `<field>: <message> at position <n>`.
    public var description: String { "\(field): \(error.message) at position \(error.position)" }
}
