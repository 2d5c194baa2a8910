/// A template that cannot be parsed or evaluated.
public struct TemplateError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The template text is malformed (found when it is parsed).
        case syntax
        /// Evaluation failed: a type error, an unsupported operation, a bad filter argument.
        case evaluation
        /// Evaluation needed a value that is undefined (arithmetic on a missing variable).
        case undefined
        /// Evaluation went past one of its ``TemplateLimits`` (value size, work).
        case limit
    }

    public let kind: Kind
    public let message: String
    /// Zero-based character offset in the template text.
    public let position: Int

    public init(_ kind: Kind, _ message: String, position: Int) {
        self.kind = kind
        self.message = message
        self.position = position
    }

    public var description: String { "\(message) at position \(position)" }
}
