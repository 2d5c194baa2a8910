import CSQLite
public import CoreMetrics
import Foundation
public import Storage
import Synchronization

/// The embedded store: one SQLite file in WAL mode, one writer connection and a few readers, each
/// on its own thread.
public final class SQLiteDatabase: Database {
    public let dialect = SQLDialect.sqlite
    /// The database file.
    public let path: String
    private let writer: ConnectionPool<SQLiteConnection>
    private let readers: ConnectionPool<SQLiteConnection>
    /// The device and inode of the file once it was opened (see ``storageProblem()``).
    private let identity = Mutex<FileIdentity?>(nil)

    /// Opens (creating if needed) the database file at `path` and its directory. Fails at once when
    /// the file cannot be opened or is not a database. `metrics` receives the pools' queue waits
    /// and refusals.
    public static func open(path: String, readerConnections: Int = 4, metrics: (any MetricsFactory)? = nil) async throws
        -> SQLiteDatabase
    {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw DatabaseError.connection("cannot create the directory \(directory): \(error.localizedDescription)")
            }
        }
        let database = SQLiteDatabase(path: path, readerConnections: readerConnections, metrics: metrics)
        do {
            _ = try await database.writer.withConnection { _ in true }
            database.identity.withLock { $0 = FileIdentity(path: path) }
        } catch {
            await database.close()
            throw error
        }
        return database
    }

    private init(path: String, readerConnections: Int, metrics: (any MetricsFactory)?) {
        self.path = path
        writer = ConnectionPool(
            name: "bp-sqlite-writer",
            maximumConnections: 1,
            open: { () throws(DatabaseError) in try SQLiteConnection(path: path, role: .writer) },
            isHealthy: { _ in true },
            close: { $0.close() },
            runReads: { connection, reads in reads.map { connection.snapshot($0) } },
            runGroup: { connection, group in connection.commitTogether(group) },
            metrics: metrics.map { PoolMetrics(pool: "sqlite_writer", factory: $0) }
        )
        readers = ConnectionPool(
            name: "bp-sqlite-reader",
            maximumConnections: readerConnections,
            open: { () throws(DatabaseError) in try SQLiteConnection(path: path, role: .reader) },
            isHealthy: { _ in true },
            close: { $0.close() },
            runReads: { connection, reads in reads.map { connection.snapshot($0) } },
            metrics: metrics.map { PoolMetrics(pool: "sqlite_readers", factory: $0) }
        )
    }

    public func transaction<Result: Sendable>(_ body: @escaping @Sendable (any DatabaseSession) throws -> Result) async throws -> Result {
        try await retryingTransient {
            try await writer.withGroupedTransaction { connection in
                let session = SQLiteSession(connection: connection)
                let result = try body(session)
                try session.finish()
                return result
            }
        }
    }

    /// Commits of write transactions so far, and the transactions they held (several share a
    /// commit when they wait together).
    package var commitCounts: (commits: Int, transactions: Int) {
        let counts = writer.groupCounts
        return (counts.groups, counts.transactions)
    }

    public func read(_ statements: [SQLStatement]) async throws -> [[Row]] {
        try await retryingTransient {
            try await readers.read(statements)
        }
    }

    public func withSession<Result: Sendable>(_ body: @escaping @Sendable (any DatabaseSession) throws -> Result) async throws -> Result {
        try await writer.withConnection { connection in
            let session = SQLiteSession(connection: connection)
            let result = try body(session)
            try session.finish()
            return result
        }
    }

    public func serverVersion() async throws -> String {
        "SQLite \(String(cString: sqlite3_libversion()))"
    }

    /// The file was deleted or replaced since it was opened: writes still succeed, on a file
    /// nobody will open again.
    public func storageProblem() -> String? {
        guard let identity = identity.withLock({ $0 }) else { return nil }
        guard let now = FileIdentity(path: path) else { return "the database file \(path) was deleted while in use" }
        return now == identity ? nil : "the database file \(path) was replaced while in use"
    }

    public func close() async {
        writer.close()
        readers.close()
    }
}

/// One SQLite connection with its prepared statements. Used only by the thread that opened it.
final class SQLiteConnection {
    enum Role {
        case writer
        case reader
    }

    private let handle: OpaquePointer
    /// Prepared statements by SQL text, the least used finalized when the cache is full.
    private var statements = StatementCache<PreparedStatement>(capacity: 512)
    private var closed = false

