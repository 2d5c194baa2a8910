import BudJSON
import Foundation
import PipelineEngine
import Storage
import Testing
import _BudPipelineTestSupport

/// An execution is retried at most once: the store's `retry_of` is unique (migration 5), on both
/// backends.
@Suite("Retry uniqueness")
struct RetryUniquenessTests {
    private static func retry(of originalID: ExecutionID, at offset: TimeInterval = 0) -> NewExecution {
        var new = StoreFixtures.execution()
        new.record.definitionSnapshot["retry_of"] = .string(originalID.rawValue)
        new.record.createdAt = StoreFixtures.base.addingTimeInterval(offset)
        return new
    }

    @Test("a second retry of one execution is refused as a duplicate and stores nothing", arguments: TestBackend.available)
    func secondRetryRefused(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            let store = test.store
            let original = StoreFixtures.execution()
            try await store.executions.insert(original)
            #expect(try await store.executions.retry(of: original.record.id) == nil)
            let first = Self.retry(of: original.record.id)
            try await store.executions.insert(first)
            #expect(try await store.executions.retry(of: original.record.id)?.id == first.record.id)
            #expect(try await store.executions.retry(of: original.record.id)?.retryOf == original.record.id)

            let second = Self.retry(of: original.record.id)
            await #expect {
                try await store.executions.insert(second)
            } throws: { error in
                if (error as? DatabaseError)?.kind == .uniqueViolation { true } else { false }
            }
            #expect(try await store.executions.find(id: second.record.id) == nil)
            #expect(try await store.executions.steps(executionID: second.record.id).isEmpty, "the transaction stored nothing")
            try await store.executions.insert(Self.retry(of: first.record.id))
        }
    }

    @Test("migrating keeps the first of the retries made before, and then refuses more", arguments: TestBackend.available)
    func migrationKeepsTheFirstRetry(backend: TestBackend) async throws {
        try await TestDatabase.with(backend, migrated: false) { test in
            let migrator = Migrator(database: test.database)
            try await migrator.migrate(upTo: 3)
            let originalID = ExecutionID(StoreFixtures.newID())
            let otherID = ExecutionID(StoreFixtures.newID())
            // Rows as a build before migration 5 wrote them: `retry_of` only in the definition.
            let rows: [(id: ExecutionID, retryOf: ExecutionID?, offset: TimeInterval)] = [
                (originalID, nil, 0), (otherID, nil, 0), (.generate(), originalID, 30), (.generate(), originalID, 10),
                (.generate(), originalID, 20), (.generate(), otherID, 5),
            ]
            try await test.database.transaction { session in
                for row in rows {
                    var definition: JSONObject = ["dag": ["name": "x", "steps": []], "params": [:]]
                    if let retryOf = row.retryOf { definition["retry_of"] = .string(retryOf.rawValue) }
                    let created = StoreFixtures.base.addingTimeInterval(row.offset)
                    _ = try session.execute(
                        "INSERT INTO pipeline_execution (id, pipeline_definition, initiator, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)",
                        .text(row.id.rawValue), .json(.object(definition)), .text("tester"), .date(created))
                }
            }
            #expect(try await migrator.migrate() == Migration.all.map(\.version).filter { $0 > 3 })
            let store = test.store
            #expect(try await store.executions.retry(of: originalID)?.id == rows[3].id, "the earliest of the three")
            #expect(try await store.executions.retry(of: otherID)?.id == rows[5].id)
            await #expect(throws: DatabaseError.self) { try await store.executions.insert(Self.retry(of: originalID)) }
        }
    }
}
