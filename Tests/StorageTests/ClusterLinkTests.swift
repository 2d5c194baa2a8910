import Foundation
import PipelineEngine
import Storage
import Synchronization
import Testing
import _BudPipelineTestSupport

/// The group of processes sharing a PostgreSQL database, over a real server: two links stand for
/// two processes.
@Suite("Cluster links", .enabled(if: TestPostgres.isAvailable))
struct ClusterLinkTests {
    /// Everything one link received, collected by a task of its own.
    final class SignalLog: Sendable {
        private final class Received: Sendable {
            let signals = Mutex<[ClusterSignal]>([])
        }

        private let received = Received()

        init(_ link: any ClusterLink) {
            let received = received
            Task { for await signal in link.signals { received.signals.withLock { $0.append(signal) } } }
        }

        var all: [ClusterSignal] { received.signals.withLock { $0 } }

        var messages: [String] {
            all.compactMap { if case .message(let text) = $0 { text } else { nil } }
        }

        /// Waits until `condition` holds for what arrived; false after `timeout`.
        func wait(timeout: Duration = .seconds(10), until condition: ([ClusterSignal]) -> Bool) async -> Bool {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                if condition(all) { return true }
                try? await Task.sleep(for: .milliseconds(20))
            }
            return condition(all)
        }
    }

    /// The backend pid holding `workerID`'s member lock.
    private static func listenerPID(of workerID: String, on database: any Database) async throws -> Int? {
        let rows = try await database.read(
            """
            SELECT l.pid FROM pg_locks l JOIN cluster_member m ON l.objid::bigint = m.id
            WHERE l.locktype = 'advisory' AND l.classid = 1112556364 AND l.granted AND l.objsubid = 2 AND m.worker_id = $1
                AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            """, .text(workerID))
        return try rows.first?.int("pid")
    }

    @Test("messages reach every member in order; a member whose connection dies is reported gone and rejoins")
    func messagesAndDeath() async throws {
        try await TestDatabase.with(.postgres) { test in
            let first = try #require(try await test.database.joinCluster(workerID: "first"))
            let second = try #require(try await test.database.joinCluster(workerID: "second"))
            let heard = SignalLog(second)
            let heardByFirst = SignalLog(first)

            try await first.send(["one", "two", "two", "{\"k\":\"x\"}"])
            #expect(await heard.wait { _ in heard.messages.count >= 4 })
            #expect(heard.messages == ["one", "two", "two", "{\"k\":\"x\"}"], "identical payloads of one send are not folded")
            #expect(await heardByFirst.wait { _ in heardByFirst.messages.count >= 4 }, "a member hears itself too")
            await #expect(throws: (any Error).self) {
                try await first.send([String(repeating: "x", count: maximumClusterPayloadBytes + 1)])
            }

            // The first member's connection ends (as when its process is killed): the second learns at once.
            let pid = try #require(try await Self.listenerPID(of: "first", on: test.database))
            _ = try await test.database.read("SELECT pg_terminate_backend($1)", .integer(pid))
            let started = ContinuousClock.now
            #expect(await heard.wait { $0.contains(.memberGone(workerID: "first")) })
            #expect(ContinuousClock.now - started < .seconds(3))
            // The first member is still alive: it joins again and says it missed messages.
            #expect(await heardByFirst.wait { $0.contains(.reconnected) })
            let members = try await test.database.read("SELECT worker_id FROM cluster_member ORDER BY id").map {
                try $0.string("worker_id")
            }
            #expect(members == ["second", "first"])

            // Leaving is not dying: the others are not told to take anything over.
            await first.leave()
            try await second.send(["after"])
            #expect(await heard.wait { _ in heard.messages.contains("after") })
            #expect(heard.all.filter { $0 == .memberGone(workerID: "first") }.count == 1)
            #expect(try await test.database.read("SELECT worker_id FROM cluster_member").map { try $0.string("worker_id") } == ["second"])
            await second.leave()
        }
    }

    @Test("a dead member's claims are handed back, unless a live member works under the same name")
    func releaseClaims() async throws {
        try await TestDatabase.with(.postgres) { test in
            let store = test.store
            let new = StoreFixtures.execution()
            try await store.executions.insert(new)
            try await store.executions.apply(
                StoreFixtures.startTransition(executionID: new.record.id, owner: "dead", leaseUntil: Date().addingTimeInterval(600)))
            // A live member with the name: nothing is released.
            let alive = try #require(try await test.database.joinCluster(workerID: "dead"))
            #expect(try await store.cluster.releaseClaims(of: "dead", now: Date()).total == 0)
            await alive.leave()
            let released = try await store.cluster.releaseClaims(of: "dead", now: Date())
            #expect(released.steps == 1)
            let taken = try await store.leases.claimExpired(owner: "heir", now: Date(), until: Date().addingTimeInterval(30), limit: 10)
            #expect(taken.map(\.stepID) == ["a"])
        }
    }
}