    init(path: String, role: Role) throws(DatabaseError) {
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let status = sqlite3_open_v2(path, &handle, flags, nil)
        guard status == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(handle)
            throw .connection("cannot open SQLite database \(path): \(message)")
        }
        self.handle = handle
        sqlite3_extended_result_codes(handle, 1)
        sqlite3_busy_timeout(handle, 5000)
        do {
            // Reading the schema version fails at once on a file that is not a database.
            try executeScript("PRAGMA schema_version")
            switch role {
            case .writer:
                // Temporary b-trees (sorts, DISTINCT) in memory: on disk they cost a file per few
                // transitions. A checkpoint every 2,000 WAL pages rather than 1,000; and a WAL grown
                // by a burst is cut back to 64 MiB after a checkpoint, not kept at its peak.
                try executeScript(
                    """
                    PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;
                    PRAGMA wal_autocheckpoint = 2000; PRAGMA journal_size_limit = 67108864
                    """
                )
            case .reader:
                try executeScript("PRAGMA foreign_keys = ON; PRAGMA query_only = ON")
            }
        } catch {
            close()
            throw .connection("cannot open SQLite database \(path): \(error)")
        }
    }

    func close() {
        guard !closed else { return }
        closed = true
        for statement in statements.removeAll() { sqlite3_finalize(statement.handle) }
        sqlite3_close_v2(handle)
    }

    /// Runs transactions waiting together in one SQLite transaction, each in a savepoint of it, and
    /// commits once: the pages they share (the ends of the tables and indexes new rows go to) are
    /// written to the WAL once per group instead of once per transaction. A member that fails is
    /// rolled back to its savepoint and gets its own error; the others are unaffected. When the
    /// group cannot begin or commit, every member gets that error (a busy or full database is
    /// retried by the caller) and nothing is kept.
    func commitTogether(_ group: [ConnectionPool<SQLiteConnection>.GroupedTransaction]) {
        func abandon(_ error: DatabaseError) {
            try? executeScript("ROLLBACK")
            for member in group { member.answer(error) }
        }
        do {
            try executeScript("BEGIN IMMEDIATE")
        } catch {
            for member in group { member.answer(error) }
            return
        }
        if group.count == 1, let only = group.first {
            // Alone, no savepoint is needed: a failure rolls the transaction back.
            guard only.run(self) else {
                try? executeScript("ROLLBACK")
                return only.answer(nil)
            }
        } else {
            for (index, member) in group.enumerated() {
                do throws(DatabaseError) {
                    try executeScript("SAVEPOINT grouped")
                    if member.run(self) {
                        try executeScript("RELEASE grouped")
                        continue
                    }
                    if sqlite3_get_autocommit(handle) != 0 {
                        // SQLite ended the whole transaction (a full disk, an I/O error): the
                        // member has its own error, and the others' work is gone with it.
                        member.answer(nil)
                        for (other, undone) in group.enumerated() where other != index {
                            undone.answer(.transient("undone with its commit group after another transaction failed"))
                        }
                        return
                    }
                    try executeScript("ROLLBACK TO grouped")
                    try executeScript("RELEASE grouped")
                } catch {
                    return abandon(error)
                }
            }
        }
        do {
            try executeScript("COMMIT")
        } catch {
            return abandon(error)
        }
        for member in group { member.answer(nil) }
    }

    /// Runs read-only statements in one snapshot: a single statement alone, several in a transaction.
    func snapshot(_ statements: [SQLStatement]) -> Result<[[Row]], DatabaseError> {
        Result { () throws(DatabaseError) -> [[Row]] in
            if statements.count == 1 { return [try run(statements[0], collect: true).rows] }
            try executeScript("BEGIN")
            defer { try? executeScript("COMMIT") }
            return try statements.map { statement throws(DatabaseError) in try run(statement, collect: true).rows }
        }
    }

    func executeScript(_ sql: String) throws(DatabaseError) {
        var message: UnsafeMutablePointer<CChar>?
        let status = sqlite3_exec(handle, sql, nil, nil, &message)
        guard status == SQLITE_OK else {
            let text = message.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
            sqlite3_free(message)
            throw Self.error(status, message: text, sql: sql)
        }
    }

    /// Runs a statement; `collect` says whether to gather rows. Returns the rows and the number of
    /// rows changed.
    func run(_ statement: SQLStatement, collect: Bool) throws(DatabaseError) -> (rows: [Row], changes: Int) {
        let prepared = try prepare(statement.sql)
        defer {
            sqlite3_reset(prepared.handle)
            sqlite3_clear_bindings(prepared.handle)
        }
        for (slot, number) in prepared.parameterNumbers.enumerated() {
            guard number >= 1, number <= statement.binds.count else {
                throw .statement(code: "bind", message: "no value for parameter $\(number)", sql: statement.sql)
            }
            try bind(statement.binds[number - 1], at: Int32(slot + 1), in: prepared.handle, sql: statement.sql)
        }
        var rows: [Row] = []
        while true {
            let status = sqlite3_step(prepared.handle)
            if status == SQLITE_DONE { break }
            guard status == SQLITE_ROW else {
                throw Self.error(status, message: String(cString: sqlite3_errmsg(handle)), sql: statement.sql)
            }
            guard collect else { continue }
            var values: [String?] = []
            values.reserveCapacity(prepared.columns.names.count)
            for column in 0..<Int32(prepared.columns.names.count) {
                if sqlite3_column_type(prepared.handle, column) == SQLITE_NULL {
                    values.append(nil)
                } else {
                    values.append(String(cString: sqlite3_column_text(prepared.handle, column)))
                }
            }
            rows.append(Row.make(columns: prepared.columns, values: values))
        }
        return (rows, Int(sqlite3_changes(handle)))
    }

    private struct PreparedStatement {
        let handle: OpaquePointer
        /// For each parameter slot, the number `n` of its `$n` name.
        let parameterNumbers: [Int]
        let columns: SQLColumns
    }

    private func prepare(_ sql: String) throws(DatabaseError) -> PreparedStatement {
        if let prepared = statements.value(for: sql) { return prepared }
        var statement: OpaquePointer?
        let status = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard status == SQLITE_OK, let statement else {
            throw Self.error(status, message: String(cString: sqlite3_errmsg(handle)), sql: sql)
        }
        var numbers: [Int] = []
        for slot in 0..<sqlite3_bind_parameter_count(statement) {
            let name = sqlite3_bind_parameter_name(statement, slot + 1).map { String(cString: $0) } ?? ""
            guard name.hasPrefix("$"), let number = Int(name.dropFirst()) else {
                sqlite3_finalize(statement)
                throw .statement(code: "bind", message: "parameters must be written $1, $2, …; found '\(name)'", sql: sql)
            }
            numbers.append(number)
        }
        let columns = SQLColumns(
            (0..<sqlite3_column_count(statement)).map { String(cString: sqlite3_column_name(statement, $0)) }
        )
        let prepared = PreparedStatement(handle: statement, parameterNumbers: numbers, columns: columns)
        // No statement is being stepped while another is prepared: each runs to its end first.
        for evicted in statements.insert(prepared, for: sql) { sqlite3_finalize(evicted.handle) }
        return prepared
    }

    private func bind(_ value: SQLValue, at slot: Int32, in statement: OpaquePointer, sql: String) throws(DatabaseError) {
        let status: Int32
        switch value {
        case .null: status = sqlite3_bind_null(statement, slot)
        case .integer(let number): status = sqlite3_bind_int64(statement, slot, Int64(number))
        case .double(let number): status = sqlite3_bind_double(statement, slot, number)
        case .bool(let flag): status = sqlite3_bind_int64(statement, slot, flag ? 1 : 0)
        case .text, .json, .date:
            let text = value.parameterText ?? ""
            status = text.utf8CString.withUnsafeBufferPointer { buffer in
                sqlite3_bind_text(statement, slot, buffer.baseAddress, Int32(buffer.count - 1), sqliteTransient)
            }
        }
        guard status == SQLITE_OK else { throw Self.error(status, message: String(cString: sqlite3_errmsg(handle)), sql: sql) }
    }

    static func error(_ status: Int32, message: String, sql: String) -> DatabaseError {
        let kind: DatabaseError.Kind
        switch status & 0xFF {
        case SQLITE_BUSY, SQLITE_LOCKED: kind = .transient
        case SQLITE_CONSTRAINT where status == sqliteConstraintUnique || status == sqliteConstraintPrimaryKey: kind = .uniqueViolation
        case SQLITE_FULL, SQLITE_IOERR, SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_NOMEM, SQLITE_CORRUPT, SQLITE_NOTADB, SQLITE_PERM:
            kind = .unavailable
        default: kind = .statement
        }
        // SQLite names the columns of a violated constraint in its message, not the constraint.
        return DatabaseError(kind, message, code: "SQLITE_\(status)", sql: sql)
    }
}

