import BudJSON
import Foundation
import PipelineEngine
import Storage

/// What `budpipeline run` knows of its execution while it runs: a value that takes the
/// execution's live events and, now and then, its stored state (``apply(_:)``), and tells what
/// changed. The views (``RunProgress/frame(width:height:now:style:)``, ``RunProgress/line(for:style:)``)
/// are pure functions of it. No I/O.
///
/// Guarantees:
/// - Every text that came from the DAG or the store (ids, names, errors, workflow ids) is cleaned
///   by ``TerminalText/clean(_:limit:)`` as it comes in: nothing in the state can start a
///   terminal escape sequence or break a line, and no text is longer than a few hundred scalars.
/// - A step never moves back: a status is taken only when its attempt is later, or the same
///   attempt with the status as far along or further (pending, running, awaiting an event,
///   retrying, settled). Events and stored states that arrive late or twice change nothing, so
///   a change is reported once.
/// - A stored state older than what the events told (a lower execution version) is ignored; so
///   is an event from a transition older than the last stored state applied.
/// - Nothing traps on any input: unknown steps and event types are ignored, numbers are clamped.
struct RunProgress: Sendable, Equatable {
    /// One step as the view shows it.
    struct Step: Sendable, Equatable {
        /// The step's id as the DAG gives it (the key events use); never shown.
        let key: String
        /// The id, cleaned for display.
        let id: String
        var name: String
        var action: String
        /// Indices of the steps it depends on.
        var dependencies: [Int]
        var status: StepStatus = .pending
        /// 0 for the first attempt.
        var attempt = 0
        var startedAt: Date?
        var endedAt: Date?
        /// 0…100, as the plugin reported.
        var progress: Double = 0
        /// The id of the external work awaited.
        var externalWorkflowID: String?
        /// When an awaiting step times out (for `wait_until`: wakes up).
        var deadline: Date?
        /// When a retrying step's next attempt is due (told only by its `step_retrying` event).
        var retryAt: Date?
        /// Why it failed, was skipped or cancelled; for a retrying step, why the attempt failed.
        var error: String?

        init(key: String, name: String, action: String, dependencies: [Int] = []) {
            self.key = key
            self.id = TerminalText.clean(key, limit: 200)
            self.name = TerminalText.clean(name, limit: 200)
            self.action = TerminalText.clean(action, limit: 100)
            self.dependencies = dependencies
        }

        /// Running or waiting (an event, a wake-up, a retry).
        var isActive: Bool { status == .running || status == .awaitingEvent || status == .retrying }

        /// The time it has run: until it ended, else until `now`; `nil` before it started.
        func duration(at now: Date) -> Double? {
            guard let startedAt else { return nil }
            return max(0, (endedAt ?? now).timeIntervalSince(startedAt))
        }

        /// Where the status stands in a step's life, for "never moves back".
        fileprivate var stage: (attempt: Int, rank: Int) { (attempt, Self.rank(status)) }

        fileprivate static func rank(_ status: StepStatus) -> Int {
            switch status {
            case .pending: 0
            case .running: 1
            case .awaitingEvent: 2
            case .retrying: 3
            case .completed, .failed, .skipped, .timedOut, .cancelled: 4
            }
        }

        /// Whether moving to `status` at `attempt` goes forward (or stays).
        fileprivate func accepts(_ status: StepStatus, attempt: Int) -> Bool {
            let current = stage
            return attempt > current.attempt || (attempt == current.attempt && Self.rank(status) >= current.rank)
        }
    }

    /// The execution's estimated seconds left, as told at a moment.
    struct Estimate: Sendable, Equatable {
        var seconds: Int
        var at: Date
    }

    /// What comes in.
    enum Input: Sendable, Equatable {
        /// An event of the execution from the runtime's live bus (`type` as in docs/events.md,
        /// `payload` its JSON, `version` the execution's version after its transition), received at `at`.
        case event(type: String, payload: JSONValue, version: Int?, at: Date)
        /// The execution as stored.
        case stored(Stored)
    }

