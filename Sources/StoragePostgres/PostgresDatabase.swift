import CLibPQ
public import CoreMetrics
import Foundation
public import Storage

/// PostgreSQL through the system libpq: a pool of connections, each on its own thread, speaking
/// the extended protocol in pipeline mode with prepared statements.
///
/// A transaction's writes are queued and sent with its `COMMIT` in one round trip; reads that
/// must see a consistent state run in a repeatable-read snapshot.
public final class PostgresDatabase: Database {
    public let dialect = SQLDialect.postgres
    private let pool: ConnectionPool<PostgresConnection>
    let connectionInfo: String

    /// Connects to the server of `url` (a libpq connection URI or keyword string), failing at once
    /// when it cannot be reached. `metrics` receives the pool's queue waits and refusals.
    public static func connect(
        url: String, maximumConnections: Int = 10, metrics: (any MetricsFactory)? = nil
    ) async throws -> PostgresDatabase {
        let database = PostgresDatabase(url: url, maximumConnections: maximumConnections, metrics: metrics)
        do {
            _ = try await database.pool.withConnection { _ in true }
        } catch {
            await database.close()
            throw error
        }
        return database
    }

    private init(url: String, maximumConnections: Int, metrics: (any MetricsFactory)?) {
        connectionInfo = url
        pool = ConnectionPool(
            name: "bp-postgres",
            maximumConnections: maximumConnections,
            open: { () throws(DatabaseError) in try PostgresConnection(url: url) },
            isHealthy: { $0.isHealthy },
            close: { $0.close() },
            runReads: { connection, reads in connection.snapshots(reads) },
            metrics: metrics.map { PoolMetrics(pool: "postgres", factory: $0) }
        )
    }

    public func transaction<Result: Sendable>(_ body: @escaping @Sendable (any DatabaseSession) throws -> Result) async throws -> Result {
        try await retryingTransient {
            try await pool.withConnection { connection in
                try PostgresSession.run(on: connection, begin: "BEGIN", body)
            }
        }
    }

    public func read(_ statements: [SQLStatement]) async throws -> [[Row]] {
        try await retryingTransient {
            try await pool.read(statements)
        }
    }

    public func withSession<Result: Sendable>(_ body: @escaping @Sendable (any DatabaseSession) throws -> Result) async throws -> Result {
        try await pool.withConnection { connection in
            try PostgresSession.run(on: connection, begin: nil, body)
        }
    }

    public func serverVersion() async throws -> String {
        try await pool.withConnection { connection in "PostgreSQL \(connection.serverVersion)" }
    }

    public func close() async {
        pool.close()
    }
}

/// What one command of a pipeline returned.
private enum CommandResult {
    case success(rows: [Row], changes: Int)
    case failure(DatabaseError)
    /// Not run: an earlier command of the same pipeline failed.
    case skipped
}

/// One libpq connection and its prepared statements. Used only by the thread that opened it.
final class PostgresConnection {
    /// The libpq handle, for the few callers that wait on its socket (see ``PostgresClusterLink``).
    let connection: OpaquePointer
    /// SQL text → prepared statement name, for statements the server confirmed; the least used
    /// are deallocated when it is full.
    private var prepared = StatementCache<String>(capacity: PostgresConnection.preparedStatementLimit)
    /// Names evicted from `prepared`, deallocated on the server before the next pipeline that
    /// starts outside a transaction.
    private var evictedStatements: [String] = []
    /// SQL text → the column names of its results, built once per statement.
    private var resultColumns = StatementCache<SQLColumns>(capacity: PostgresConnection.preparedStatementLimit)
    private var nextStatementNumber = 0
    private var closed = false
    /// How many statements stay prepared on one connection.
    static let preparedStatementLimit = 512

    /// Whether the handle was closed (freed): nothing may use it then.
    var isClosed: Bool { closed }

