public import BudJSON
public import Foundation
public import PipelineEngine

/// One row of a result, its columns by position and by name.
public struct Row: Sendable {
    let columns: SQLColumns
    let values: [String?]

    init(columns: SQLColumns, values: [String?]) {
        self.columns = columns
        self.values = values
    }

    /// The raw text of a column (both backends return text), `nil` for SQL NULL.
    public subscript(_ name: String) -> String? {
        guard let index = columns.index(of: name) else { return nil }
        return values[index]
    }

    public func string(_ name: String) throws(DatabaseError) -> String {
        guard let value = self[name] else { throw .decoding("column \(name) is NULL or missing") }
        return value
    }

    public func int(_ name: String) throws(DatabaseError) -> Int {
        guard let text = self[name], let value = Int(text) else {
            throw .decoding("column \(name) is not an integer: \(self[name] ?? "NULL")")
        }
        return value
    }

    /// A column holding one of an enumeration's raw values; any other text is a decoding error.
    public func value<Value: RawRepresentable<String>>(_ name: String, as type: Value.Type) throws(DatabaseError) -> Value {
        let text = try string(name)
        guard let value = Value(rawValue: text) else { throw .decoding("column \(name) has an unknown value: \(text)") }
        return value
    }

    /// The column as a typed id; throws when it is NULL.
    public func id<ID: TextIdentifier>(_ name: String, as type: ID.Type = ID.self) throws(DatabaseError) -> ID {
        ID(try string(name))
    }

    /// The column as a typed id, `nil` when it is NULL.
    public func optionalID<ID: TextIdentifier>(_ name: String, as type: ID.Type = ID.self) -> ID? {
        self[name].map { ID($0) }
    }

    public func optionalInt(_ name: String) throws(DatabaseError) -> Int? {
        guard self[name] != nil else { return nil }
        return try int(name)
    }

    public func double(_ name: String) throws(DatabaseError) -> Double {
        guard let text = self[name], let value = Double(text) else {
            throw .decoding("column \(name) is not a number: \(self[name] ?? "NULL")")
        }
        return value
    }

    /// Booleans: PostgreSQL's `t`/`f`, SQLite's `1`/`0`.
    public func bool(_ name: String) throws(DatabaseError) -> Bool {
        switch self[name] {
        case "t", "true", "1": return true
        case "f", "false", "0": return false
        case let other: throw .decoding("column \(name) is not a boolean: \(other ?? "NULL")")
        }
    }

    public func date(_ name: String) throws(DatabaseError) -> Date {
        guard let text = self[name], let date = SQLTimestamp.parse(text) else {
            throw .decoding("column \(name) is not a timestamp: \(self[name] ?? "NULL")")
        }
        return date
    }

    public func optionalDate(_ name: String) throws(DatabaseError) -> Date? {
        guard self[name] != nil else { return nil }
        return try date(name)
    }

    public func json(_ name: String) throws(DatabaseError) -> JSONValue {
        guard let text = self[name] else { return .null }
        do {
            return try JSONValue(parsing: text)
        } catch {
            throw .decoding("column \(name) is not JSON: \(error)")
        }
    }

    public func optionalJSON(_ name: String) throws(DatabaseError) -> JSONValue? {
        guard self[name] != nil else { return nil }
        return try json(name)
    }
}

/// Column names of a result, shared by its rows.
package final class SQLColumns: Sendable {
    package let names: [String]
    private let positions: [String: Int]

    package init(_ names: [String]) {
        self.names = names
        var positions: [String: Int] = [:]
        for (index, name) in names.enumerated() where positions[name] == nil { positions[name] = index }
        self.positions = positions
    }

    func index(of name: String) -> Int? {
        positions[name]
    }
}

extension Row {
    /// A row built by a backend from its column names and the text of each value.
    package static func make(columns: SQLColumns, values: [String?]) -> Row {
        Row(columns: columns, values: values)
    }
}