    /// The execution and its steps as read from the store together, at `at`, with the engine's
    /// estimate of the seconds left then (`nil`: it cannot tell).
    struct Stored: Sendable, Equatable {
        var version: Int
        var status: ExecutionStatus
        var startedAt: Date?
        var endedAt: Date?
        var progress: Double
        var error: String?
        var steps: [StepState]
        var estimatedSecondsLeft: Int?
        var at: Date

        init(
            version: Int, status: ExecutionStatus, startedAt: Date? = nil, endedAt: Date? = nil, progress: Double = 0, error: String? = nil,
            steps: [StepState], estimatedSecondsLeft: Int? = nil, at: Date
        ) {
            self.version = version
            self.status = status
            self.startedAt = startedAt
            self.endedAt = endedAt
            self.progress = progress
            self.error = error
            self.steps = steps
            self.estimatedSecondsLeft = estimatedSecondsLeft
            self.at = at
        }

        init(execution: ExecutionRecord, steps: [StepRecord], estimatedSecondsLeft: Int?, at: Date) {
            self.init(
                version: execution.version, status: execution.status, startedAt: execution.startTime, endedAt: execution.endTime,
                progress: execution.progress, error: execution.errorInfo?["message"]?.stringValue, steps: steps.map(\.state),
                estimatedSecondsLeft: estimatedSecondsLeft, at: at)
        }
    }

    /// A change worth a line of its own: a step's status (or attempt), or the execution's.
    enum Change: Sendable, Equatable {
        case step(Step, at: Date)
        case execution(ExecutionStatus, at: Date)
    }

    /// The execution's id, cleaned.
    let executionID: String
    var status: ExecutionStatus = .pending
    var startedAt: Date?
    var endedAt: Date?
    /// 0…100, never going down.
    var progress: Double = 0
    /// Why the execution failed or was cancelled.
    var error: String?
    /// The engine's latest estimate of the seconds left (see ``secondsLeft(at:)``).
    var estimate: Estimate?
    /// The execution's version as far as what came in tells.
    private(set) var version = 0
    private(set) var steps: [Step]
    private var positions: [String: Int]

    /// The view of a new execution of `definition` (its steps pending, in definition order).
    init(executionID: String, definition: PipelineDefinition?) {
        self.executionID = TerminalText.clean(executionID, limit: 100)
        let definitionSteps = definition?.steps ?? []
        var positions: [String: Int] = [:]
        for (index, step) in definitionSteps.enumerated() where positions[step.id] == nil { positions[step.id] = index }
        self.positions = positions
        self.steps = definitionSteps.map { step in
            Step(
                key: step.id, name: step.name, action: step.action,
                dependencies: step.dependsOn.compactMap { positions[$0] })
        }
    }

    /// Takes `input`; returns what changed enough for a line of its own, in order.
    mutating func apply(_ input: Input) -> [Change] {
        let before = self
        switch input {
        case .event(let type, let payload, let eventVersion, let at):
            if let eventVersion {
                guard eventVersion >= version else { return [] }
                version = eventVersion
            }
            applyEvent(type, payload, at: at)
        case .stored(let stored):
            guard stored.version >= version else { return [] }
            version = stored.version
            applyStored(stored)
        }
        return changes(since: before, at: input.time)
    }

