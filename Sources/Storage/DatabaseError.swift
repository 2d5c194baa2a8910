/// A database failure: its kind, for the callers that react to it, and what the server said, for
/// the people who read the logs.
///
/// `kind` is what code branches on; `code` (the SQLSTATE on PostgreSQL, the extended result code
/// on SQLite), `detail` and `constraint` are kept as the server gave them. None of them is ever
/// shown to an HTTP client: the API answers with its own codes and messages.
public struct DatabaseError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Equatable {
        /// The server or file cannot be reached or opened.
        case connection
        /// A statement failed for a reason no other kind covers.
        case statement
        /// A unique or primary key constraint was violated.
        case uniqueViolation
        /// The transaction lost a race (deadlock, serialization failure, database busy): try again.
        case transient
        /// An optimistic-lock update matched no row: someone changed the record first.
        case conflict
        /// A value read back does not have the expected form.
        case decoding
        /// The schema is not the one this build expects (see `budpipeline migrate --status`).
        case schema
        /// The database cannot store anything right now: the disk is full or read-only, an I/O
        /// error, no memory. Nothing was changed; the same request can succeed once the fault is
        /// mended.
        case unavailable
        /// The work was not run: the caller stopped waiting, or the pool's queue was full.
        case notRun
    }

    public let kind: Kind
    /// The server's primary message (or ours, for failures found on this side).
    public let message: String
    /// PostgreSQL's SQLSTATE or SQLite's extended result code (`SQLITE_2067`); `nil` when the
    /// failure did not come from the server.
    public let code: String?
    /// PostgreSQL's detail line (for a unique violation: the key and value).
    public let detail: String?
    /// The constraint a violation concerns, when the server names it (PostgreSQL).
    public let constraint: String?
    /// The statement that failed, when one did.
    public let sql: String?

    public init(
        _ kind: Kind, _ message: String, code: String? = nil, detail: String? = nil, constraint: String? = nil, sql: String? = nil
    ) {
        self.kind = kind
        self.message = message
        self.code = code
        self.detail = detail
        self.constraint = constraint
        self.sql = sql
    }

    public static func connection(_ message: String) -> DatabaseError { DatabaseError(.connection, message) }
    public static func statement(code: String, message: String, sql: String) -> DatabaseError {
        DatabaseError(.statement, message, code: code, sql: sql)
    }
    public static func uniqueViolation(_ message: String) -> DatabaseError { DatabaseError(.uniqueViolation, message) }
    public static func transient(_ message: String) -> DatabaseError { DatabaseError(.transient, message) }
    public static func conflict(_ message: String) -> DatabaseError { DatabaseError(.conflict, message) }
    public static func decoding(_ message: String) -> DatabaseError { DatabaseError(.decoding, message) }
    public static func schema(_ message: String) -> DatabaseError { DatabaseError(.schema, message) }
    public static func unavailable(_ message: String) -> DatabaseError { DatabaseError(.unavailable, message) }
    public static func notRun(_ message: String) -> DatabaseError { DatabaseError(.notRun, message) }

    /// Whether running the same transaction again may succeed.
    public var isTransient: Bool { kind == .transient }

    public var description: String {
        let text =
            switch kind {
            case .connection: "database connection failed: \(message)"
            case .statement: "database error \(code ?? "?"): \(message)"
            case .uniqueViolation: "duplicate value: \(message)"
            case .transient: "transient database error: \(message)"
            case .conflict: "concurrent modification: \(message)"
            case .decoding: "unexpected database value: \(message)"
            case .schema: message
            case .unavailable: "the database cannot store changes: \(message)"
            case .notRun: "database work not run: \(message)"
            }
        var parts = [text]
        if let detail, !detail.isEmpty { parts.append("(\(detail))") }
        if let constraint, !constraint.isEmpty { parts.append("[constraint \(constraint)]") }
        return parts.joined(separator: " ")
    }
}