/// `SQLITE_TRANSIENT`: SQLite copies bound text before the call returns.
private let sqliteTransient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
private let sqliteConstraintUnique = SQLITE_CONSTRAINT | (8 << 8)
private let sqliteConstraintPrimaryKey = SQLITE_CONSTRAINT | (6 << 8)

/// A session on the writer or a reader. SQLite is local, so queued writes run at once; the first
/// failure (or unexpected row count) is kept and thrown when the transaction ends.
final class SQLiteSession: DatabaseSession {
    private let connection: SQLiteConnection
    private var deferredError: DatabaseError?

    init(connection: SQLiteConnection) {
        self.connection = connection
    }

    func query(_ statement: SQLStatement) throws -> [Row] {
        try finish()
        return try connection.run(statement, collect: true).rows
    }

    func execute(_ statement: SQLStatement) throws -> Int {
        try finish()
        return try connection.run(statement, collect: false).changes
    }

    func enqueue(_ statement: SQLStatement, expectedRows: Int?, conflictMessage: String) {
        guard deferredError == nil else { return }
        do {
            let changes = try connection.run(statement, collect: false).changes
            if let expectedRows, changes != expectedRows { deferredError = .conflict(conflictMessage) }
        } catch {
            deferredError = error
        }
    }

    func executeScript(_ sql: String) throws {
        try finish()
        try connection.executeScript(sql)
    }

    /// Throws the first failure of a queued write.
    func finish() throws(DatabaseError) {
        if let deferredError { throw deferredError }
    }
}

/// Which file a path names: its device and inode.
struct FileIdentity: Equatable, Sendable {
    let device: UInt64
    let inode: UInt64

    init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
    }
}