    /// The seconds left, by the engine's estimate counted down since it was made; `nil` when the
    /// engine could not tell and the progress does not either.
    ///
    /// The engine's estimate (``ExecutionStateMachine/estimatedSecondsLeft(at:)``, what
    /// `GET /executions/{id}/progress` shows) follows the DAG: each unsettled step is expected to
    /// take its `estimated_duration_seconds`, else the mean time of the steps completed so far; a
    /// step under way has left the ETA its plugin last reported (`eta_seconds`), else its
    /// expectation minus the time it has run, else its run time scaled by the progress still to
    /// make; the execution ends when the longest chain of those times does. It comes with each
    /// stored state read and with each ETA a plugin reports (`workflow_progress` events). When
    /// the engine cannot tell, the execution's own progress is extrapolated: the time it has run
    /// times (100 − progress) / progress. 0 once it has ended.
    func secondsLeft(at now: Date) -> Double? {
        if status.isFinished { return 0 }
        if let estimate {
            return max(0, Double(estimate.seconds) - max(0, now.timeIntervalSince(estimate.at)))
        }
        guard let startedAt, progress > 0, progress < 100 else { return nil }
        let elapsed = max(0, now.timeIntervalSince(startedAt))
        return min(elapsed * (100 - progress) / progress, 31_536_000)
    }

    /// The step with the DAG id `key`.
    func step(_ key: String) -> Step? {
        positions[key].map { steps[$0] }
    }

    // MARK: Events

    private mutating func applyEvent(_ type: String, _ payload: JSONValue, at: Date) {
        let stepKey = payload["step_id"]?.stringValue
        switch type {
        case "execution_started":
            advanceExecution(to: .running, at: at)
        case "step_started":
            advanceExecution(to: .running, at: at)
            let attempt = Self.whole(payload["attempt"]) ?? 0
            update(stepKey, to: .running, attempt: attempt) { step in
                step.startedAt = at
                step.endedAt = nil
                step.progress = 0
                step.error = nil
                step.retryAt = nil
                step.deadline = nil
            }
        case "step_completed":
            update(stepKey, to: .completed, attempt: nil) { step in
                step.endedAt = at
                step.progress = 100
            }
            raiseProgress(payload["progress"]?.doubleValue)
        case "step_failed":
            let status = payload["status"]?.stringValue.flatMap(StepStatus.init(rawValue:)) ?? .failed
            update(stepKey, to: status.isSettled ? status : .failed, attempt: nil) { step in
                step.endedAt = at
                step.error = payload["error"]?.stringValue.map { TerminalText.clean($0) }
            }
        case "step_skipped":
            update(stepKey, to: .skipped, attempt: nil) { step in
                step.endedAt = at
                step.error = payload["reason"]?.stringValue.map { TerminalText.clean($0) }
            }
        case "step_retrying":
            let next = Self.whole(payload["next_attempt"]) ?? 1
            let delay = Self.seconds(payload["delay_seconds"]) ?? 0
            update(stepKey, to: .retrying, attempt: max(0, next - 1)) { step in
                step.endedAt = at
                step.retryAt = at.addingTimeInterval(delay)
                step.error = payload["error"]?.stringValue.map { TerminalText.clean($0) }
            }
        case "step_awaiting_event":
            update(stepKey, to: .awaitingEvent, attempt: nil) { step in
                step.externalWorkflowID = payload["external_workflow_id"]?.stringValue.map { TerminalText.clean($0, limit: 200) }
            }
        case "workflow_progress":
            raiseProgress(payload["progress"]?.doubleValue)
            if let eta = Self.whole(payload["eta_seconds"]) { estimate = Estimate(seconds: eta, at: at) }
        case "workflow_completed":
            advanceExecution(to: .completed, at: at)
            progress = 100
        case "workflow_failed":
            advanceExecution(to: .failed, at: at)
            if error == nil { error = payload["error"]?.stringValue.map { TerminalText.clean($0) } }
        case "workflow_cancelled":
            advanceExecution(to: .cancelled, at: at)
            if error == nil { error = payload["reason"]?.stringValue.map { TerminalText.clean($0) } }
        default:
            break
        }
    }

    /// Moves the step `key` to `status` at `attempt` (its current one when `nil`), then lets
    /// `change` fill in the details; nothing happens when the step is unknown or the move would
    /// go back.
    private mutating func update(_ key: String?, to status: StepStatus, attempt: Int?, _ change: (inout Step) -> Void) {
        guard let key, let index = positions[key], steps.indices.contains(index) else { return }
        let attempt = attempt ?? steps[index].attempt
        guard steps[index].accepts(status, attempt: attempt) else { return }
        steps[index].status = status
        steps[index].attempt = attempt
        change(&steps[index])
    }

