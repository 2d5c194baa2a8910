import BudJSON
import Foundation
import Storage
import Testing
import _BudPipelineTestSupport

/// Events parked until a step awaits their workflow id, on both backends.
@Suite("Parked inbound events")
struct ParkedEventTests {
    static let start = Date(timeIntervalSince1970: 1_800_000_000)

    static func event(_ workflowID: String, _ n: Int, at offset: TimeInterval = 0) -> ParkedInboundEvent {
        ParkedInboundEvent(
            externalWorkflowID: workflowID, eventID: "e-\(n)", source: "budcluster", body: ["type": "notification", "n": .int(n)],
            receivedAt: start.addingTimeInterval(offset))
    }

    @Test("parked events come back in arrival order, for their workflow only, newer than the cutoff", arguments: TestBackend.available)
    func takeInOrder(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            try await test.store.inboundEvents.park(Self.event("wf-a", 1, at: 0))
            try await test.store.inboundEvents.park(Self.event("wf-b", 2, at: 1))
            try await test.store.inboundEvents.park(Self.event("wf-a", 3, at: 2))
            try await test.store.inboundEvents.park(Self.event("wf-a", 4, at: 3))
            let taken = try await test.store.inboundEvents.takeParked(
                externalWorkflowID: "wf-a", receivedAfter: Self.start.addingTimeInterval(1))
            #expect(taken.map(\.eventID) == ["e-3", "e-4"], "the one before the cutoff is left for retention")
            #expect(taken.first == Self.event("wf-a", 3, at: 2))
            #expect(
                try await test.store.inboundEvents.takeParked(externalWorkflowID: "wf-a", receivedAfter: Self.start.addingTimeInterval(1))
                    .isEmpty)
            #expect(try await test.store.inboundEvents.forgetParked(receivedBefore: Self.start.addingTimeInterval(1)) == 1)
            #expect(
                try await test.store.inboundEvents.takeParked(externalWorkflowID: "wf-b", receivedAfter: Self.start).map(\.eventID) == [
                    "e-2"
                ])
        }
    }

    @Test("takers racing for the same workflow each get an event at most once", arguments: TestBackend.available)
    func concurrentTakers(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            for n in 0..<50 { try await test.store.inboundEvents.park(Self.event("wf-race", n, at: Double(n))) }
            let store = test.store
            let taken = try await withThrowingTaskGroup(of: [String].self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        try await store.inboundEvents.takeParked(externalWorkflowID: "wf-race", receivedAfter: Self.start).compactMap(
                            \.eventID)
                    }
                }
                return try await group.reduce(into: [String]()) { $0 += $1 }
            }
            #expect(taken.count == 50 && Set(taken).count == 50)
        }
    }
}
