import BudJSON
import Foundation
public import PipelineEngine
import PluginSchema
import Storage

/// Something to apply to an execution.
enum RuntimeInput: Sendable {
    case engine(ExecutionInput)
    /// A stored timer came due; the transition that handles it deletes it.
    case timer(TimerRecord)
}

/// Keys of the timers the runtime keeps besides the engine's.
enum RuntimeTimerKey {
    /// A new execution waiting to start: whichever process fires it runs the first steps.
    static let start = "start"
}

/// An execution held in memory between transitions: the engine's machine and what the store
/// knows of it. The runtime keeps one per active execution and applies inputs to it in order.
struct LiveExecution: Sendable {
    var machine: ExecutionStateMachine
    /// The stored version this state corresponds to.
    var version: Int
    /// The last progress event number stored.
    var eventSequence: Int
    let pipelineID: PipelineID?
    /// The user the execution belongs to, handed to plugins as the user they act for.
    let ownerID: String?
    /// Stored step row ids by step id.
    let stepRowIDs: [String: String]
    /// Whether its events have topics to go to (see ``NotificationAudience/mayHaveTopics(callbackTopics:subscriberIDs:)``); when not,
    /// its transitions write nothing to the outbox.
    let publishes: Bool
    /// The trace context the execution's spans descend from (see ``ExecutionTracing``).
    let traceParent: TraceParent?

    var executionID: ExecutionID { machine.executionID }
    var isFinished: Bool { machine.execution.status.isFinished }

    /// The trace context stored with `execution`, else the one derived from its id.
    static func traceParent(of execution: ExecutionRecord) -> TraceParent? {
        execution.traceParent.flatMap(TraceParent.init) ?? .derived(from: execution.id)
    }

    /// Rebuilds an execution from its stored rows.
    static func restore(
        execution: ExecutionRecord,
        steps: [StepRecord],
        publishes: Bool,
        catalog: some ActionCatalog,
        options: EngineOptions
    ) throws(RuntimeError) -> LiveExecution {
        guard (0..<(1 << 62)).contains(execution.version), (0..<(1 << 62)).contains(execution.eventSequence) else {
            throw .unrecoverable("execution \(execution.id): its stored version or event sequence is out of range")
        }
        let definition: PipelineDefinition
        switch PipelineParser.parse(execution.dag) {
        case .success(let parsed): definition = parsed
        case .failure(let failure):
            throw .unrecoverable("execution \(execution.id): its stored DAG no longer parses: \(failure.errors.joined(separator: "; "))")
        }
        guard let pipeline = PipelineCompiler.compileForResume(definition, catalog: catalog) else {
            throw .unrecoverable("execution \(execution.id): its stored DAG has a dependency cycle")
        }
        do {
            let machine = try ExecutionStateMachine(
                restoring: pipeline,
                executionID: execution.id,
                params: execution.params.owned(by: execution.userID),
                options: options,
                steps: steps.map(\.state),
                execution: execution.snapshot
            )
            return LiveExecution(
                machine: machine,
                version: execution.version,
                eventSequence: execution.eventSequence,
                pipelineID: execution.pipelineID,
                ownerID: execution.userID,
                stepRowIDs: Dictionary(steps.map { ($0.state.stepID, $0.id) }, uniquingKeysWith: { first, _ in first }),
                publishes: publishes,
                traceParent: traceParent(of: execution)
            )
        } catch {
            throw .unrecoverable("execution \(execution.id): its stored steps do not fit its DAG: \(error)")
        }
    }

