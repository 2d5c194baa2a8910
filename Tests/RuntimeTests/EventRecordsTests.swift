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
        records.record(events, execution: execution)
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

    /// The outbox keeps exactly the events that make notifications: the list of notified types
    /// and the notifications made agree for every kind of event the engine emits.
    @Test func theNotifiedTypesAreExactlyThoseThatMakeNotifications() {
        let every: [EngineEvent] = [
            .executionStarted,
            .stepStarted(stepID: "a", name: "A", sequence: 1, attempt: 0),
            .stepCompleted(stepID: "a", name: "A", outputs: [:], durationSeconds: 1),
            .stepFailed(stepID: "a", name: "A", status: .failed, error: "boom", tolerated: false),
            .stepSkipped(stepID: "a", name: "A", reason: "Condition not met"),
            .stepRetrying(stepID: "a", name: "A", nextAttempt: 1, delaySeconds: 1, error: "boom"),
            .stepAwaitingEvent(stepID: "a", name: "A", externalWorkflowID: "w"),
            .progress(percent: 10, etaSeconds: 5, stepID: "a"),
            .executionCompleted(outputs: [:], stepOutputs: [:]),
            .executionFailed(error: "boom"),
            .executionCancelled(reason: "stop"),
        ]
        let records = Self.records(publishes: true, every)
        let audience = NotificationAudience(executionID: "e-1", callbackTopics: ["t"], subscriberIDs: "u")
        #expect(records.live.count == every.count)
        for event in records.live {
            let makesNotifications = !Notifications.make(for: event, audience: audience).isEmpty
            #expect(makesNotifications == Notifications.notifiedEventTypes.contains(event.eventType), "\(event.eventType)")
        }
        #expect(Set(records.outbox.map(\.eventType)) == Notifications.notifiedEventTypes)
    }

    @Test func aStepCompletionIsOneProgressRowHoldingTheNewPercentage() {
        let records = Self.records(publishes: true, Self.completionAndStart)
        #expect(records.progressEvents.map(\.kind) == [.stepCompleted])
        #expect(records.progressEvents.map(\.progress) == [50])
        #expect(records.progressEvents.map(\.sequenceNumber) == [5])
        #expect(records.sequence == 5)
    }

    /// One transition that settles two steps (a batch of inputs) stores each completion with the
    /// progress reached through it: the percentages rise, never fall back.
    @Test func stepsSettledInOneTransitionKeepTheirOwnPercentages() {
        let records = Self.records(
            publishes: true,
            [
                .stepCompleted(stepID: "a", name: "A", outputs: [:], durationSeconds: 0.1),
                .progress(percent: 40, etaSeconds: nil, stepID: nil),
                .stepCompleted(stepID: "b", name: "B", outputs: [:], durationSeconds: 0.1),
                .progress(percent: 80, etaSeconds: nil, stepID: nil),
            ],
            progress: 80)
        #expect(records.progressEvents.map(\.kind) == [.stepCompleted, .stepCompleted])
        #expect(records.progressEvents.map(\.progress) == [40, 80])
        let published = records.outbox.filter { $0.eventType == "step_completed" }.map { $0.payload.objectValue?["progress"] }
        #expect(published == [.double(40), .double(80)])
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
