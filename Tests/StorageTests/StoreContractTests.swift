import BudJSON
import Foundation
import PipelineEngine
import Storage
import Testing
import _BudPipelineTestSupport

/// One contract, two backends: every test runs on SQLite and on a real PostgreSQL server.
@Suite("Store contract")
struct StoreContractTests {
    // MARK: Migrations

    @Test("a new database has every migration pending and status changes nothing", arguments: TestBackend.available)
    func freshDatabaseStatus(backend: TestBackend) async throws {
        try await TestDatabase.with(backend, migrated: false) { test in
            let migrator = Migrator(database: test.database)
            let status = try await migrator.status()
            #expect(status.applied.isEmpty)
            #expect(status.pending == Migration.all.map(\.version))
            #expect(!status.isUpToDate)
            let again = try await migrator.status()
            #expect(again.applied.isEmpty)
            await #expect(throws: DatabaseError.self) { try await migrator.requireCurrentSchema() }
        }
    }

    @Test("migrate applies pending migrations once", arguments: TestBackend.available)
    func migrateOnce(backend: TestBackend) async throws {
        try await TestDatabase.with(backend, migrated: false) { test in
            let migrator = Migrator(database: test.database)
            let applied = try await migrator.migrate()
            #expect(applied == Migration.all.map(\.version))
            let second = try await migrator.migrate()
            #expect(second.isEmpty)
            let status = try await migrator.status()
            #expect(status.isUpToDate)
            #expect(status.currentVersion == status.latestKnownVersion)
            try await migrator.requireCurrentSchema()
        }
    }

