import BudJSON
import Foundation
import PipelineEngine
import Storage
import Synchronization
import Testing
import _BudPipelineTestSupport

/// The outbox's claims, on both stores: each execution's events leave in the order they were
/// written, a failing event holds the ones behind it, and executions held up that way do not keep
/// the others from being published.
@Suite("Outbox claims")
struct OutboxClaimTests {
    /// An execution whose transitions write outbox events; `version` follows the store's.
    struct Writer {
        let store: PipelineStore
        let executionID: ExecutionID
        var version = 1

        static func start(in store: PipelineStore) async throws -> Writer {
            let new = StoreFixtures.execution()
            try await store.executions.insert(new)
            return Writer(store: store, executionID: new.record.id)
        }

        /// One transition writing events named `types` at `now`.
        mutating func write(_ types: [String], at now: Date) async throws {
            try await store.executions.apply(
                ExecutionTransition(
                    executionID: executionID, expectedVersion: version,
                    execution: ExecutionSnapshot(status: .running, startedAt: StoreFixtures.base, progress: 0),
                    eventSequence: version, outbox: types.map { OutboxEvent(eventType: $0, payload: [:]) }, now: now))
            version += 1
        }
    }

    static let base = StoreFixtures.base

    static func claim(_ store: PipelineStore, by owner: String = "w", at offset: TimeInterval, executions: Int = 10) async throws
        -> [OutboxRecord]
    {
        let now = base.addingTimeInterval(offset)
        return try await store.outbox.claim(owner: owner, now: now, claimUntil: now.addingTimeInterval(15), executions: executions)
    }