    /// Applies `inputs` in order and gathers everything they change into one transition and the
    /// work to do once it is committed.
    mutating func plan(_ inputs: [RuntimeInput], now: Date, settings: PlanSettings) -> TransitionPlan {
        var actions: [ExecutionAction] = []
        var consumed: [TimerRecord] = []
        var taken: [Bool] = []
        taken.reserveCapacity(inputs.count)
        // Steps settled inline (built-in actions, skips) take their start and end from the time
        // the plan has taken so far, so each has its own, in order, within this transition.
        let clock = ContinuousClock()
        let planStarted = clock.now
        let elapsed: @Sendable () -> Duration = { clock.now - planStarted }
        for input in inputs {
            let produced: [ExecutionAction]
            switch input {
            case .engine(let engineInput):
                produced = machine.handle(engineInput, at: now, elapsed: elapsed)
            case .timer(let timer):
                consumed.append(timer)
                if timer.key == RuntimeTimerKey.start {
                    produced = machine.handle(.start, at: now, elapsed: elapsed)
                } else if let engineTimer = EngineTimer(key: timer.key) {
                    produced = machine.handle(.timerFired(engineTimer), at: now, elapsed: elapsed)
                } else {
                    produced = [.ignored("timer '\(timer.key)' is not one the runtime knows; deleted")]
                }
            }
            // The engine answers an input it does not take (a stale one) with `ignored`, and
            // changes nothing for it.
            taken.append(!produced.contains { if case .ignored = $0 { true } else { false } })
            actions += produced
        }

        var stepOrder: [String] = []
        var latestStates: [String: StepState] = [:]
        var timers: [TimerChange] = []
        var timerEffects: [TimerEffect] = []
        var events: [EngineEvent] = []
        var logLines: [EngineLogLine] = []
        var dispatches: [StepDispatch] = []
        var abandonments: [StepAbandonment] = []
        var notes: [String] = []
        for action in actions {
            switch action {
            case .stepChanged(let state):
                if latestStates.updateValue(state, forKey: state.stepID) == nil { stepOrder.append(state.stepID) }
            case .executionChanged: break
            case .setTimer(let timer, let dueAt):
                let claimedUntil = dueAt.addingTimeInterval(settings.timerClaimGrace)
                timers.append(.set(key: timer.key, dueAt: dueAt, claimedBy: settings.workerID, claimedUntil: claimedUntil))
                timerEffects.append(.set(TimerRecord(executionID: executionID, key: timer.key, dueAt: dueAt)))
            case .cancelTimer(let timer):
                timers.append(.cancel(key: timer.key))
                timerEffects.append(.cancel(key: timer.key))
            case .emit(let event): events.append(event)
            case .log(let line): logLines.append(line)
            case .abandon(let abandonment): abandonments.append(abandonment)
            case .dispatch(let dispatch): dispatches.append(dispatch)
            case .ignored(let note): notes.append(note)
            }
        }

        // A dispatch overtaken in the same batch (the step was cancelled before its call started)
        // is not made, and needs no cleanup.
        let started = dispatches.filter { dispatch in
            guard let state = latestStates[dispatch.stepID] else { return false }
            return state.status == .running && state.attempt == dispatch.attempt
        }
        let dropped = Set(dispatches.filter { !started.contains($0) }.map { "\($0.stepID)/\($0.attempt)" })
        abandonments.removeAll { dropped.contains("\($0.stepID)/\($0.attempt)") }

        var requests: [String: ExecuteRequest] = [:]
        for dispatch in started {
            requests[dispatch.stepID] = ExecuteRequest(
                action: dispatch.action,
                executionID: executionID.rawValue,
                stepID: dispatch.stepID,
                stepExecutionID: stepRowIDs[dispatch.stepID],
                idempotencyKey: dispatch.idempotencyKey,
                retryCount: dispatch.attempt,
                params: dispatch.params,
                workflowParams: machine.params,
                stepOutputs: dispatch.stepOutputs,
                timeoutSeconds: dispatch.timeoutSeconds,
                userID: ownerID
            )
        }
        let leaseUntil = now.addingTimeInterval(settings.leaseSeconds)
        let stepWrites = stepOrder.compactMap { stepID -> StepWrite? in
            guard let state = latestStates[stepID] else { return nil }
            let lease = requests[stepID].map { StepWrite.Lease(owner: settings.workerID, expiresAt: leaseUntil, dispatch: $0.json) }
            return StepWrite(state: state, lease: lease)
        }

        var records = EventRecords(
            executionID: executionID, pipelineID: pipelineID, publishes: publishes, now: now, sequence: eventSequence)
        records.record(events, execution: machine.execution)

        let transition = ExecutionTransition(
            executionID: executionID,
            expectedVersion: version,
            execution: machine.execution,
            eventSequence: records.sequence,
            steps: stepWrites,
            timers: timers,
            consumedTimers: consumed,
            progressEvents: records.progressEvents,
            outbox: records.outbox,
            now: now
        )
        return TransitionPlan(
            transition: transition,
            calls: started.compactMap { dispatch in
                requests[dispatch.stepID].map {
                    StepCall(
                        request: $0, checkParamsFirst: machine.pipeline.hasTemplatedParams(dispatch.stepID), traceParent: traceParent)
                }
            },
            abandonments: abandonments,
            liveEvents: records.live,
            logLines: logLines,
            notes: notes,
            timerEffects: timerEffects,
            awaitedWorkflowIDs: events.compactMap { event in
                guard case .stepAwaitingEvent(_, _, let externalID) = event else { return nil }
                return externalID
            },
            finished: machine.execution.status.isFinished ? machine.execution.status : nil,
            taken: taken,
            stepOutcomes: events.compactMap { stepOutcome(of: $0, latest: latestStates) },
            startedExecution: events.contains(.executionStarted),
            traceParent: traceParent
        )
    }