    @Test("concurrent migrations apply each version once", arguments: TestBackend.available)
    func concurrentMigrations(backend: TestBackend) async throws {
        try await TestDatabase.with(backend, migrated: false) { test in
            let migrator = Migrator(database: test.database)
            let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
                for _ in 0..<4 { group.addTask { try await migrator.migrate() } }
                return try await group.reduce(into: [Int]()) { $0 += $1 }
            }
            #expect(applied.sorted() == Migration.all.map(\.version))
        }
    }

    @Test("a schema newer than the build is refused", arguments: TestBackend.available)
    func newerSchemaRefused(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            try await test.database.transaction { session in
                try session.execute(
                    "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)",
                    .integer(999), .text("from_the_future"), .text("0"), .date(Date()))
            }
            let migrator = Migrator(database: test.database)
            let status = try await migrator.status()
            #expect(status.unknown == [999])
            #expect(status.incompatibility?.contains("newer than this build") == true)
            await #expect(throws: DatabaseError.self) { try await migrator.requireCurrentSchema() }
            await #expect(throws: DatabaseError.self) { try await migrator.migrate() }
        }
    }

    @Test("a migration applied with different SQL is reported", arguments: TestBackend.available)
    func modifiedMigrationReported(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            try await test.database.transaction { session in
                try session.execute("UPDATE schema_migrations SET checksum = $1 WHERE version = 1", .text("deadbeef"))
            }
            let status = try await Migrator(database: test.database).status()
            #expect(status.modified == [1])
            #expect(status.incompatibility?.contains("different SQL") == true)
        }
    }

    // MARK: Pipeline definitions

    @Test("definitions round-trip with their JSON as written", arguments: TestBackend.available)
    func definitionRoundTrip(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            let record = StoreFixtures.definition(userID: StoreFixtures.newID())
            try await test.store.definitions.insert(record)
            let stored = try #require(try await test.store.definitions.find(id: record.id))
            #expect(stored == record)
            #expect(stored.dag.objectValue?.keys == ["name", "steps", "zeta", "alpha"])
            let missing = try await test.store.definitions.find(id: .generate())
            #expect(missing == nil)
        }
    }

    @Test("a duplicate id is a unique violation", arguments: TestBackend.available)
    func duplicateDefinition(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            let record = StoreFixtures.definition()
            try await test.store.definitions.insert(record)
            await #expect {
                try await test.store.definitions.insert(record)
            } throws: { error in
                if (error as? DatabaseError)?.kind == .uniqueViolation { return true }
                return false
            }
        }
    }

    @Test("updates use optimistic locking", arguments: TestBackend.available)
    func definitionOptimisticLocking(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            var record = StoreFixtures.definition()
            try await test.store.definitions.insert(record)
            record.name = "renamed"
            let updated = try await test.store.definitions.update(record, expectedVersion: 1)
            #expect(updated.version == 2)
            record.name = "stale writer"
            await #expect {
                _ = try await test.store.definitions.update(record, expectedVersion: 1)
            } throws: { error in
                if let error = error as? DatabaseError, error.kind == .conflict { return error.message.contains("version 2") }
                return false
            }
            let stored = try await test.store.definitions.find(id: record.id)
            #expect(stored?.name == "renamed")
            #expect(stored?.version == 2)
            var ghost = StoreFixtures.definition()
            ghost.name = "ghost"
            await #expect(throws: StoreError.notFound("pipeline \(ghost.id)")) {
                _ = try await test.store.definitions.update(ghost, expectedVersion: 1)
            }
        }
    }

    @Test("concurrent updates of one version: exactly one wins", arguments: TestBackend.available)
    func concurrentDefinitionUpdates(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            let record = StoreFixtures.definition()
            try await test.store.definitions.insert(record)
            let store = test.store
            let outcomes = await withTaskGroup(of: Bool.self) { group in
                for writer in 0..<8 {
                    group.addTask {
                        var change = record
                        change.name = "writer \(writer)"
                        return (try? await store.definitions.update(change, expectedVersion: 1)) != nil
                    }
                }
                return await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(outcomes.count(where: { $0 }) == 1)
            #expect(try await store.definitions.find(id: record.id)?.version == 2)
        }
    }

    @Test("listing is newest first, scoped to an owner (plus system pipelines), with execution counts", arguments: TestBackend.available)
    func definitionListing(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            let owner = StoreFixtures.newID()
            var ids: [PipelineID] = []
            for index in 0..<5 {
                var record = StoreFixtures.definition(name: "p\(index)", userID: index.isMultiple(of: 2) ? owner : StoreFixtures.newID())
                record.createdAt = StoreFixtures.base.addingTimeInterval(Double(index))
                record.systemOwned = index == 3
                try await test.store.definitions.insert(record)
                ids.append(record.id)
            }
            var first = StoreFixtures.execution(pipelineID: ids[0])
            first.record.createdAt = StoreFixtures.base.addingTimeInterval(60)
            try await test.store.executions.insert(first)
            try await test.store.executions.insert(StoreFixtures.execution(pipelineID: ids[0]))

            let all = try await test.store.definitions.summaries(ownerID: nil, includeSystem: false)
            #expect(all.map(\.record.name) == ["p4", "p3", "p2", "p1", "p0"])
            let owned = try await test.store.definitions.summaries(ownerID: owner, includeSystem: false)
            #expect(owned.map(\.record.name) == ["p4", "p2", "p0"])
            let withSystem = try await test.store.definitions.summaries(ownerID: owner, includeSystem: true)
            #expect(withSystem.map(\.record.name) == ["p4", "p3", "p2", "p0"])
            let counted = try #require(owned.last)
            #expect(counted.executionCount == 2)
            #expect(counted.lastExecutionAt == first.record.createdAt)
            #expect(owned.first?.executionCount == 0 && owned.first?.lastExecutionAt == nil)
            let single = try await test.store.definitions.summary(id: ids[0])
            #expect(single?.executionCount == 2)
        }
    }

    @Test("a name is unique per owner", arguments: TestBackend.available)
    func uniqueNamePerOwner(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            let owner = StoreFixtures.newID()
            try await test.store.definitions.insert(StoreFixtures.definition(name: "same", userID: owner))
            try await test.store.definitions.insert(StoreFixtures.definition(name: "same", userID: StoreFixtures.newID()))
            try await test.store.definitions.insert(StoreFixtures.definition(name: "same"))
            let error = await #expect(throws: DatabaseError.self) {
                try await test.store.definitions.insert(StoreFixtures.definition(name: "same", userID: owner))
            }
            await #expect(throws: DatabaseError.self) { try await test.store.definitions.insert(StoreFixtures.definition(name: "same")) }
            let stored = try await test.store.definitions.summaries(ownerID: nil, includeSystem: true)
            #expect(stored.count == 3)
            // What the server said is kept for the logs: its code, and on PostgreSQL the
            // constraint and the detail line naming the key.
            #expect(error?.kind == .uniqueViolation)
            #expect(error?.sql?.isEmpty == false)
            switch backend {
            case .postgres:
                #expect(error?.code == "23505")
                #expect(error?.constraint?.isEmpty == false)
                #expect(error?.detail?.contains("same") == true, "\(String(describing: error))")
                #expect(error.map { "\($0)" }?.contains("constraint") == true)
            case .sqlite:
                #expect(error?.code == "SQLITE_2067")
            }
        }
    }

    @Test("executions are listed newest first with filters and a total", arguments: TestBackend.available)
    func executionListing(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            let pipeline = StoreFixtures.definition()
            try await test.store.definitions.insert(pipeline)
            for index in 0..<5 {
                var new = StoreFixtures.execution(pipelineID: index < 3 ? pipeline.id : nil)
                new.record.createdAt = StoreFixtures.base.addingTimeInterval(Double(index))
                new.record.initiator = index == 4 ? "someone" : "tester"
                try await test.store.executions.insert(new)
            }
            let page = try await test.store.executions.list(matching: ExecutionFilter(), limit: 2, offset: 1)
            #expect(page.total == 5)
            #expect(page.records.map(\.createdAt) == [3, 2].map { StoreFixtures.base.addingTimeInterval($0) })
            let ofPipeline = try await test.store.executions.list(matching: ExecutionFilter(pipelineID: pipeline.id), limit: 10, offset: 0)
            #expect(ofPipeline.total == 3 && ofPipeline.records.allSatisfy { $0.pipelineID == pipeline.id })
            let byInitiator = try await test.store.executions.list(matching: ExecutionFilter(initiator: "someone"), limit: 10, offset: 0)
            #expect(byInitiator.total == 1)
            let ranged = try await test.store.executions.list(
                matching: ExecutionFilter(
                    status: .pending, createdFrom: StoreFixtures.base.addingTimeInterval(1),
                    createdUntil: StoreFixtures.base.addingTimeInterval(3)),
                limit: 10, offset: 0)
            #expect(ranged.total == 3)
            let none = try await test.store.executions.list(matching: ExecutionFilter(status: .completed), limit: 10, offset: 0)
            #expect(none.total == 0 && none.records.isEmpty)
        }
    }

    @Test("deleting a definition keeps its executions", arguments: TestBackend.available)
    func deleteDefinitionKeepsHistory(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            let definition = StoreFixtures.definition()
            try await test.store.definitions.insert(definition)
            let execution = StoreFixtures.execution(pipelineID: definition.id)
            try await test.store.executions.insert(execution)
            #expect(try await test.store.definitions.delete(id: definition.id))
            #expect(try await test.store.definitions.delete(id: definition.id) == false)
            let kept = try #require(try await test.store.executions.findWithSteps(id: execution.record.id))
            #expect(kept.execution.pipelineID == nil)
            #expect(kept.steps.count == 2)
        }
    }

    // MARK: Executions and transitions

    @Test("an execution round-trips with its steps", arguments: TestBackend.available)
    func executionRoundTrip(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            let new = StoreFixtures.execution(timers: [.set(key: "start", dueAt: StoreFixtures.base, claimedBy: nil, claimedUntil: nil)])
            try await test.store.executions.insert(new)
            let stored = try #require(try await test.store.executions.findWithSteps(id: new.record.id))
            #expect(stored.execution == new.record)
            #expect(stored.steps == new.steps)
            #expect(
                try await test.store.timers.list(executionID: new.record.id) == [
                    TimerRecord(executionID: new.record.id, key: "start", dueAt: StoreFixtures.base)
                ])
        }
    }

    @Test("a transition writes every part and moves the version", arguments: TestBackend.available)
    func transitionWritesEverything(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            let new = StoreFixtures.execution(timers: [.set(key: "start", dueAt: StoreFixtures.base, claimedBy: nil, claimedUntil: nil)])
            try await test.store.executions.insert(new)
            var transition = StoreFixtures.startTransition(executionID: new.record.id)
            transition.consumedTimers = [TimerRecord(executionID: new.record.id, key: "start", dueAt: StoreFixtures.base)]
            try await test.store.executions.apply(transition)

            let stored = try #require(try await test.store.executions.findWithSteps(id: new.record.id))
            #expect(stored.execution.version == 2)
            #expect(stored.execution.status == .running)
            #expect(stored.execution.eventSequence == 1)
            let stepA = try #require(stored.steps.first)
            #expect(stepA.state == transition.steps[0].state)
            #expect(stepA.leaseOwner == "worker-1")
            #expect(stepA.dispatch == ["idempotency_key": "k/a/0"])
            #expect(stepA.version == 2)
            #expect(stored.steps[1].version == 1)
            let timers = try await test.store.timers.list(executionID: new.record.id)
            #expect(timers.map(\.key) == ["step_deadline:a:0"])
            #expect(try await test.store.executions.progressEvents(executionID: new.record.id).map(\.kind) == [.workflowProgress])
            let outbox = try await test.store.outbox.pending(limit: 10)
            #expect(outbox.map(\.event) == [OutboxEvent(eventType: "step_started", payload: ["step_id": "a"])])
            #expect(outbox.first?.executionID == new.record.id)
        }
    }

    @Test("a new execution stored with its first transition is stored as if inserted then moved on", arguments: TestBackend.available)
    func insertStartedByATransitionEqualsInsertThenApply(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            let stepwise = StoreFixtures.execution()
            try await test.store.executions.insert(stepwise)
            try await test.store.executions.apply(StoreFixtures.startTransition(executionID: stepwise.record.id))
            let together = StoreFixtures.execution()
            try await test.store.executions.insert(together, startedBy: StoreFixtures.startTransition(executionID: together.record.id))

            let one = try #require(try await test.store.executions.findForResuming(id: stepwise.record.id))
            let other = try #require(try await test.store.executions.findForResuming(id: together.record.id))
            var execution = other.execution
            execution.id = one.execution.id
            #expect(execution == one.execution)
            #expect(one.execution.version == 2 && one.execution.status == .running)
            #expect(other.callbackTopics == one.callbackTopics)
            func comparable(_ steps: [StepRecord]) -> [StepRecord] {
                steps.map { step in
                    var step = step
                    step.id = ""
                    step.executionID = one.execution.id
                    return step
                }
            }
            #expect(comparable(other.steps) == comparable(one.steps))
            #expect(one.steps[0].leaseOwner == "worker-1" && one.steps[0].version == 2 && one.steps[1].version == 1)
            #expect(
                try await test.store.timers.list(executionID: together.record.id).map(\.key)
                    == test.store.timers.list(executionID: stepwise.record.id).map(\.key))
            let progress = try await test.store.executions.progressEvents(executionID: together.record.id)
            #expect(progress.map(\.kind) == [.workflowProgress])
            let outbox = try await test.store.outbox.pending(limit: 10)
            #expect(outbox.map(\.executionID) == [stepwise.record.id, together.record.id])
        }
    }

    @Test("a stale version conflicts and writes nothing", arguments: TestBackend.available)
    func staleTransitionConflicts(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            let new = StoreFixtures.execution()
            try await test.store.executions.insert(new)
            try await test.store.executions.apply(StoreFixtures.startTransition(executionID: new.record.id))
            var stale = StoreFixtures.startTransition(executionID: new.record.id, owner: "worker-2")
            stale.outbox = [OutboxEvent(eventType: "stale", payload: [:])]
            await #expect {
                try await test.store.executions.apply(stale)
            } throws: { error in
                if let error = error as? DatabaseError, error.kind == .conflict { return error.message.contains("changed since version 1") }
                return false
            }
            let stored = try #require(try await test.store.executions.findWithSteps(id: new.record.id))
            #expect(stored.execution.version == 2)
            #expect(stored.steps[0].leaseOwner == "worker-1")
            #expect(try await test.store.outbox.pending(limit: 10).map(\.event.eventType) == ["step_started"])
        }
    }

    @Test("a timer that moved since it fired makes the transition conflict", arguments: TestBackend.available)
    func movedTimerConflicts(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            let new = StoreFixtures.execution(timers: [.set(key: "start", dueAt: StoreFixtures.base, claimedBy: nil, claimedUntil: nil)])
            try await test.store.executions.insert(new)
            var transition = StoreFixtures.startTransition(executionID: new.record.id)
            transition.consumedTimers = [
                TimerRecord(executionID: new.record.id, key: "start", dueAt: StoreFixtures.base.addingTimeInterval(1))
            ]
            await #expect {
                try await test.store.executions.apply(transition)
            } throws: { error in
                if let error = error as? DatabaseError, error.kind == .conflict { return error.message.contains("timer start") }
                return false
            }
            #expect(try await test.store.executions.find(id: new.record.id)?.version == 1)
            #expect(try await test.store.timers.list(executionID: new.record.id).map(\.key) == ["start"])
        }
    }

    @Test("concurrent transitions from one version: exactly one commits", arguments: TestBackend.available)
    func concurrentTransitions(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            let new = StoreFixtures.execution()
            try await test.store.executions.insert(new)
            let store = test.store
            let committed = await withTaskGroup(of: Bool.self) { group in
                for writer in 0..<8 {
                    group.addTask {
                        (try? await store.executions.apply(
                            StoreFixtures.startTransition(executionID: new.record.id, owner: "worker-\(writer)")))
                            != nil
                    }
                }
                return await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
            }
            #expect(committed == 1)
            #expect(try await store.outbox.pending(limit: 100).count == 1)
        }
    }

    @Test("a step keeps its lease while it runs and drops it when it settles", arguments: TestBackend.available)
    func leaseFollowsStatus(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            let new = StoreFixtures.execution()
            try await test.store.executions.insert(new)
            let start = StoreFixtures.startTransition(executionID: new.record.id)
            try await test.store.executions.apply(start)

            var progressed = start.steps[0].state
            progressed.progress = 40
            try await test.store.executions.apply(
                ExecutionTransition(
                    executionID: new.record.id, expectedVersion: 2, execution: start.execution, eventSequence: 1,
                    steps: [StepWrite(state: progressed)], now: StoreFixtures.base))
            var steps = try await test.store.executions.steps(executionID: new.record.id)
            #expect(steps[0].state.progress == 40)
            #expect(steps[0].leaseOwner == "worker-1")
            #expect(steps[0].dispatch != nil)

            var completed = progressed
            completed.status = .completed
            completed.progress = 100
            completed.outputs = ["z": 1, "a": ["nested": "ü ✓"]]
            completed.endedAt = StoreFixtures.base.addingTimeInterval(0.000001)
            try await test.store.executions.apply(
                ExecutionTransition(
                    executionID: new.record.id, expectedVersion: 3, execution: start.execution, eventSequence: 1,
                    steps: [StepWrite(state: completed)], now: StoreFixtures.base))
            steps = try await test.store.executions.steps(executionID: new.record.id)
            #expect(steps[0].state == completed)
            #expect(steps[0].state.outputs?.keys == ["z", "a"])
            #expect(steps[0].leaseOwner == nil)
            #expect(steps[0].leaseExpiresAt == nil)
            #expect(steps[0].dispatch == nil)
        }
    }

    @Test("a failed transaction leaves nothing behind", arguments: TestBackend.available)
    func rollbackOnError(backend: TestBackend) async throws {
        struct Abort: Error {}
        try await TestDatabase.with(backend) { test in
            let record = StoreFixtures.definition()
            await #expect(throws: Abort.self) {
                try await test.database.transaction { session in
                    try session.execute(
                        "INSERT INTO pipeline_definition (id, name, dag_definition, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
                        .id(record.id), .text("x"), .json([:]), .text("api"), .date(Date()))
                    throw Abort()
                }
            }
            let stored = try await test.store.definitions.find(id: record.id)
            #expect(stored == nil)
        }
    }

    @Test("a statement error names its SQLSTATE and leaves the connection usable", arguments: TestBackend.available)
    func statementErrors(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            await #expect {
                try await test.database.transaction { session in try session.execute("SELECT * FROM no_such_table") }
            } throws: { error in
                if let error = error as? DatabaseError, error.kind == .statement { return error.message.contains("no_such_table") }
                return false
            }
            for _ in 0..<20 {
                let rows = try await test.database.read("SELECT 1 AS one")
                #expect(try rows.first?.int("one") == 1)
            }
        }
    }

    @Test("large and unusual values round-trip", arguments: TestBackend.available)
    func unusualValues(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            var record = StoreFixtures.definition()
            let large = String(repeating: "x", count: 1_000_000)
            record.description = "quote ' backslash \\ dollar $1 emoji 🚀 nul-free"
            record.dag = ["big": .string(large), "numbers": [1.5, -0.000001, 9_007_199_254_740_991, 1e300], "empty": [:]]
            try await test.store.definitions.insert(record)
            let stored = try await test.store.definitions.find(id: record.id)
            #expect(stored == record)
        }
    }

    // MARK: Timers, leases, retention

    @Test("due timers are claimed once until their claim expires", arguments: TestBackend.available)
    func timerClaims(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            let base = StoreFixtures.base
            let new = StoreFixtures.execution(timers: [
                .set(key: "due", dueAt: base, claimedBy: nil, claimedUntil: nil),
                .set(key: "later", dueAt: base.addingTimeInterval(60), claimedBy: nil, claimedUntil: nil),
                .set(key: "held", dueAt: base, claimedBy: "other", claimedUntil: base.addingTimeInterval(5)),
            ])
            try await test.store.executions.insert(new)
            let first = try await test.store.timers.claimDue(
                owner: "me", now: base.addingTimeInterval(1), claimUntil: base.addingTimeInterval(31), limit: 10)
            #expect(first.map(\.key) == ["due"])
            let again = try await test.store.timers.claimDue(
                owner: "me", now: base.addingTimeInterval(2), claimUntil: base.addingTimeInterval(32), limit: 10)
            #expect(again.isEmpty)
            let afterExpiry = try await test.store.timers.claimDue(
                owner: "me", now: base.addingTimeInterval(40), claimUntil: base.addingTimeInterval(70), limit: 10)
            #expect(Set(afterExpiry.map(\.key)) == ["due", "held"])
            let limited = try await test.store.timers.claimDue(
                owner: "you", now: base.addingTimeInterval(100), claimUntil: base.addingTimeInterval(130), limit: 1)
            #expect(limited.count == 1)
        }
    }

    @Test("concurrent claimers never get the same timer", arguments: TestBackend.available)
    func concurrentTimerClaims(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            let base = StoreFixtures.base
            for _ in 0..<10 {
                let timers = (0..<10).map { TimerChange.set(key: "t\($0)", dueAt: base, claimedBy: nil, claimedUntil: nil) }
                try await test.store.executions.insert(StoreFixtures.execution(timers: timers))
            }
            let store = test.store
            let claimed = try await withThrowingTaskGroup(of: [TimerRecord].self) { group in
                for worker in 0..<5 {
                    group.addTask {
                        var mine: [TimerRecord] = []
                        while true {
                            let batch = try await store.timers.claimDue(
                                owner: "w\(worker)", now: base.addingTimeInterval(1), claimUntil: base.addingTimeInterval(600), limit: 7)
                            if batch.isEmpty { return mine }
                            mine += batch
                        }
                    }
                }
                return try await group.reduce(into: [TimerRecord]()) { $0 += $1 }
            }
            #expect(claimed.count == 100)
            #expect(Set(claimed).count == 100)
        }
    }

    @Test("leases are renewed only for the owner's listed steps and taken over once expired", arguments: TestBackend.available)
    func leaseRenewalAndTakeover(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            let base = StoreFixtures.base
            let one = StoreFixtures.execution()
            let two = StoreFixtures.execution()
            try await test.store.executions.insert(one)
            try await test.store.executions.insert(two)
            try await test.store.executions.apply(
                StoreFixtures.startTransition(executionID: one.record.id, owner: "alive", leaseUntil: base.addingTimeInterval(10)))
            try await test.store.executions.apply(
                StoreFixtures.startTransition(executionID: two.record.id, owner: "dead", leaseUntil: base.addingTimeInterval(10)))

            let renewed = try await test.store.leases.renew(
                owner: "alive", steps: [(one.record.id, "a"), (two.record.id, "a")], until: base.addingTimeInterval(100))
            #expect(renewed == 1)

            let early = try await test.store.leases.claimExpired(
                owner: "sweeper", now: base.addingTimeInterval(5), until: base.addingTimeInterval(50), limit: 10)
            #expect(early.isEmpty)
            let taken = try await test.store.leases.claimExpired(
                owner: "sweeper", now: base.addingTimeInterval(20), until: base.addingTimeInterval(50), limit: 10)
            #expect(taken == [LeasedStep(executionID: two.record.id, stepID: "a", attempt: 0, dispatch: ["idempotency_key": "k/a/0"])])
            let steps = try await test.store.executions.steps(executionID: two.record.id)
            #expect(steps[0].leaseOwner == "sweeper")
            let twice = try await test.store.leases.claimExpired(
                owner: "late", now: base.addingTimeInterval(20), until: base.addingTimeInterval(50), limit: 10)
            #expect(twice.isEmpty)

            try await test.store.leases.release(owner: "alive", executionID: one.record.id, stepID: "a", now: base.addingTimeInterval(1))
            let released = try await test.store.leases.claimExpired(
                owner: "sweeper", now: base.addingTimeInterval(2), until: base.addingTimeInterval(50), limit: 10)
            #expect(released.map(\.executionID) == [one.record.id])
        }
    }

    @Test("retention deletes finished executions in batches and never a running one", arguments: TestBackend.available)
    func retention(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            let base = StoreFixtures.base
            var finished: [ExecutionID] = []
            for index in 0..<5 {
                let new = StoreFixtures.execution(timers: [.set(key: "x", dueAt: base, claimedBy: nil, claimedUntil: nil)])
                try await test.store.executions.insert(new)
                try await test.store.executions.apply(StoreFixtures.startTransition(executionID: new.record.id))
                let status: ExecutionStatus = index == 4 ? .running : [.completed, .failed, .cancelled][index % 3]
                try await test.store.executions.apply(
                    ExecutionTransition(
                        executionID: new.record.id, expectedVersion: 2,
                        execution: ExecutionSnapshot(
                            status: status, startedAt: base, endedAt: status == .running ? nil : base.addingTimeInterval(Double(index))),
                        eventSequence: 1, now: base))
                if status != .running { finished.append(new.record.id) }
            }
            let recent = StoreFixtures.execution()
            try await test.store.executions.insert(recent)
            try await test.store.executions.apply(StoreFixtures.startTransition(executionID: recent.record.id))
            try await test.store.executions.apply(
                ExecutionTransition(
                    executionID: recent.record.id, expectedVersion: 2,
                    execution: ExecutionSnapshot(status: .completed, startedAt: base, endedAt: base.addingTimeInterval(3600)),
                    eventSequence: 1, now: base))

            let cutoff = base.addingTimeInterval(60)
            let candidates = try await test.store.retention.candidates(endedBefore: cutoff)
            #expect(candidates.count == 4)
            #expect(candidates.oldest == base)
            #expect(try await test.store.retention.deleteFinished(endedBefore: cutoff, limit: 3) == 3)
            #expect(try await test.store.retention.deleteFinished(endedBefore: cutoff, limit: 3) == 1)
            #expect(try await test.store.retention.deleteFinished(endedBefore: cutoff, limit: 3) == 0)
            for id in finished {
                #expect(try await test.store.executions.find(id: id) == nil)
                #expect(try await test.store.executions.steps(executionID: id).isEmpty)
                #expect(try await test.store.timers.list(executionID: id).isEmpty)
                #expect(try await test.store.executions.progressEvents(executionID: id).isEmpty)
            }
            #expect(try await test.store.executions.find(id: recent.record.id) != nil)
            let counts = try await test.store.executions.counts()
            #expect(counts[.running] == 1)
            #expect(counts[.completed] == 1)
        }
    }
}