    /// `defaults`: connection keywords the URL may override (it comes after them).
    init(url: String, defaults: [(keyword: String, value: String)] = []) throws(DatabaseError) {
        let hasTimeout = url.contains("connect_timeout")
        var keywords = defaults.map(\.keyword) + ["dbname", "application_name"]
        var values = defaults.map(\.value) + [url, "budpipeline"]
        if !hasTimeout {
            keywords.append("connect_timeout")
            values.append("10")
        }
        let keywordPointers = keywords.map { strdup($0) } + [nil]
        let valuePointers = values.map { strdup($0) } + [nil]
        defer {
            keywordPointers.forEach { free($0) }
            valuePointers.forEach { free($0) }
        }
        let connection = keywordPointers.map { UnsafePointer($0) }.withUnsafeBufferPointer { keywordBuffer in
            valuePointers.map { UnsafePointer($0) }.withUnsafeBufferPointer { valueBuffer in
                PQconnectdbParams(keywordBuffer.baseAddress, valueBuffer.baseAddress, 1)
            }
        }
        guard let connection else { throw .connection("out of memory") }
        self.connection = connection
        guard PQstatus(connection) == CONNECTION_OK else {
            // libpq may quote the connection string, password included.
            let message = ConnectionSecrets(connectionInfo: url).scrub(Self.clean(String(cString: PQerrorMessage(connection))))
            PQfinish(connection)
            closed = true
            throw .connection(message)
        }
        // Notices (such as "relation already exists, skipping") are not errors: keep them off stderr.
        PQsetNoticeProcessor(connection, { _, _ in }, nil)
        do {
            try executeScript("SET TIME ZONE 'UTC'")
        } catch {
            close()
            throw .connection(ConnectionSecrets(connectionInfo: url).scrub("\(error)"))
        }
    }

    var isHealthy: Bool {
        !closed && PQstatus(connection) == CONNECTION_OK && PQtransactionStatus(connection) == PQTRANS_IDLE
            && PQpipelineStatus(connection) == PQ_PIPELINE_OFF
    }

    var serverVersion: String {
        PQparameterStatus(connection, "server_version").map { String(cString: $0) } ?? "unknown"
    }

    func close() {
        guard !closed else { return }
        closed = true
        PQfinish(connection)
    }

    /// Runs one statement on its own and returns its rows.
    func query(_ statement: SQLStatement) throws(DatabaseError) -> [Row] {
        switch try runPipeline([statement])[0] {
        case .success(let rows, _): return rows
        case .failure(let error): throw error
        case .skipped: throw .statement(code: "pipeline", message: "the server skipped a command without an error", sql: statement.sql)
        }
    }