    /// What `event` did to a step, for the metrics; `nil` for an event about the execution.
    private func stepOutcome(of event: EngineEvent, latest: [String: StepState]) -> StepOutcome? {
        let stepID: String
        let outcome: StepOutcome.Kind
        var seconds: Double?
        switch event {
        case .stepStarted(let id, _, _, _): (stepID, outcome) = (id, .started)
        case .stepCompleted(let id, _, _, let duration): (stepID, outcome, seconds) = (id, .completed, duration)
        case .stepFailed(let id, _, let status, _, _):
            stepID = id
            outcome =
                switch status {
                case .timedOut: .timedOut
                case .cancelled: .cancelled
                case .skipped: .skipped
                default: .failed
                }
        case .stepSkipped(let id, _, _): (stepID, outcome) = (id, .skipped)
        case .stepRetrying(let id, _, _, _, _): (stepID, outcome) = (id, .retrying)
        case .stepAwaitingEvent(let id, _, _): (stepID, outcome) = (id, .awaitingEvent)
        case .executionStarted, .progress, .executionCompleted, .executionFailed, .executionCancelled: return nil
        }
        guard let state = latest[stepID] ?? machine.step(stepID) else { return nil }
        if seconds == nil, outcome.endsAttempt, let started = state.startedAt, let ended = state.endedAt {
            seconds = ended.timeIntervalSince(started)
        }
        return StepOutcome(stepID: stepID, action: state.action, outcome: outcome, seconds: seconds, attempt: state.attempt)
    }

    /// Records that `plan` was committed.
    mutating func committed(_ plan: TransitionPlan) {
        version += 1
        eventSequence = plan.transition.eventSequence
    }
}

/// The settings a plan depends on.
struct PlanSettings: Sendable {
    var workerID: String
    var leaseSeconds: Double
    var timerClaimGrace: Double
}

/// A plugin call to make: one attempt of one step.
struct StepCall: Sendable, Equatable {
    var request: ExecuteRequest
    /// The step's parameters held templates, so its plugin has not checked them yet
    /// (`validate_params` runs before `execute`).
    var checkParamsFirst = false
    /// The execution's trace context, the parent of the call's span.
    var traceParent: TraceParent?

    var executionID: ExecutionID { ExecutionID(request.executionID) }
    var stepID: String { request.stepID }
    var attempt: Int { request.retryCount }
}

/// A timer change for the in-memory timer queue.
enum TimerEffect: Sendable, Equatable {
    case set(TimerRecord)
    case cancel(key: String)
}

/// One transition to commit and what to do after it is committed.
struct TransitionPlan: Sendable {
    var transition: ExecutionTransition
    var calls: [StepCall]
    var abandonments: [StepAbandonment]
    /// Every event of the transition, for this process's live streams once it is committed.
    var liveEvents: [OutboxEvent]
    var logLines: [EngineLogLine]
    var notes: [String]
    var timerEffects: [TimerEffect]
    /// The external workflow ids steps started waiting for: events parked for them are due.
    var awaitedWorkflowIDs: [String]
    /// The execution's final status, when this transition ended it.
    var finished: ExecutionStatus?
    /// For each input planned, in order, whether the engine took it (`false`: it was stale and
    /// changed nothing).
    var taken: [Bool]
    /// What happened to steps, for the metrics.
    var stepOutcomes: [StepOutcome] = []

    /// Whether this transition started the execution.
    var startedExecution = false
    /// The execution's trace context, the parent of the spans of its step attempts.
    var traceParent: TraceParent?
}

/// One step change of a transition, as the metrics count it and the debug log shows it: the
/// step, its action, what happened (`started`, `completed`, `failed`, …), for an attempt that
/// ended how long it took, and the attempt (0 for the first).
struct StepOutcome: Sendable, Equatable {
    enum Kind: String, Sendable, CaseIterable {
        case started, awaitingEvent = "awaiting_event", retrying, completed, failed, timedOut = "timed_out", skipped, cancelled

        /// Whether an attempt ended (it has a duration).
        var endsAttempt: Bool { self != .started && self != .awaitingEvent && self != .skipped }
    }

    var stepID: String
    var action: String
    var outcome: Kind
    var seconds: Double?
    var attempt: Int
}

/// Failures of the runtime.
public enum RuntimeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stored state the runtime cannot continue from.
    case unrecoverable(String)
    /// The runtime is shutting down and takes no more work.
    case shuttingDown
    /// The execution does not exist.
    case executionNotFound(ExecutionID)

    public var description: String {
        switch self {
        case .unrecoverable(let message): message
        case .shuttingDown: "the runtime is shutting down"
        case .executionNotFound(let id): "execution \(id) not found"
        }
    }
}
