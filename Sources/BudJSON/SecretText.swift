/// Text that must never be shown — an API token, a password — held so that no log line, error
/// message or dump of a value holding it can show it.
///
/// Its description, debug description and reflection (what `"\(value)"`, `print`, `dump` and the
/// default description of an enclosing struct use) are all ``SecretKeys/redactionMarker``. The
/// text itself is read only through ``revealed``, where it is sent.
public struct SecretText: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable,
    ExpressibleByStringLiteral
{
    /// The secret itself: read it only to send it where it belongs.
    public let revealed: String

    public init(_ text: String) {
        revealed = text
    }

    public init(stringLiteral text: String) {
        revealed = text
    }

    public var description: String { SecretKeys.redactionMarker }

    public var debugDescription: String { SecretKeys.redactionMarker }

    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}