    /// Runs SQL text outside pipeline mode (several statements allowed, no parameters).
    func executeScript(_ sql: String) throws(DatabaseError) {
        guard !closed, let result = PQexec(connection, sql) else { throw lostConnection() }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY: return
        default: throw error(from: result, sql: sql)
        }
    }

    /// Runs independent reads in one round trip and returns the outcome of each. A read's
    /// statements see one snapshot: a single statement alone (it is its own snapshot), several
    /// inside a read-only repeatable-read transaction. That transaction's `COMMIT` follows a
    /// synchronisation point of its own, so it also ends the transaction when a statement failed
    /// (the server then rolls back), and one read's failure never reaches the next.
    func snapshots(_ reads: [[SQLStatement]]) -> [Result<[[Row]], DatabaseError>] {
        var segments: [[SQLStatement]] = []
        var layout: [(segment: Int, inTransaction: Bool)] = []
        for statements in reads {
            let inTransaction = statements.count > 1
            layout.append((segments.count, inTransaction))
            if inTransaction {
                segments.append([SQLStatement("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")] + statements)
                segments.append([SQLStatement("COMMIT")])
            } else {
                segments.append(statements)
            }
        }
        let results: [[CommandResult]]
        do {
            results = try runPipeline(segments: segments)
        } catch {
            return reads.map { _ in .failure(error) }
        }
        return layout.map { entry in
            var rows: [[Row]] = []
            let statements = segments[entry.segment]
            for (index, result) in results[entry.segment].enumerated() where !(entry.inTransaction && index == 0) {
                switch result {
                case .success(let resultRows, _): rows.append(resultRows)
                case .failure(let error): return .failure(error)
                case .skipped:
                    return .failure(
                        .statement(code: "pipeline", message: "the server skipped a command without an error", sql: statements[index].sql))
                }
            }
            return .success(rows)
        }
    }

    /// Sends `statements` in one pipeline and returns one result per statement.
    fileprivate func runPipeline(_ statements: [SQLStatement]) throws(DatabaseError) -> [CommandResult] {
        try runPipeline(segments: [statements])[0]
    }

    /// Sends `segments` in one pipeline, a synchronisation point after each, and returns one result
    /// per statement of each segment. A failure skips the rest of its own segment only.
    fileprivate func runPipeline(segments: [[SQLStatement]]) throws(DatabaseError) -> [[CommandResult]] {
        // A connection closed after a failure is never used again: its handle is freed.
        guard !closed else { throw lostConnection() }
        try deallocateEvicted()
        guard PQenterPipelineMode(connection) == 1 else { throw lostConnection() }
        // Statements prepared by this pipeline: by segment, the index of the statement and its name.
        var preparing: [[Int: (sql: String, name: String)]] = []
        var preparedHere: [String: String] = [:]
        for segment in segments {
            var segmentPreparations: [Int: (sql: String, name: String)] = [:]
            for (index, statement) in segment.enumerated() {
                var name = prepared.value(for: statement.sql) ?? preparedHere[statement.sql]
                if name == nil {
                    nextStatementNumber += 1
                    let newName = "bp_\(nextStatementNumber)"
                    guard PQsendPrepare(connection, newName, statement.sql, 0, nil) == 1 else { throw abandonPipeline() }
                    segmentPreparations[index] = (statement.sql, newName)
                    preparedHere[statement.sql] = newName
                    name = newName
                }
                let sent = withParameters(statement.binds) { count, values in
                    if let name {
                        PQsendQueryPrepared(connection, name, count, values, nil, nil, 0)
                    } else {
                        PQsendQueryParams(connection, statement.sql, count, nil, values, nil, nil, 0)
                    }
                }
                guard sent == 1 else { throw abandonPipeline() }
            }
            guard PQpipelineSync(connection) == 1 else { throw abandonPipeline() }
            preparing.append(segmentPreparations)
        }

        var results: [[CommandResult]] = []
        results.reserveCapacity(segments.count)
        for (segmentIndex, segment) in segments.enumerated() {
            var segmentResults: [CommandResult] = []
            segmentResults.reserveCapacity(segment.count)
            for (index, statement) in segment.enumerated() {
                var preparationFailure: CommandResult?
                if let preparation = preparing[segmentIndex][index] {
                    let outcome = try readCommand(sql: statement.sql)
                    switch outcome {
                    case .success: evictedStatements += prepared.insert(preparation.name, for: preparation.sql)
                    case .failure, .skipped: preparationFailure = outcome
                    }
                }
                let outcome = try readCommand(sql: statement.sql)
                segmentResults.append(preparationFailure ?? outcome)
            }
            try readSynchronisation()
            results.append(segmentResults)
        }
        guard PQexitPipelineMode(connection) == 1 else { throw lostConnection() }
        return results
    }

    /// Deallocates the statements evicted from the cache, when no transaction is open (a failure
    /// inside one would abort it; they wait for the next idle moment instead).
    private func deallocateEvicted() throws(DatabaseError) {
        guard !evictedStatements.isEmpty, PQtransactionStatus(connection) == PQTRANS_IDLE else { return }
        let names = evictedStatements
        evictedStatements = []
        try executeScript(names.map { "DEALLOCATE \($0)" }.joined(separator: "; "))
    }

    /// How many statements are prepared on the server now.
    var preparedStatementCount: Int { prepared.count }

    /// Reads up to and including the result that marks a synchronisation point.
    private func readSynchronisation() throws(DatabaseError) {
        while true {
            guard let result = PQgetResult(connection) else { throw lostConnection() }
            let status = PQresultStatus(result)
            PQclear(result)
            if status == PGRES_PIPELINE_SYNC { return }
        }
    }

    /// Reads the result of one command and the `NULL` that follows it.
    private func readCommand(sql: String) throws(DatabaseError) -> CommandResult {
        guard let result = PQgetResult(connection) else { throw lostConnection() }
        let outcome: CommandResult
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK: outcome = .success(rows: rows(of: result, sql: sql), changes: Int(PQntuples(result)))
        case PGRES_COMMAND_OK: outcome = .success(rows: [], changes: Int(String(cString: PQcmdTuples(result))) ?? 0)
        case PGRES_PIPELINE_ABORTED: outcome = .skipped
        default: outcome = .failure(error(from: result, sql: sql))
        }
        PQclear(result)
        while let extra = PQgetResult(connection) { PQclear(extra) }
        return outcome
    }

    private func rows(of result: OpaquePointer, sql: String) -> [Row] {
        let rowCount = PQntuples(result)
        let columnCount = PQnfields(result)
        let columns: SQLColumns
        if let known = resultColumns.value(for: sql), known.names.count == columnCount {
            columns = known
        } else {
            columns = SQLColumns((0..<columnCount).map { String(cString: PQfname(result, $0)) })
            resultColumns.insert(columns, for: sql)
        }
        var rows: [Row] = []
        rows.reserveCapacity(Int(rowCount))
        for row in 0..<rowCount {
            var values: [String?] = []
            values.reserveCapacity(Int(columnCount))
            for column in 0..<columnCount {
                if PQgetisnull(result, row, column) == 1 {
                    values.append(nil)
                } else {
                    values.append(String(cString: PQgetvalue(result, row, column)))
                }
            }
            rows.append(Row.make(columns: columns, values: values))
        }
        return rows
    }

    private func withParameters<Result>(
        _ binds: [SQLValue],
        _ body: (Int32, UnsafePointer<UnsafePointer<CChar>?>?) -> Result
    ) -> Result {
        let copies: [UnsafeMutablePointer<CChar>?] = binds.map { value in value.parameterText.map { strdup($0) } ?? nil }
        defer { copies.forEach { free($0) } }
        return copies.map { UnsafePointer($0) }.withUnsafeBufferPointer { buffer in
            body(Int32(binds.count), buffer.baseAddress)
        }
    }

    /// A send failed part-way: the connection is in an unknown state and is dropped.
    private func abandonPipeline() -> DatabaseError {
        let error = lostConnection()
        close()
        return error
    }

    private func lostConnection() -> DatabaseError {
        .connection(closed ? "connection closed" : Self.clean(String(cString: PQerrorMessage(connection))))
    }

    private func error(from result: OpaquePointer, sql: String) -> DatabaseError {
        func field(_ code: Character) -> String? {
            guard let ascii = code.asciiValue else { return nil }
            return PQresultErrorField(result, Int32(ascii)).map { Self.clean(String(cString: $0)) }
        }
        let state = field("C") ?? ""
        let message = field("M") ?? Self.clean(String(cString: PQresultErrorMessage(result)))
        let kind: DatabaseError.Kind
        switch state {
        case "23505": kind = .uniqueViolation
        case "40001", "40P01", "55P03": kind = .transient
        case Self.conflictState: kind = .conflict
        case "":
            return .connection(message.isEmpty ? Self.clean(String(cString: PQerrorMessage(connection))) : message)
        case let code where code.hasPrefix("08") || code.hasPrefix("57P"): kind = .connection
        // Disk full, out of memory, too many connections (53), I/O errors (58), a read-only
        // server (25006), corruption (XX001, XX002).
        case let code where code.hasPrefix("53") || code.hasPrefix("58") || ["25006", "XX001", "XX002"].contains(code):
            kind = .unavailable
        default: kind = .statement
        }
        return DatabaseError(kind, message, code: state, detail: field("D"), constraint: field("n"), sql: sql)
    }

    /// The SQLSTATE `budpipeline_expect_rows` raises (see the PostgreSQL migrations).
    static let conflictState = "BP409"

    private static func clean(_ message: String) -> String {
        message.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }
}

