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

/// Pipeline definitions: stored whole, updated under optimistic locking, listed with what their
/// executions add.
public struct DefinitionStore: StorePart {
    let database: any Database

    public func insert(_ record: PipelineDefinitionRecord) async throws {
        try await database.transaction { session in
            try session.execute(
                """
                INSERT INTO pipeline_definition (id, version, name, description, icon, dag_definition, status, user_id, system_owned,
                    step_count, created_by, created_at, updated_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                """,
                .id(record.id), .integer(record.version), .text(record.name), .optional(record.description, SQLValue.text),
                .optional(record.icon, SQLValue.text), .json(record.dag), .text(record.status.rawValue),
                .optional(record.userID, SQLValue.text), .bool(record.systemOwned), .integer(record.stepCount),
                .text(record.createdBy), .date(record.createdAt), .date(record.updatedAt)
            )
        }
    }

    /// The definition, or `nil` when it does not exist.
    public func find(id: PipelineID) async throws -> PipelineDefinitionRecord? {
        try await database.read("SELECT \(PipelineDefinitionRecord.columns) FROM pipeline_definition WHERE id = $1", .id(id)).first.map(
            PipelineDefinitionRecord.init(row:))
    }

    /// Stores `record` as the next version of the definition when the stored one is still at
    /// `expectedVersion`. Returns the stored record; throws ``DatabaseError/conflict(_:)`` when
    /// someone updated it first and ``StoreError/notFound(_:)`` when it does not exist.
    public func update(_ record: PipelineDefinitionRecord, expectedVersion: Int) async throws -> PipelineDefinitionRecord {
        var updated = record
        updated.version = expectedVersion + 1
        let stored = updated
        try await database.transaction { session in
            let changed = try session.execute(
                """
                UPDATE pipeline_definition SET version = $2, name = $3, description = $4, icon = $5, dag_definition = $6, status = $7,
                    step_count = $8, updated_at = $9
                WHERE id = $1 AND version = $10
                """,
                .id(stored.id), .integer(stored.version), .text(stored.name), .optional(stored.description, SQLValue.text),
                .optional(stored.icon, SQLValue.text), .json(stored.dag), .text(stored.status.rawValue), .integer(stored.stepCount),
                .date(stored.updatedAt), .integer(expectedVersion)
            )
            guard changed == 1 else {
                let current = try session.query("SELECT version FROM pipeline_definition WHERE id = $1", .id(stored.id)).first
                guard let current else { throw StoreError.notFound("pipeline \(stored.id)") }
                throw DatabaseError.conflict(
                    "pipeline \(stored.id) is at version \(try current.int("version")), not \(expectedVersion): it was updated concurrently"
                )
            }
        }
        return updated
    }

    /// Deletes a definition; its executions stay, detached from it. False when it did not exist.
    @discardableResult
    public func delete(id: PipelineID) async throws -> Bool {
        try await database.transaction { session in
            try session.execute("DELETE FROM pipeline_definition WHERE id = $1", .id(id)) == 1
        }
    }

    // MARK: Listings for the API

    /// Definitions newest first, with their execution counts. With an `ownerID`, only that owner's
    /// definitions, plus the system-owned ones when `includeSystem`; without, all of them.
    public func summaries(ownerID: String?, includeSystem: Bool) async throws -> [PipelineDefinitionSummary] {
        var binds: [SQLValue] = []
        var filter = ""
        if let ownerID {
            binds.append(.text(ownerID))
            filter = includeSystem ? "WHERE d.user_id = $1 OR d.system_owned" : "WHERE d.user_id = $1"
        }
        let columns = PipelineDefinitionRecord.columns.split(separator: ",").map { "d." + $0.trimmingCharacters(in: .whitespaces) }
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
                record: try PipelineDefinitionRecord(row: row),
                executionCount: try row.int("execution_count"),
                lastExecutionAt: try row.optionalDate("last_execution_at")
            )
        }
    }

    /// A definition with its execution count, or `nil` when it does not exist.
    public func summary(id: PipelineID) async throws -> PipelineDefinitionSummary? {
        let results = try await database.read([
            SQLStatement("SELECT \(PipelineDefinitionRecord.columns) FROM pipeline_definition WHERE id = $1", [.id(id)]),
            SQLStatement("SELECT count(*) AS total, max(created_at) AS latest FROM pipeline_execution WHERE pipeline_id = $1", [.id(id)]),
        ])
        guard let row = results[0].first else { return nil }
        let statistics = results[1].first
        return PipelineDefinitionSummary(
            record: try PipelineDefinitionRecord(row: row),
            executionCount: try statistics?.int("total") ?? 0,
            lastExecutionAt: try statistics?.optionalDate("latest")
        )
    }
}
