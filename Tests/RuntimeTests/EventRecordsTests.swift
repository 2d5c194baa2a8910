import BudJSON
import Foundation
import PipelineEngine
import Storage
import Testing

@testable import PipelineRuntime

/// What one transition's events become: outbox rows only for notifications with a topic to go to,
/// one progress row per change, and every event for the live streams.
@Suite("Event records")
struct EventRecordsTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    /// The events of a transition that completes step `a` and starts `b`, in the engine's order.
    static let completionAndStart: [EngineEvent] = [
        .stepCompleted(stepID: "a", name: "A", outputs: ["n": 1], durationSeconds: 0.5),
        .stepSkipped(stepID: "s", name: "S", reason: "Condition not met"),
        .stepStarted(stepID: "b", name: "B", sequence: 2, attempt: 0),
        .progress(percent: 50, etaSeconds: nil, stepID: nil),
    ]

    static func records(publishes: Bool, _ events: [EngineEvent], progress: Double = 50) -> EventRecords {
        var records = EventRecords(executionID: "e-1", pipelineID: nil, publishes: publishes, now: now, sequence: 4)
        let execution = ExecutionSnapshot(status: .running, startedAt: now, progress: progress)
        for event in events { records.record(event, execution: execution) }
        return records
    }

    @Test func withoutTopicsNothingGoesToTheOutboxButEverythingToTheLiveStreams() {
        let records = Self.records(publishes: false, [.executionStarted] + Self.completionAndStart)
        #expect(records.outbox.isEmpty)
        #expect(
            records.live.map(\.eventType) == ["execution_started", "step_completed", "step_skipped", "step_started", "workflow_progress"])
    }

    @Test func withTopicsOnlyEventsThatMakeNotificationsGoToTheOutbox() {
        let records = Self.records(publishes: true, [.executionStarted] + Self.completionAndStart)
        #expect(records.outbox.map(\.eventType) == ["step_completed", "step_started", "workflow_progress"])
        #expect(records.live.count == 5)
        for event in records.outbox {
            #expect(Notifications.notifiedEventTypes.contains(event.eventType))
        }
    }

    @Test func aStepCompletionIsOneProgressRowHoldingTheNewPercentage() {
        let records = Self.records(publishes: true, Self.completionAndStart)
        #expect(records.progressEvents.map(\.kind) == [.stepCompleted])
        #expect(records.progressEvents.map(\.progress) == [50])
        #expect(records.progressEvents.map(\.sequenceNumber) == [5])
        #expect(records.sequence == 5)
    }

    @Test func aRiseWithoutACompletionAndAnETAReportAreOneRowEach() {
        let rise = Self.records(publishes: false, [.progress(percent: 60, etaSeconds: nil, stepID: "a")], progress: 60)
        #expect(rise.progressEvents.map(\.kind) == [.workflowProgress])
        let report = Self.records(publishes: false, [.progress(percent: 60, etaSeconds: 90, stepID: "a")], progress: 60)
        #expect(report.progressEvents.map(\.kind) == [.etaUpdate])
        #expect(report.progressEvents.first?.progress == 60 && report.progressEvents.first?.etaSeconds == 90)
        #expect(report.outbox.isEmpty && report.live.map(\.eventType) == ["workflow_progress"])
    }
}
