import BudJSON

/// What one template evaluation may do. Exceeding a limit is an evaluation error
/// (``TemplateError/Kind-swift.enum/limit``) that names the limit; the step whose template it is
/// fails with it. See docs/operations.md, "Limits".
public struct TemplateLimits: Sendable, Equatable {
    /// How deeply an expression may nest (brackets, parentheses, operators, filters, attribute
    /// access). Deeper templates are refused when they are parsed, with the position.
    public static let maximumNestingDepth = 64

    /// The largest value, in bytes of its JSON text, that one evaluation may produce or build on
    /// the way (`'a' * n`, `replace`, `tojson(indent)`, joined lists).
    public var maximumValueBytes: Int
    /// The most work one evaluation may do, counted in expression nodes evaluated plus characters
    /// and elements that operators, filters and comparisons go through.
    public var maximumOperations: Int

    public static let defaultMaximumValueBytes = 1 << 20
    public static let defaultMaximumOperations = 10_000_000

    public init(maximumValueBytes: Int = defaultMaximumValueBytes, maximumOperations: Int = defaultMaximumOperations) {
        self.maximumValueBytes = max(1, maximumValueBytes)
        self.maximumOperations = max(1, maximumOperations)
    }
}

/// The budget of one evaluation: work left, and the value size limit.
struct EvaluationBudget {
    let limits: TemplateLimits
    private var operationsLeft: Int

    init(_ limits: TemplateLimits) {
        self.limits = limits
        operationsLeft = limits.maximumOperations
    }

    /// Spends `units` of work; throws once the evaluation has done more than it may.
    mutating func spend(_ units: Int, position: Int) throws(TemplateError) {
        operationsLeft -= min(max(units, 0), operationsLeft + 1)
        guard operationsLeft >= 0 else {
            throw TemplateError(
                .limit,
                "the template did more than \(limits.maximumOperations) operations (BUDPIPELINE_TEMPLATE_MAX_OPERATIONS)",
                position: position)
        }
    }

    /// Throws unless a value of `bytes` bytes is within the value limit; `nil` means too large to count.
    func allow(bytes: Int?, position: Int) throws(TemplateError) {
        guard let bytes, bytes <= limits.maximumValueBytes else {
            let size = bytes.map { "of \($0) bytes" } ?? "larger than that"
            throw TemplateError(
                .limit,
                "the template would produce a value \(size); the limit is \(limits.maximumValueBytes) bytes (BUDPIPELINE_TEMPLATE_MAX_VALUE_BYTES)",
                position: position)
        }
    }

    /// Throws unless `value` is within the value limit and nests no deeper than stored JSON may.
    func allow(_ value: JSONValue, position: Int) throws(TemplateError) {
        switch value.measure(limit: limits.maximumValueBytes) {
        case .fits: return
        case .tooLarge: try allow(bytes: nil, position: position)
        case .tooDeep:
            throw TemplateError(
                .limit, "the template would produce a value nested deeper than \(JSONValue.maximumNestingDepth) levels",
                position: position)
        }
    }

    /// The value's text (Python's `str()`), refused when it would exceed the value limit.
    mutating func render(_ value: TemplateValue, position: Int) throws(TemplateError) -> String {
        switch value {
        case .undefined: return ""
        case .value(.string(let text)): return text
        case .value(let other):
            // Python's text of a value is about as long as its JSON text: measure before writing.
            guard case .fits(let bytes) = other.measure(limit: limits.maximumValueBytes) else {
                try allow(bytes: nil, position: position)
                return ""
            }
            try spend(bytes, position: position)
            let text = PythonFormat.str(other)
            try allow(bytes: text.utf8.count, position: position)
            return text
        }
    }
}