    private mutating func advanceExecution(to status: ExecutionStatus, at: Date) {
        guard !self.status.isFinished, status != .pending else { return }
        if status == .running, self.status == .running { return }
        self.status = status
        if startedAt == nil { startedAt = at }
        if status.isFinished { endedAt = endedAt ?? at }
    }

    private mutating func raiseProgress(_ value: Double?) {
        guard let value, value.isFinite else { return }
        progress = max(progress, min(100, max(0, value)))
    }

    // MARK: Stored states

    private mutating func applyStored(_ stored: Stored) {
        for state in stored.steps {
            let index: Int
            if let known = positions[state.stepID], steps.indices.contains(known) {
                index = known
            } else {
                // A step the definition did not show (it could not be read): added as it comes.
                index = steps.count
                positions[state.stepID] = index
                steps.append(Step(key: state.stepID, name: state.name, action: state.action))
            }
            guard steps[index].accepts(state.status, attempt: max(0, state.attempt)) else { continue }
            var step = steps[index]
            let retryAt = step.status == .retrying && state.status == .retrying && step.attempt == state.attempt ? step.retryAt : nil
            step.status = state.status
            step.attempt = max(0, state.attempt)
            step.startedAt = state.startedAt
            step.endedAt = state.endedAt
            step.progress = state.progress.isFinite ? min(100, max(0, state.progress)) : 0
            step.externalWorkflowID = state.externalWorkflowID.map { TerminalText.clean($0, limit: 200) }
            step.deadline = state.deadline
            step.retryAt = retryAt
            step.error = state.error.map { TerminalText.clean($0) }
            steps[index] = step
        }
        let wasFinished = status.isFinished
        if !wasFinished, stored.status != .pending {
            if status != stored.status { status = stored.status }
        }
        startedAt = stored.startedAt ?? startedAt
        if stored.status.isFinished { endedAt = stored.endedAt ?? endedAt }
        raiseProgress(stored.progress)
        if let message = stored.error { error = TerminalText.clean(message) }
        if let seconds = stored.estimatedSecondsLeft {
            estimate = Estimate(seconds: max(0, seconds), at: stored.at)
        } else if !stored.status.isFinished {
            estimate = nil
        }
    }

    // MARK: Changes

    private func changes(since before: RunProgress, at time: Date) -> [Change] {
        var changes: [Change] = []
        if before.status != status { changes.append(.execution(status, at: time)) }
        for (index, step) in steps.enumerated() {
            let earlier = before.steps.indices.contains(index) ? before.steps[index] : nil
            guard earlier?.status != step.status || earlier?.attempt != step.attempt else { continue }
            // A step going back to pending (its retry is due) is not worth a line: it starts next.
            if step.status == .pending { continue }
            changes.append(.step(step, at: time))
        }
        // The execution's end comes after its steps'.
        if let first = changes.first, case .execution(let status, _) = first, status.isFinished {
            changes.removeFirst()
            changes.append(first)
        }
        return changes
    }

    /// A whole number from 0 to 31,536,000 (a year of seconds), from a JSON number.
    private static func whole(_ value: JSONValue?) -> Int? {
        guard let number = value?.doubleValue, number.isFinite else { return nil }
        return Int(min(31_536_000, max(0, number.rounded())))
    }

    private static func seconds(_ value: JSONValue?) -> Double? {
        guard let number = value?.doubleValue, number.isFinite else { return nil }
        return min(31_536_000, max(0, number))
    }
}

extension RunProgress.Input {
    /// When it came in.
    var time: Date {
        switch self {
        case .event(_, _, _, let at): at
        case .stored(let stored): stored.at
        }
    }
}
