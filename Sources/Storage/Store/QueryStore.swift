import BudJSON
public import Foundation
public import PipelineEngine

/// A pipeline definition with what its executions add to it in listings.
public struct PipelineDefinitionSummary: Sendable, Equatable {
    public var record: PipelineDefinitionRecord
    public var executionCount: Int
    /// When its newest execution was created.
    public var lastExecutionAt: Date?

    public init(record: PipelineDefinitionRecord, executionCount: Int, lastExecutionAt: Date?) {
        self.record = record
        self.executionCount = executionCount
        self.lastExecutionAt = lastExecutionAt
    }
}

/// Which executions a listing returns; `nil` fields do not filter.
public struct ExecutionFilter: Sendable, Equatable {
    public var pipelineID: String?
    public var status: ExecutionStatus?
    public var initiator: String?
    /// Created at or after.
    public var createdFrom: Date?
    /// Created at or before.
    public var createdUntil: Date?
    /// Only this user's executions.
    public var ownerID: String?

    public init(
        pipelineID: String? = nil, status: ExecutionStatus? = nil, initiator: String? = nil, createdFrom: Date? = nil,
        createdUntil: Date? = nil, ownerID: String? = nil
    ) {
        self.ownerID = ownerID
        self.pipelineID = pipelineID
        self.status = status
        self.initiator = initiator
        self.createdFrom = createdFrom
        self.createdUntil = createdUntil
    }
}

/// Which progress events a listing returns; `nil` fields do not filter.
public struct ProgressEventFilter: Sendable, Equatable {
    public var kind: ProgressEventRecord.Kind?
    /// Timestamp at or after.
    public var from: Date?
    /// Timestamp at or before.
    public var until: Date?

    public init(kind: ProgressEventRecord.Kind? = nil, from: Date? = nil, until: Date? = nil) {
        self.kind = kind
        self.from = from
        self.until = until
    }
}

extension PipelineStore {
    // MARK: Listings for the API

    /// Definitions newest first, with their execution counts. With an `ownerID`, only that owner's
    /// definitions, plus the system-owned ones when `includeSystem`; without, all of them.
    public func definitionSummaries(ownerID: String?, includeSystem: Bool) async throws -> [PipelineDefinitionSummary] {
        var binds: [SQLValue] = []
        var filter = ""
        if let ownerID {
            binds.append(.text(ownerID))
            filter = includeSystem ? "WHERE d.user_id = $1 OR d.system_owned" : "WHERE d.user_id = $1"
        }
        let columns = Self.definitionColumns.split(separator: ",").map { "d." + $0.trimmingCharacters(in: .whitespaces) }
        let sql = """
            SELECT \(columns.joined(separator: ", ")), COALESCE(e.total, 0) AS execution_count, e.latest AS last_execution_at
            FROM pipeline_definition d
            LEFT JOIN (SELECT pipeline_id, count(*) AS total, max(created_at) AS latest FROM pipeline_execution
                WHERE pipeline_id IS NOT NULL GROUP BY pipeline_id) e ON e.pipeline_id = d.id
            \(filter)
            ORDER BY d.created_at DESC, d.id
            """
        let statement = SQLStatement(sql, binds)
        return try await database.read(statement).map { row in
            PipelineDefinitionSummary(
                record: try Self.definition(row),
                executionCount: try row.int("execution_count"),
                lastExecutionAt: try row.optionalDate("last_execution_at")
            )
        }
    }

    /// A definition with its execution count, or `nil` when it does not exist.
    public func definitionSummary(id: String) async throws -> PipelineDefinitionSummary? {
        let results = try await database.read([
            SQLStatement("SELECT \(Self.definitionColumns) FROM pipeline_definition WHERE id = $1", [.text(id)]),
            SQLStatement("SELECT count(*) AS total, max(created_at) AS latest FROM pipeline_execution WHERE pipeline_id = $1", [.text(id)]),
        ])
        guard let row = results[0].first else { return nil }
        let statistics = results[1].first
        return PipelineDefinitionSummary(
            record: try Self.definition(row),
            executionCount: try statistics?.int("total") ?? 0,
            lastExecutionAt: try statistics?.optionalDate("latest")
        )
    }

    /// Executions newest first, a page at a time, and how many match in all.
    public func executions(matching filter: ExecutionFilter, limit: Int, offset: Int) async throws -> (
        records: [ExecutionRecord], total: Int
    ) {
        var conditions = SQLConditions()
        if let pipelineID = filter.pipelineID { conditions.add("pipeline_id =", .text(pipelineID)) }
        if let status = filter.status { conditions.add("status =", .text(status.rawValue)) }
        if let initiator = filter.initiator { conditions.add("initiator =", .text(initiator)) }
        if let from = filter.createdFrom { conditions.add("created_at >=", .date(from)) }
        if let until = filter.createdUntil { conditions.add("created_at <=", .date(until)) }
        if let ownerID = filter.ownerID { conditions.add("user_id =", .text(ownerID)) }
        let whereClause = conditions.whereClause
        let filterBinds = conditions.binds
        let results = try await database.read([
            SQLStatement(
                "SELECT \(Self.executionColumns) FROM pipeline_execution \(whereClause) ORDER BY created_at DESC, id "
                    + "LIMIT $\(filterBinds.count + 1) OFFSET $\(filterBinds.count + 2)",
                filterBinds + [.integer(max(0, limit)), .integer(max(0, offset))]
            ),
            SQLStatement("SELECT count(*) AS total FROM pipeline_execution \(whereClause)", filterBinds),
        ])
        return (try results[0].map(Self.execution), try results[1].first?.int("total") ?? 0)
    }

    /// Progress events of an execution, newest first, a page at a time, and how many match in all.
    public func progressEvents(executionID: String, matching filter: ProgressEventFilter, limit: Int, offset: Int) async throws -> (
        events: [ProgressEventRecord], total: Int
    ) {
        var conditions = SQLConditions()
        conditions.add("execution_id =", .text(executionID))
        if let kind = filter.kind { conditions.add("event_type =", .text(kind.rawValue)) }
        if let from = filter.from { conditions.add("timestamp >=", .date(from)) }
        if let until = filter.until { conditions.add("timestamp <=", .date(until)) }
        let whereClause = conditions.whereClause
        let filterBinds = conditions.binds
        let results = try await database.read([
            SQLStatement(
                "SELECT \(Self.progressEventColumns) FROM progress_event \(whereClause) ORDER BY sequence_number DESC "
                    + "LIMIT $\(filterBinds.count + 1) OFFSET $\(filterBinds.count + 2)",
                filterBinds + [.integer(max(0, limit)), .integer(max(0, offset))]
            ),
            SQLStatement("SELECT count(*) AS total FROM progress_event \(whereClause)", filterBinds),
        ])
        return (try results[0].map(Self.progressEvent), try results[1].first?.int("total") ?? 0)
    }
}

/// A `WHERE` clause built from optional filters, each comparing a column with a bound parameter.
struct SQLConditions {
    private var clauses: [String] = []
    private(set) var binds: [SQLValue] = []

    /// Adds `comparison $n` for `value`, e.g. `add("created_at >=", .date(from))`.
    mutating func add(_ comparison: String, _ value: SQLValue) {
        binds.append(value)
        clauses.append("\(comparison) $\(binds.count)")
    }

    /// `WHERE a AND b`, or nothing when no filter applies.
    var whereClause: String { clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ") }
}