/// A session on one connection. Queued writes wait for the next query or the commit and travel
/// with it in one pipeline.
final class PostgresSession: DatabaseSession {
    private let connection: PostgresConnection
    private let begin: String?
    private var begun = false
    private var queued: [SQLStatement] = []

    private init(connection: PostgresConnection, begin: String?) {
        self.connection = connection
        self.begin = begin
    }

    /// Runs `body` in a transaction opened with `begin` (none when `nil`), committing at the end.
    static func run<Result>(on connection: PostgresConnection, begin: String?, _ body: (any DatabaseSession) throws -> Result) throws
        -> Result
    {
        let session = PostgresSession(connection: connection, begin: begin)
        do {
            let result = try body(session)
            try session.commit()
            return result
        } catch {
            session.rollback()
            throw error
        }
    }

    func query(_ statement: SQLStatement) throws -> [Row] {
        guard case .success(let rows, _) = try send(statement) else { return [] }
        return rows
    }

    func execute(_ statement: SQLStatement) throws -> Int {
        guard case .success(_, let changes) = try send(statement) else { return 0 }
        return changes
    }

    func enqueue(_ statement: SQLStatement, expectedRows: Int?, conflictMessage: String) {
        guard let expectedRows else {
            queued.append(statement)
            return
        }
        // The server checks the count and aborts the transaction when it differs.
        let count = statement.binds.count
        let guarded = SQLStatement(
            "WITH changed AS (\(statement.sql) RETURNING 1) "
                + "SELECT budpipeline_expect_rows(CAST(count(*) AS integer), $\(count + 1), $\(count + 2)) FROM changed",
            statement.binds + [.integer(expectedRows), .text(conflictMessage)]
        )
        queued.append(guarded)
    }

