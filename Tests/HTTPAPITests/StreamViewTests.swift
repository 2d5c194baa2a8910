import BudJSON
import Foundation
import PipelineEngine
import PipelineRuntime
import Storage
import Testing

@testable import HTTPAPI

/// When a live stream sends a fresh snapshot: decided from versions, without a server.
@Suite("Live stream view")
struct StreamViewTests {
    static func execution(version: Int, status: ExecutionStatus = .running) -> ExecutionRecord {
        ExecutionRecord(
            id: ExecutionID("0b1c3a2e-5a63-4a3f-9f1e-3b2f6d1c0a11"), version: version, pipelineID: nil, definitionSnapshot: [:],
            initiator: "test",
            status: status, createdAt: Date(), updatedAt: Date())
    }

    static func event(version: Int?) -> EventBus.Message {
        EventBus.Message(topic: nil, executionID: nil, eventType: "step_completed", payload: .null, version: version)
    }

    /// What happens to a stream, in order: an event reaching a version, or a tick finding the execution.
    enum Step {
        case event(Int?)
        case tick(Int, ExecutionStatus = .running)
    }

    /// For each tick of `steps`, whether the stream sent a snapshot.
    static func snapshots(from version: Int, _ steps: [Step]) -> [Bool] {
        var view = ExecutionRoutes.StreamView(version: version)
        var sent: [Bool] = []
        for step in steps {
            switch step {
            case .event(let reached): view.received(event(version: reached))
            case .tick(let version, let status): sent.append(view.tick(execution(version: version, status: status)))
            }
        }
        return sent
    }

    @Test("events that keep up never cause a snapshot")
    func upToDate() {
        #expect(Self.snapshots(from: 2, [.event(3), .tick(3), .tick(3), .event(4), .tick(4)]) == [false, false, false])
    }

    @Test("a version no event reached, found by two ticks in a row, is sent as a snapshot once")
    func missedEvents() {
        #expect(Self.snapshots(from: 2, [.tick(4), .tick(4), .tick(4)]) == [false, true, false])
    }

    @Test("an event arriving between the ticks, or a newer version at the second, puts the snapshot off")
    func lateEventsArrive() {
        #expect(
            Self.snapshots(from: 2, [.tick(4), .event(3), .event(4), .tick(4), .tick(6), .tick(7), .tick(7)]) == [
                false, false, false, false, true,
            ])
    }

    @Test("an event that skips a version (the events between were lost) causes a snapshot at the next tick")
    func skippedVersion() {
        #expect(Self.snapshots(from: 2, [.event(3), .event(5), .tick(5), .tick(5)]) == [true, false])
        #expect(
            Self.snapshots(from: 2, [.event(3), .event(3), .event(4), .tick(4)]) == [false], "events of one transition share its version")
    }

    @Test("an execution finished elsewhere ends the stream after two ticks, even at a version the events reached")
    func finishedElsewhere() {
        #expect(Self.snapshots(from: 5, [.event(nil), .tick(5, .completed), .tick(5, .completed)]) == [false, true])
    }
}
