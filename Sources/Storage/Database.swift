/// The SQL flavour of a backend.
public enum SQLDialect: String, Sendable {
    case sqlite
    case postgres
}

/// A statement and its parameters. Parameters are always bound, never interpolated: SQL text
/// uses `$1`, `$2`, … for both backends.
public struct SQLStatement: Sendable {
    public var sql: String
    public var binds: [SQLValue]

    public init(_ sql: String, _ binds: [SQLValue] = []) {
        self.sql = sql
        self.binds = binds
    }
}

/// A database: a pool of connections used from dedicated threads, never from the caller's.
public protocol Database: Sendable {
    var dialect: SQLDialect { get }

    /// Runs `body` in one transaction on a pooled connection, on that connection's thread.
    /// Commits when `body` returns, rolls back when it throws. A transaction that loses a race
    /// (deadlock, database busy) is run again, a few times, before its error is thrown.
    @discardableResult
    func transaction<Result: Sendable>(_ body: @escaping @Sendable (any DatabaseSession) throws -> Result) async throws -> Result

    /// Runs read-only statements and returns the rows of each, in order. All of them see one
    /// consistent snapshot. PostgreSQL sends them in one round trip (a single statement needs no
    /// transaction around it). The rows are decoded by the caller, off the connection's thread.
    func read(_ statements: [SQLStatement]) async throws -> [[Row]]

    /// Runs `body` on a connection outside any transaction: for schema changes that manage their
    /// own transactions and locks.
    func withSession<Result: Sendable>(_ body: @escaping @Sendable (any DatabaseSession) throws -> Result) async throws -> Result

    /// A short description of the server or file, e.g. `PostgreSQL 15.18` or `SQLite 3.40.1`.
    func serverVersion() async throws -> String

    /// Closes every connection; later calls fail.
    func close() async

    /// Why the store cannot keep what is written to it although writes succeed, if it knows: a
    /// SQLite file that was deleted or replaced while open (writes go to a file nobody will
    /// open again). `nil` by default.
    func storageProblem() -> String?

    /// Joins the group of processes that share this database as `workerID`, for wake-ups,
    /// live events and the takeover of a dead member's work (see ``ClusterLink``); `nil` when the
    /// backend has no such group (SQLite: one process per file).
    func joinCluster(workerID: String) async throws -> (any ClusterLink)?
}

extension Database {
    public func storageProblem() -> String? { nil }

    public func joinCluster(workerID: String) async throws -> (any ClusterLink)? { nil }
}

/// Work on one connection, inside `Database.transaction` or `Database.withSession`.
public protocol DatabaseSession {
    /// Runs one statement at once and returns its rows. Statements queued with `enqueue` run first.
    func query(_ statement: SQLStatement) throws -> [Row]

    /// Runs one statement at once and returns the number of rows it changed.
    @discardableResult
    func execute(_ statement: SQLStatement) throws -> Int

    /// Queues a write. PostgreSQL sends queued writes together with the `COMMIT` in one round
    /// trip; SQLite runs them at once. When `expectedRows` is given and the statement changes
    /// another number of rows, the whole transaction rolls back and throws
    /// ``DatabaseError/conflict(_:)`` with `conflictMessage`. The statement must be an `INSERT`,
    /// `UPDATE` or `DELETE` without `RETURNING`.
    func enqueue(_ statement: SQLStatement, expectedRows: Int?, conflictMessage: String)

    /// Runs SQL text that may hold several statements and no parameters (migrations).
    func executeScript(_ sql: String) throws
}

extension DatabaseSession {
    public func query(_ sql: String, _ binds: SQLValue...) throws -> [Row] {
        try query(SQLStatement(sql, binds))
    }

    @discardableResult
    public func execute(_ sql: String, _ binds: SQLValue...) throws -> Int {
        try execute(SQLStatement(sql, binds))
    }

    public func enqueue(_ statement: SQLStatement) {
        enqueue(statement, expectedRows: nil, conflictMessage: "")
    }
}

extension Database {
    /// Runs one read-only statement and returns its rows.
    public func read(_ statement: SQLStatement) async throws -> [Row] {
        try await read([statement])[0]
    }

    /// Runs one read-only statement and returns its rows.
    public func read(_ sql: String, _ binds: SQLValue...) async throws -> [Row] {
        try await read([SQLStatement(sql, binds)])[0]
    }

    /// Runs `body` in a transaction, again after a transient failure (up to `attempts` times in all).
    package func retryingTransient<Result: Sendable>(
        attempts: Int = 4,
        _ run: () async throws -> Result
    ) async throws -> Result {
        var attempt = 1
        while true {
            do {
                return try await run()
            } catch let error as DatabaseError where error.isTransient && attempt < attempts {
                attempt += 1
                try await Task.sleep(for: .milliseconds(5 * attempt * attempt))
            }
        }
    }
}