    func executeScript(_ sql: String) throws {
        try flush()
        try connection.executeScript(sql)
    }

    private func send(_ statement: SQLStatement) throws -> CommandResult? {
        let results = try runBatch(queued + [statement])
        queued = []
        return results.last
    }

    private func flush() throws {
        guard !queued.isEmpty else { return }
        _ = try runBatch(queued)
        queued = []
    }

    private func commit() throws {
        if begin == nil {
            try flush()
            return
        }
        guard begun || !queued.isEmpty else { return }
        _ = try runBatch(queued + [SQLStatement("COMMIT")])
        queued = []
        begun = false
    }

    private func rollback() {
        queued = []
        guard begun else { return }
        begun = false
        try? connection.executeScript("ROLLBACK")
    }

    /// Runs statements in one pipeline, opening the transaction first if needed; throws the first
    /// failure.
    private func runBatch(_ statements: [SQLStatement]) throws -> [CommandResult] {
        var batch = statements
        let opening = begin != nil && !begun
        if opening, let begin { batch.insert(SQLStatement(begin), at: 0) }
        if begin != nil { begun = true }
        var results = try connection.runPipeline(batch)
        for result in results {
            if case .failure(let error) = result { throw error }
        }
        // Nothing failed, so nothing may have been skipped; a skipped command would be lost work.
        for (index, result) in results.enumerated() {
            if case .skipped = result {
                throw DatabaseError.statement(
                    code: "pipeline", message: "the server skipped a command without an error", sql: batch[index].sql)
            }
        }
        if opening { results.removeFirst() }
        return results
    }
}
