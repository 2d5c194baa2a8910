import BudJSON
import Foundation
import PipelineEngine
import Storage

/// Records for the contract tests.
enum StoreFixtures {
    /// A fixed instant with microseconds, so that round trips are checked to the microsecond.
    static let base = Date(timeIntervalSince1970: 1_790_000_000.123456)

    static func newID() -> String { UUID().uuidString.lowercased() }

    static func definition(id: PipelineID = .generate(), name: String = "deploy", userID: String? = nil) -> PipelineDefinitionRecord {
        PipelineDefinitionRecord(
            id: id,
            name: name,
            description: "a pipeline",
            icon: "rocket",
            dag: ["name": "deploy", "steps": [["id": "a", "action": "log"]], "zeta": 1, "alpha": 2],
            status: .active,
            userID: userID,
            stepCount: 1,
            createdAt: base,
            updatedAt: base
        )
    }

    /// An execution of two steps, `a` then `b`, not started.
    static func execution(id: ExecutionID = .generate(), pipelineID: PipelineID? = nil, timers: [TimerChange] = []) -> NewExecution {
        let record = ExecutionRecord(
            id: id,
            pipelineID: pipelineID,
            definitionSnapshot: [
                "workflow_id": pipelineID.map { .string($0.rawValue) } ?? .null, "workflow_name": "deploy",
                "dag": ["name": "deploy", "steps": []], "params": ["region": "eu", "count": 3],
            ],
            initiator: "tester",
            subscriberIDs: "user-1",
            createdAt: base,
            updatedAt: base
        )
        let steps = ["a", "b"].enumerated().map { index, stepID in
            StepRecord(
                id: newID(),
                executionID: id,
                state: StepState(stepID: stepID, name: "Step \(stepID)", action: "text_stats", sequence: index + 1),
                createdAt: base,
                updatedAt: base
            )
        }
        return NewExecution(record: record, steps: steps, callbackTopics: ["topic-a"], timers: timers)
    }

    /// A transition of `execution` that starts step `a` on a plugin, leased to `owner`.
    static func startTransition(executionID: ExecutionID, version: Int = 1, owner: String = "worker-1", leaseUntil: Date? = nil)
        -> ExecutionTransition
    {
        var step = StepState(stepID: "a", name: "Step a", action: "text_stats", sequence: 1)
        step.status = .running
        step.startedAt = base
        return ExecutionTransition(
            executionID: executionID,
            expectedVersion: version,
            execution: ExecutionSnapshot(status: .running, startedAt: base, progress: 0),
            eventSequence: 1,
            steps: [
                StepWrite(
                    state: step,
                    lease: StepWrite.Lease(
                        owner: owner, expiresAt: leaseUntil ?? base.addingTimeInterval(30), dispatch: ["idempotency_key": "k/a/0"])
                )
            ],
            timers: [.set(key: "step_deadline:a:0", dueAt: base.addingTimeInterval(60), claimedBy: nil, claimedUntil: nil)],
            progressEvents: [
                ProgressEventRecord(
                    id: newID(), executionID: executionID, kind: .workflowProgress, progress: 0, etaSeconds: nil,
                    currentStepDescription: "Step a", details: ["step_id": "a"], timestamp: base, sequenceNumber: 1, createdAt: base)
            ],
            outbox: [OutboxEvent(eventType: "step_started", payload: ["step_id": "a"])],
            now: base
        )
    }
}
