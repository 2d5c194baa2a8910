import BudJSON
public import Foundation
import PipelineEngine

/// Everything BudPipeline stores, over either backend. SQL is written once for both dialects
/// where it can be; the few dialect-specific statements say so.
public struct PipelineStore: Sendable {
    public let database: any Database
    /// Whether the last write went through (see ``StorageHealth``).
    public let health: StorageHealth

    public init(database: any Database) {
        let health = StorageHealth()
        self.database = MonitoredDatabase(base: database, health: health)
        self.health = health
    }

    /// Writes one small row, to learn whether the database takes writes again; updates
    /// ``health`` either way.
    public func probeWrites(now: Date = Date()) async -> Bool {
        do {
            try await database.transaction { session in
                try session.execute(
                    "INSERT INTO storage_probe (id, checked_at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
                    .date(now))
            }
            return true
        } catch {
            return false
        }
    }

    public var dialect: SQLDialect { database.dialect }

    /// A subquery selecting the integers of the JSON array bound as parameter `$number`: lists
    /// travel as one parameter, so the statement's text is the same however long the list is.
    func integers(inJSONArray number: Int) -> String {
        dialect == .postgres
            ? "SELECT CAST(value AS bigint) FROM json_array_elements_text(CAST($\(number) AS json))"
            : "SELECT value FROM json_each($\(number))"
    }

    // MARK: Pipeline definitions

    public func insertDefinition(_ record: PipelineDefinitionRecord) async throws {
        try await database.transaction { session in
            try session.execute(
                """
                INSERT INTO pipeline_definition (id, version, name, description, icon, dag_definition, status, user_id, system_owned,
                    step_count, created_by, created_at, updated_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                """,
                .text(record.id), .integer(record.version), .text(record.name), .optional(record.description, SQLValue.text),
                .optional(record.icon, SQLValue.text), .json(record.dag), .text(record.status.rawValue),
                .optional(record.userID, SQLValue.text), .bool(record.systemOwned), .integer(record.stepCount),
                .text(record.createdBy), .date(record.createdAt), .date(record.updatedAt)
            )
        }
    }

    public func definition(id: String) async throws -> PipelineDefinitionRecord? {
        try await database.read("SELECT \(Self.definitionColumns) FROM pipeline_definition WHERE id = $1", .text(id)).first.map(
            Self.definition)
    }

    /// Stores `record` as the next version of the definition when the stored one is still at
    /// `expectedVersion`. Returns the stored record; throws ``DatabaseError/conflict(_:)`` when
    /// someone updated it first and ``StoreError/notFound(_:)`` when it does not exist.
    public func updateDefinition(_ record: PipelineDefinitionRecord, expectedVersion: Int) async throws -> PipelineDefinitionRecord {
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
                .text(stored.id), .integer(stored.version), .text(stored.name), .optional(stored.description, SQLValue.text),
                .optional(stored.icon, SQLValue.text), .json(stored.dag), .text(stored.status.rawValue), .integer(stored.stepCount),
                .date(stored.updatedAt), .integer(expectedVersion)
            )
            guard changed == 1 else {
                let current = try session.query("SELECT version FROM pipeline_definition WHERE id = $1", .text(stored.id)).first
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
    public func deleteDefinition(id: String) async throws -> Bool {
        try await database.transaction { session in
            try session.execute("DELETE FROM pipeline_definition WHERE id = $1", .text(id)) == 1
        }
    }

    static let definitionColumns =
        "id, version, name, description, icon, dag_definition, status, user_id, system_owned, step_count, created_by, created_at, updated_at"

    static func definition(_ row: Row) throws -> PipelineDefinitionRecord {
        PipelineDefinitionRecord(
            id: try row.string("id"),
            version: try row.int("version"),
            name: try row.string("name"),
            description: row["description"],
            icon: row["icon"],
            dag: try row.json("dag_definition"),
            status: try row.value("status", as: PipelineDefinitionRecord.Status.self),
            userID: row["user_id"],
            systemOwned: try row.bool("system_owned"),
            stepCount: try row.int("step_count"),
            createdBy: try row.string("created_by"),
            createdAt: try row.date("created_at"),
            updatedAt: try row.date("updated_at")
        )
    }
}

/// Failures of the store beyond the database's own.
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The record does not exist.
    case notFound(String)

    public var description: String {
        switch self {
        case .notFound(let what): "\(what) not found"
        }
    }
}
