public import BudJSON
public import Foundation
public import PipelineEngine

/// A value bound to a statement parameter or read from a column.
public enum SQLValue: Sendable, Equatable {
    case null
    case integer(Int)
    case double(Double)
    case text(String)
    case bool(Bool)
    /// Stored as JSON text (PostgreSQL `json`, SQLite `TEXT`).
    case json(JSONValue)
    /// Stored as a timestamp with microseconds (PostgreSQL `timestamptz`, SQLite ISO 8601 text).
    case date(Date)

    /// An optional value, `null` when absent.
    public static func optional<Value>(_ value: Value?, _ wrap: (Value) -> SQLValue) -> SQLValue {
        value.map(wrap) ?? .null
    }
}

extension SQLValue {
    /// The value as parameter text (both backends take text parameters); `nil` for SQL NULL.
    /// Booleans are `true`/`false`, JSON is compact JSON text, dates are ``SQLTimestamp`` text.
    package var parameterText: String? {
        switch self {
        case .null: nil
        case .integer(let value): String(value)
        case .double(let value): "\(value)"
        case .text(let value): value
        case .bool(let value): value ? "true" : "false"
        case .json(let value): value.serializedString()
        case .date(let value): SQLTimestamp.format(value)
        }
    }
}

extension SQLValue {
    /// A typed id, bound as its text.
    public static func id(_ value: some TextIdentifier) -> SQLValue { .text(value.rawValue) }

    /// An optional typed id, `null` when absent.
    public static func id(_ value: (some TextIdentifier)?) -> SQLValue { value.map { .text($0.rawValue) } ?? .null }
}