    @Test("events written behind a failing event wait for it and then go out in order", arguments: TestBackend.available)
    func laterEventsWaitBehindAFailure(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            var writer = try await Writer.start(in: test.store)
            try await writer.write(["first"], at: Self.base)
            let first = try await Self.claim(test.store, at: 1)
            #expect(first.map(\.event.eventType) == ["first"])
            try await test.store.outbox.failed(
                try #require(first.first), owner: "w", error: "down", retryAt: Self.base.addingTimeInterval(60), dead: false,
                releasing: [])
            try await writer.write(["second", "third"], at: Self.base.addingTimeInterval(2))

            #expect(try await Self.claim(test.store, at: 3).isEmpty)
            #expect(try await Self.claim(test.store, at: 59).isEmpty)
            #expect(try await test.store.outbox.nextDue() == Self.base.addingTimeInterval(60))
            let all = try await Self.claim(test.store, at: 61)
            #expect(all.map(\.event.eventType) == ["first", "second", "third"])
            #expect(all.map(\.attempts) == [1, 0, 0])
        }
    }

    @Test("a failure postpones the events already written behind it", arguments: TestBackend.available)
    func aFailurePostponesLaterEvents(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            var writer = try await Writer.start(in: test.store)
            try await writer.write(["first", "second"], at: Self.base)
            let claimed = try await Self.claim(test.store, at: 1)
            #expect(claimed.map(\.event.eventType) == ["first", "second"])
            try await test.store.outbox.failed(
                claimed[0], owner: "w", error: "down", retryAt: Self.base.addingTimeInterval(30), dead: false,
                releasing: [claimed[1].id])
            #expect(try await test.store.outbox.nextDue() == Self.base.addingTimeInterval(30))
            #expect(try await Self.claim(test.store, at: 10).isEmpty)
            #expect(try await Self.claim(test.store, at: 31).map(\.event.eventType) == ["first", "second"])
        }
    }

    @Test("an event given up on no longer holds the ones behind it", arguments: TestBackend.available)
    func aDeadEventReleasesTheRest(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            var writer = try await Writer.start(in: test.store)
            try await writer.write(["first", "second"], at: Self.base)
            let claimed = try await Self.claim(test.store, at: 1)
            try await test.store.outbox.failed(
                claimed[0], owner: "w", error: "gone", retryAt: Self.base.addingTimeInterval(30), dead: true,
                releasing: [claimed[1].id])
            #expect(try await Self.claim(test.store, at: 2).map(\.event.eventType) == ["second"])
            #expect(try await test.store.outbox.counts() == (pending: 1, dead: 1))
        }
    }

    @Test("events written while another process holds the execution's events wait for it", arguments: TestBackend.available)
    func aHeldExecutionIsNotClaimedTwice(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            var writer = try await Writer.start(in: test.store)
            try await writer.write(["first"], at: Self.base)
            #expect(try await Self.claim(test.store, by: "one", at: 1).map(\.event.eventType) == ["first"])
            try await writer.write(["second"], at: Self.base.addingTimeInterval(2))
            // Held by "one" until 16 s: "two" may take nothing of the execution before.
            #expect(try await Self.claim(test.store, by: "two", at: 3).isEmpty)
            #expect(try await Self.claim(test.store, by: "two", at: 17).map(\.event.eventType) == ["first", "second"])
        }
    }

    @Test("executions held up by failures do not keep the others from being published", arguments: TestBackend.available)
    func heldUpExecutionsDoNotStarveOthers(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            // One execution whose first event fails for an hour keeps writing: 300 events, older
            // than anything the others write. A claim reads a window of due events from the front
            // of the due order; the held-up events must not fill it.
            var stuck = try await Writer.start(in: test.store)
            try await stuck.write(["first"], at: Self.base)
            let first = try await Self.claim(test.store, at: 1)
            try await test.store.outbox.failed(
                try #require(first.first), owner: "w", error: "down", retryAt: Self.base.addingTimeInterval(3600), dead: false,
                releasing: [])
            for second in 0..<100 {
                try await stuck.write(["a", "b", "c"], at: Self.base.addingTimeInterval(2 + Double(second) / 100))
            }
            var others: [ExecutionID] = []
            for index in 0..<3 {
                var writer = try await Writer.start(in: test.store)
                try await writer.write(["started"], at: Self.base.addingTimeInterval(10 + Double(index)))
                others.append(writer.executionID)
            }
            let claimed = try await Self.claim(test.store, at: 20, executions: 2)
            #expect(claimed.compactMap(\.executionID) == Array(others.prefix(2)), "the two executions due longest")
            #expect(try await Self.claim(test.store, at: 20, executions: 2).compactMap(\.executionID) == [others[2]])
            #expect(try await test.store.outbox.pending(limit: 1000).count == 304)
        }
    }

    /// Another claim has just locked an execution's oldest event (and not yet committed): this
    /// claim must take none of the execution's events — taking the later ones alone would send
    /// them before the earlier ones.
    @Test("a claim takes nothing of an execution whose oldest event another claim is taking", .enabled(if: TestPostgres.isAvailable))
    func concurrentClaimsDoNotSplitAnExecution() async throws {
        try await TestDatabase.with(.postgres) { test in
            var writer = try await Writer.start(in: test.store)
            try await writer.write(["first", "second"], at: Self.base)
            try await writer.write(["third"], at: Self.base.addingTimeInterval(1))
            let head = try #require(try await test.store.outbox.pending(limit: 10).first)
            let locked = Mutex(false)
            let release = DispatchSemaphore(value: 0)
            let holder = Task {
                try await test.database.transaction { session in
                    _ = try session.query("SELECT id FROM outbox WHERE id = $1 FOR UPDATE", .integer(head.id))
                    locked.withLock { $0 = true }
                    _ = release.wait(timeout: .now() + 10)
                }
            }
            while !locked.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(5)) }
            let during = try await Self.claim(test.store, by: "two", at: 5)
            release.signal()
            try await holder.value
            #expect(during.isEmpty, "claimed \(during.map(\.event.eventType)) while the oldest event was locked")
            #expect(try await Self.claim(test.store, by: "two", at: 6).map(\.event.eventType) == ["first", "second", "third"])
        }
    }

    @Test("a claim takes at most the given number of an execution's oldest events", arguments: TestBackend.available)
    func aClaimTakesABoundedPrefix(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            var writer = try await Writer.start(in: test.store)
            try await writer.write(["a", "b", "c", "d", "e"], at: Self.base)
            let now = Self.base.addingTimeInterval(1)
            let first = try await test.store.outbox.claim(
                owner: "w", now: now, claimUntil: now.addingTimeInterval(15), executions: 10, eventsPerExecution: 2)
            #expect(first.map(\.event.eventType) == ["a", "b"])
            // The rest waits until the head is gone: handed back, it is claimed again from the start.
            #expect(try await Self.claim(test.store, by: "other", at: 2).isEmpty)
            try await test.store.outbox.release(ids: first.map(\.id), owner: "w")
            let again = try await test.store.outbox.claim(
                owner: "w", now: now, claimUntil: now.addingTimeInterval(15), executions: 10, eventsPerExecution: 2)
            #expect(again.map(\.event.eventType) == ["a", "b"])
            try await test.store.outbox.delivered(ids: again.map(\.id), owner: "w")
            #expect(try await Self.claim(test.store, at: 3).map(\.event.eventType) == ["c", "d", "e"])
        }
    }

    /// Rows written out of due order (by an older version, or by hand) sit due at the front of the
    /// due order without being claimable; the repair gives them their head's due time, so that
    /// enough of them cannot fill a claim's window and stop publishing.
    @Test("the due-order repair frees a window filled by events due before their head", arguments: TestBackend.available)
    func repairFreesABlockedWindow(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            var stuck = try await Writer.start(in: test.store)
            try await stuck.write(["first"], at: Self.base)
            let first = try await Self.claim(test.store, at: 1)
            try await test.store.outbox.failed(
                try #require(first.first), owner: "w", error: "down", retryAt: Self.base.addingTimeInterval(3600), dead: false,
                releasing: [])
            try await stuck.write(Array(repeating: "later", count: 40), at: Self.base.addingTimeInterval(2))
            // What an older version left: the later events due when they were written.
            try await test.database.transaction { session in
                try session.execute(
                    "UPDATE outbox SET available_at = $1 WHERE id <> $2", .date(Self.base.addingTimeInterval(2)),
                    .integer(try #require(first.first).id))
            }
            var other = try await Writer.start(in: test.store)
            try await other.write(["started"], at: Self.base.addingTimeInterval(10))
            // A claim of one execution reads a window of 16 events: all of them the stuck ones.
            #expect(try await Self.claim(test.store, at: 20, executions: 1).isEmpty)
            #expect(try await test.store.outbox.nextDue() ?? .distantFuture <= Self.base.addingTimeInterval(20))
            #expect(try await test.store.outbox.repairDueOrder() == 40)
            let taken = try await Self.claim(test.store, at: 20, executions: 1)
            #expect(taken.compactMap(\.executionID) == [other.executionID])
            try await test.store.outbox.delivered(ids: taken.map(\.id), owner: "w")
            #expect(try await test.store.outbox.repairDueOrder() == 0)
            #expect(try await test.store.outbox.nextDue() == Self.base.addingTimeInterval(3600))
        }
    }

    /// The claim treats `status <> 'DEAD'` as pending: the table must allow no third status.
    @Test("the outbox allows no status but PENDING and DEAD", arguments: TestBackend.available)
    func outboxStatusesAreClosed(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            var writer = try await Writer.start(in: test.store)
            try await writer.write(["first"], at: Self.base)
            await #expect(throws: DatabaseError.self) {
                try await test.database.transaction { session in try session.execute("UPDATE outbox SET status = 'SENT'") }
            }
        }
    }
}
