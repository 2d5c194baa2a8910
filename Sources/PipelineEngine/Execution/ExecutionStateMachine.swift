public import BudJSON
public import Foundation
import HeapModule
import PluginSchema

/// The rules of one execution, as a value: inputs go in, actions come out (docs/dag.md,
/// "How an execution runs"). It performs no I/O and reads no clock; every input carries the time.
///
/// One set of rules applies to every path: a step finished by `execute`, by an event, by a timeout
/// or by a timer goes through the same settlement, so conditions, `on_failure`, retries and
/// outputs behave the same whichever way a step ends.
public struct ExecutionStateMachine: Sendable {
    public let pipeline: CompiledPipeline
    public let executionID: ExecutionID
    /// The parameters, after binding (defaults applied).
    public let params: JSONObject
    public let options: EngineOptions

    public private(set) var steps: [StepState]
    public private(set) var execution: ExecutionSnapshot

    /// Unsettled dependencies of each step; a step is ready when it reaches 0.
    private var waitingOn: [Int]
    /// Ready steps not yet started, lowest index first.
    private var ready = Heap<Int>()
    /// Steps whose plugin call is in flight (they hold a `max_parallel_steps` slot).
    private var executing = 0
    /// Steps a conditional branch ruled out, with the reason.
    private var ruledOut: [Int: String] = [:]
    /// The first failure that was not tolerated.
    private var failure: (message: String, stepID: String?)?
    /// Each step's share of the progress (0…100) and their weighted sum, kept up to date as steps
    /// change. A step weighs its `estimated_duration_seconds`; steps without one weigh the mean
    /// of those given, and all weigh the same when none is.
    private var progressShares: [Double]
    private var progressTotal = 0.0
    private let weights: [Double]
    private let totalWeight: Double
    /// Which steps are settled, and how many, kept up to date as steps change.
    private var settled: [Bool]
    private var settledCount = 0
    /// The input being handled, numbered; marks which steps it changed.
    private var generation: UInt32 = 0
    private var changedIn: [UInt32]
    private var pending = Pending()
    /// The `now` and `elapsed` of the call to ``handle(_:at:elapsed:)`` in progress.
    private var transitionStart = Date(timeIntervalSince1970: 0)
    private var elapsedSinceStart: @Sendable () -> Duration = { .zero }
    /// The step transitions this machine has made since it was created or restored.
    public private(set) var transitionsTaken = StepTransitions()
    /// Bytes of JSON text of each step's stored outputs, and of the parameters and all outputs
    /// together (``StoredSizeLimits``).
    private var outputBytes: [Int]
    private var storedBytes = 0

    /// Creates an execution that has not started. `params` must already be bound
    /// (``ParameterBinding/bind(_:provided:)``).
    public init(pipeline: CompiledPipeline, executionID: ExecutionID, params: JSONObject, options: EngineOptions = EngineOptions()) {
        self.pipeline = pipeline
        self.executionID = executionID
        self.params = params
        self.options = options
        steps = pipeline.steps.map { step in
            StepState(stepID: step.id, name: step.definition.name, action: step.definition.action, sequence: step.index + 1)
        }
        execution = ExecutionSnapshot(status: .pending, progress: 0)
        waitingOn = pipeline.graph.dependencies.map(\.count)
        progressShares = Array(repeating: 0, count: pipeline.steps.count)
        let estimates = pipeline.steps.map { $0.definition.estimatedDurationSeconds.map(Double.init) }
        let declared = estimates.compactMap { $0 }
        let fallback = declared.isEmpty ? 1 : declared.reduce(0, +) / Double(declared.count)
        weights = estimates.map { $0 ?? fallback }
        totalWeight = max(weights.reduce(0, +), .leastNonzeroMagnitude)
        settled = Array(repeating: false, count: pipeline.steps.count)
        changedIn = Array(repeating: 0, count: pipeline.steps.count)
        outputBytes = Array(repeating: 0, count: pipeline.steps.count)
        storedBytes = Self.storedSize(.object(params))
    }

    /// The bytes a value takes stored (as much as a value too large or deep to store).
    private static func storedSize(_ value: JSONValue) -> Int {
        if case .fits(let bytes) = value.measure(limit: .max) { return bytes }
        return .max / 4
    }

    /// Rebuilds an execution from what the runtime last stored: one state per step of the
    /// pipeline (in any order) and the execution record. Everything else the machine keeps
    /// (ready steps, free slots, ruled-out branches, the first failure, progress shares) follows
    /// from those.
    public init(
        restoring pipeline: CompiledPipeline,
        executionID: ExecutionID,
        params: JSONObject,
        options: EngineOptions = EngineOptions(),
        steps stored: [StepState],
        execution: ExecutionSnapshot
    ) throws(ExecutionRestoreError) {
        self.init(pipeline: pipeline, executionID: executionID, params: params, options: options)
        var byID: [String: StepState] = [:]
        for state in stored {
            // Counters are small in any row the runtime wrote; a larger one was put there by hand
            // and would overflow the arithmetic done on it.
            guard (0...Self.maximumStoredCounter).contains(state.attempt), (0...Self.maximumStoredCounter).contains(state.sequence),
                state.progress.isFinite
            else { throw .implausibleValue("step '\(state.stepID)' has attempt \(state.attempt), sequence \(state.sequence)") }
            guard byID.updateValue(state, forKey: state.stepID) == nil else { throw .duplicateStep(state.stepID) }
        }
        for index in steps.indices {
            guard let state = byID.removeValue(forKey: steps[index].stepID) else { throw .missingStep(steps[index].stepID) }
            steps[index] = state
        }
        if let unknown = byID.keys.sorted().first { throw .unknownStep(unknown) }
        self.execution = execution

        executing = steps.count(where: { $0.status == .running })
        for index in steps.indices where steps[index].status == .completed {
            ruleOutBranches(of: index, outputs: steps[index].outputs ?? [:])
        }
        let untoleratedFailures = steps.indices.filter {
            (steps[$0].status == .failed || steps[$0].status == .timedOut) && !steps[$0].failureTolerated
        }
        if let first = untoleratedFailures.min(by: { (steps[$0].endedAt ?? .distantPast, $0) < (steps[$1].endedAt ?? .distantPast, $1) }) {
            failure = (steps[first].error ?? "Step failed", steps[first].stepID)
        }
        for index in steps.indices {
            waitingOn[index] = pipeline.graph.dependencies[index].count(where: { !steps[$0].status.isSettled })
            if execution.status == .running, steps[index].status == .pending, waitingOn[index] == 0 { ready.insert(index) }
        }
        for index in steps.indices {
            outputBytes[index] = steps[index].outputs.map { Self.storedSize(.object($0)) } ?? 0
            storedBytes = storedBytes.addingReportingOverflow(outputBytes[index]).partialValue
        }
        pending.changedSteps = Array(steps.indices)
        account()
        pending = Pending()
    }

    /// The largest attempt or sequence number a stored step may have.
    static let maximumStoredCounter = 1 << 31

    /// The estimated seconds until the execution ends, `nil` when it cannot be told yet.
    ///
    /// Each unsettled step is expected to take its `estimated_duration_seconds`, else the mean
    /// time of the steps completed so far. A step under way has left: the ETA its plugin last
    /// reported, else its expectation minus the time it has run, else — with progress reported but
    /// no expectation — the time it has run scaled by the progress still to make. The execution
    /// ends when the longest chain of remaining times through the DAG does, so parallel branches
    /// overlap instead of adding up.
    public func estimatedSecondsLeft(at now: Date) -> Int? {
        guard !execution.status.isFinished else { return 0 }
        let observed = steps.compactMap { step -> Double? in
            guard step.status == .completed, let start = step.startedAt, let end = step.endedAt else { return nil }
            return max(0, end.timeIntervalSince(start))
        }
        let mean = observed.isEmpty ? nil : observed.reduce(0, +) / Double(observed.count)
        var remaining: [Double] = []
        remaining.reserveCapacity(steps.count)
        for index in steps.indices {
            let step = steps[index]
            let expected = pipeline.steps[index].definition.estimatedDurationSeconds.map(Double.init) ?? mean
            switch step.status {
            case .completed, .failed, .skipped, .timedOut, .cancelled:
                remaining.append(0)
            case .running, .awaitingEvent:
                let elapsed = step.startedAt.map { max(0, now.timeIntervalSince($0)) } ?? 0
                // Each step's part is bounded, so stored values of any size give a finite answer.
                let left: Double?
                if let eta = step.etaSeconds {
                    left = Double(eta)
                } else if let expected {
                    left = expected - elapsed
                } else if step.progress > 0, step.progress < 100 {
                    left = elapsed * (100 - step.progress) / step.progress
                } else {
                    left = nil
                }
                guard let left, let bounded = DurationLimits.clamp(left) else { return nil }
                remaining.append(bounded)
            case .pending, .retrying:
                guard let expected else { return nil }
                remaining.append(expected)
            }
        }
        // Finish times in dependency order (Kahn's algorithm; the compiled graph has no cycle).
        let graph = pipeline.graph
        var unresolved = graph.dependencies.map(\.count)
        var queue = steps.indices.filter { unresolved[$0] == 0 }
        var finish = Array(repeating: 0.0, count: steps.count)
        var head = 0
        while head < queue.count {
            let index = queue[head]
            head += 1
            finish[index] = remaining[index] + (graph.dependencies[index].map { finish[$0] }.max() ?? 0)
            for dependant in graph.dependants[index] {
                unresolved[dependant] -= 1
                if unresolved[dependant] == 0 { queue.append(dependant) }
            }
        }
        return Int(exactly: (finish.max() ?? 0).rounded(.up))
    }

    /// The state of the step with `id`.
    public func step(_ id: String) -> StepState? {
        pipeline.graph.index(of: id).map { steps[$0] }
    }

    /// Reacts to `input` at time `now`.
    ///
    /// `elapsed` tells how much time has passed since `now` (it must not go backwards): the steps
    /// this call starts and settles, built-in actions and skips settled inline among them, get
    /// their own start and end instants from it, in the order they happened, and so does the
    /// execution's end. Without it every instant of the call is `now`. Deadlines and timers count
    /// from `now`.
    public mutating func handle(
        _ input: ExecutionInput, at now: Date, elapsed: @escaping @Sendable () -> Duration = { .zero }
    ) -> [ExecutionAction] {
        transitionStart = now
        elapsedSinceStart = elapsed
        pending = Pending()
        generation &+= 1
        switch input {
        case .start: start(now)
        case .stepSucceeded(let id, let attempt, let outputs):
            if let index = current(id, attempt: attempt, in: [.running], input: "result") {
                finishCall(index)
                settleCompleted(index, outputs: outputs, now: now)
            }
        case .stepFailed(let id, let attempt, let failure, let outputs):
            if let index = current(id, attempt: attempt, in: [.running], input: "failure") {
                finishCall(index)
                fail(index, failure, outputs: failure.kind == .timedOut ? steps[index].outputs ?? [:] : outputs, now: now)
            }
        case .stepAwaitingEvent(let id, let attempt, let externalID, let timeout, let outputs):
            if let index = current(id, attempt: attempt, in: [.running], input: "await") {
                finishCall(index)
                startAwaiting(index, externalID: externalID, timeoutSeconds: timeout, outputs: outputs, now: now)
            }
        case .eventCompletedStep(let id, let status, let outputs, let error):
            if let index = current(id, attempt: nil, in: [.awaitingEvent], input: "event completion") {
                pending.timers.append(.cancelTimer(awaitTimer(index)))
                let merged = (steps[index].outputs ?? [:]).merging(outputs)
                switch status {
                case .completed: settleCompleted(index, outputs: merged, now: now)
                case .failed:
                    fail(index, .retryable(error ?? "Step failed"), outputs: merged, now: now)
                case .timeout:
                    fail(index, .timedOut(error ?? "Step timed out"), outputs: merged, now: now)
                }
            }
        case .stepProgress(let id, let percent, let eta, _):
            if let index = current(id, attempt: nil, in: [.running, .awaitingEvent], input: "progress") {
                reportProgress(index, percent: percent, etaSeconds: eta, now: now)
            }
        case .timerFired(let timer): timerFired(timer, now: now)
        case .cancel(let reason):
            if execution.status.isFinished {
                pending.other.append(.ignored("cancel of a finished execution"))
            } else {
                abort(.cancelled(reason), now: now)
            }
        case .stepInterrupted(let id, let error):
            if let index = current(id, attempt: nil, in: [.pending, .running, .awaitingEvent, .retrying], input: "interruption") {
                interrupt(index, error: error, now: now)
            }
        }
        if execution.status == .running { advance(now: now) }
        updateProgress(stepID: nil, etaSeconds: nil, now: now)
        return pending.actions(steps: steps, execution: execution)
    }

    /// This moment of the transition in progress: its start plus the time elapsed since.
    private func instant() -> Date {
        transitionStart.addingTimeInterval(max(0, elapsedSinceStart() / .seconds(1)))
    }

    // MARK: Starting and scheduling

    private mutating func start(_ now: Date) {
        guard execution.status == .pending else {
            pending.other.append(.ignored("start of an execution that already started"))
            return
        }
        execution.status = .running
        execution.startedAt = now
        pending.executionChanged = true
        pending.events.append(.executionStarted)
        if let timeout = pipeline.definition.settings.timeoutSeconds {
            let deadline = now.addingTimeInterval(Double(DurationLimits.clamp(timeout)))
            pending.timers.append(.setTimer(EngineTimer(kind: .executionDeadline), at: deadline))
        }
        for index in steps.indices where steps[index].status == .pending && waitingOn[index] == 0 { ready.insert(index) }
    }

    /// Starts ready steps while slots are free; finishes the execution when nothing is left.
    private mutating func advance(now: Date) {
        let limit = pipeline.definition.settings.maxParallelSteps
        while execution.status == .running, executing < limit, let index = ready.popMin() {
            guard steps[index].status == .pending else { continue }
            begin(index, now: now)
        }
        account()
        guard execution.status == .running, settledCount == steps.count else { return }
        finish(now: now)
    }

    /// Runs a ready step: branch choice, condition, parameters, then the action.
    private mutating func begin(_ index: Int, now: Date) {
        let step = pipeline.steps[index]
        let isRetry = steps[index].attempt > 0
        if !isRetry {
            if let reason = ruledOut[index] {
                settleSkipped(index, reason: reason, blocking: false, now: now)
                return
            }
            do throws(TemplateError) {
                guard try step.condition.evaluate(in: scope(for: step)) else {
                    settleSkipped(index, reason: "Condition not met", blocking: false, now: now)
                    return
                }
            } catch {
                markStarted(index, now: now)
                fail(index, .permanent("condition: \(error)"), outputs: [:], now: now)
                return
            }
        }
        let params: JSONObject
        do {
            params = try resolveParams(step)
        } catch {
            markStarted(index, now: now)
            fail(index, .permanent("\(error)"), outputs: [:], now: now)
            return
        }
        if let refusal = Self.refusal(ofParams: params, limit: options.storedSizes.maximumStepParamsBytes) {
            markStarted(index, now: now)
            fail(index, .permanent(refusal), outputs: [:], now: now)
            return
        }
        markStarted(index, now: now)
        switch step.definition.action {
        case BuiltInActions.waitUntilType:
            switch WaitUntil.wakeTime(params, now: now) {
            case .success(let wake):
                enterAwaiting(
                    index,
                    externalID: "wait_until:\(idempotencyKey(index))",
                    outputs: WaitUntil.waitingOutputs(wake: wake, now: now),
                    until: wake,
                    timer: EngineTimer(kind: .wakeUp, stepID: step.id, attempt: steps[index].attempt),
                    now: now
                )
            case .failure(let error):
                fail(index, .permanent(error.message), outputs: [:], now: now)
            }
        case let action where BuiltInActions.types.contains(action):
            if action == "log" {
                let line = BuiltInActions.log(params)
                let message = LogLine.truncated(line.message, maximumBytes: options.storedSizes.maximumLogLineBytes)
                pending.other.append(.log(EngineLogLine(stepID: step.id, level: line.level, message: message)))
            }
            switch BuiltInActions.run(action, params: params, branches: step.branches, scope: scope(for: step)) {
            case .completed(let outputs): settleCompleted(index, outputs: outputs, now: now)
            case .failed(let message, let outputs):
                fail(index, .permanent(message), outputs: outputs, now: now)
            }
        default:
            guard step.metadata != nil else {
                fail(index, .permanent("Action '\(step.definition.action)' is not registered"), outputs: [:], now: now)
                return
            }
            executing += 1
            let timeout = step.definition.timeoutSeconds ?? step.metadata?.timeoutSeconds
            if let timeout {
                let deadline = now.addingTimeInterval(Double(DurationLimits.clamp(timeout)))
                steps[index].deadline = deadline
                pending.timers.append(.setTimer(deadlineTimer(index), at: deadline))
            }
            pending.dispatches.append(
                .dispatch(
                    StepDispatch(
                        stepID: step.id,
                        action: step.definition.action,
                        attempt: steps[index].attempt,
                        idempotencyKey: idempotencyKey(index),
                        params: params,
                        stepOutputs: outputsForDispatch(step),
                        timeoutSeconds: timeout
                    )
                )
            )
        }
    }

    private mutating func markStarted(_ index: Int, now: Date) {
        move(index, .start)
        steps[index].startedAt = instant()
        steps[index].endedAt = nil
        steps[index].error = nil
        steps[index].progress = 0
        steps[index].etaSeconds = nil
        steps[index].failureTolerated = false
        touch(index)
        pending.events.append(
            .stepStarted(
                stepID: steps[index].stepID, name: steps[index].name, sequence: steps[index].sequence, attempt: steps[index].attempt)
        )
    }

    // MARK: Results

    /// The wait lasts as long as the action asks, at most the step's own `timeout_seconds` (the
    /// pipeline author's limit); without either, the engine's default.
    private mutating func startAwaiting(_ index: Int, externalID: String, timeoutSeconds: Int?, outputs: JSONObject, now: Date) {
        let stepLimit = pipeline.steps[index].definition.timeoutSeconds
        let timeout = [timeoutSeconds, stepLimit].compactMap { $0 }.min() ?? options.defaultAwaitTimeoutSeconds
        let deadline = now.addingTimeInterval(Double(DurationLimits.clamp(timeout)))
        enterAwaiting(index, externalID: externalID, outputs: outputs, until: deadline, timer: deadlineTimer(index), now: now)
    }

    /// The step waits for an event carrying `externalID` until `until`, when `timer` fires.
    private mutating func enterAwaiting(
        _ index: Int, externalID: String, outputs: JSONObject, until: Date, timer: EngineTimer, now: Date
    ) {
        if let refusal = store(outputs, of: index) {
            fail(index, .permanent(refusal), outputs: [:], now: now)
            return
        }
        move(index, .awaitEvent)
        steps[index].externalWorkflowID = externalID
        steps[index].outputs = outputs
        steps[index].deadline = until
        touch(index)
        pending.timers.append(.setTimer(timer, at: until))
        pending.events.append(.stepAwaitingEvent(stepID: steps[index].stepID, name: steps[index].name, externalWorkflowID: externalID))
    }

    private mutating func settleCompleted(_ index: Int, outputs: JSONObject, now: Date) {
        if let refusal = store(outputs, of: index) {
            fail(index, .permanent(refusal), outputs: [:], now: now)
            return
        }
        let ended = instant()
        move(index, .complete)
        steps[index].outputs = outputs
        steps[index].endedAt = ended
        steps[index].progress = 100
        steps[index].etaSeconds = nil
        steps[index].deadline = nil
        touch(index)
        pending.events.append(
            .stepCompleted(
                stepID: steps[index].stepID,
                name: steps[index].name,
                outputs: outputs,
                durationSeconds: steps[index].startedAt.map { ended.timeIntervalSince($0) }
            )
        )
        ruleOutBranches(of: index, outputs: outputs)
        release(index, blocking: false, now: now)
    }

    /// Checks `outputs` against the stored-size limits and, when they fit, counts them as the
    /// step's; returns why they do not fit (the caller fails the step instead of storing them).
    private mutating func store(_ outputs: JSONObject, of index: Int) -> String? {
        let limits = options.storedSizes
        let bytes: Int
        switch JSONValue.object(outputs).measure(limit: limits.maximumStepOutputsBytes) {
        case .fits(let size): bytes = size
        case .tooLarge:
            return
                "the step's outputs are larger than the limit of \(limits.maximumStepOutputsBytes) bytes (BUDPIPELINE_MAX_STEP_OUTPUT_BYTES)"
        case .tooDeep:
            return "the step's outputs nest deeper than \(JSONValue.maximumNestingDepth) levels"
        }
        let total = storedBytes - outputBytes[index] + bytes
        guard total <= limits.maximumExecutionBytes else {
            return
                "the execution's parameters and outputs would take more than the limit of \(limits.maximumExecutionBytes) bytes (BUDPIPELINE_MAX_EXECUTION_BYTES)"
        }
        storedBytes = total
        outputBytes[index] = bytes
        return nil
    }

    /// After a `conditional` step chose a branch, the other branches' targets will be skipped.
    private mutating func ruleOutBranches(of index: Int, outputs: JSONObject) {
        guard let branches = pipeline.steps[index].branches, !branches.isEmpty else { return }
        let chosen = outputs["target_step"]?.stringValue
        let label = outputs["matched_label"].map(PythonFormat.str) ?? "none"
        for branch in branches {
            guard let target = branch.target, target != chosen, let targetIndex = pipeline.graph.index(of: target) else { continue }
            ruledOut[targetIndex] = "Branch condition not matched (matched: \(label))"
        }
    }

    private mutating func settleSkipped(_ index: Int, reason: String, blocking: Bool, now: Date) {
        move(index, .skip)
        steps[index].error = reason
        steps[index].endedAt = instant()
        touch(index)
        pending.events.append(.stepSkipped(stepID: steps[index].stepID, name: steps[index].name, reason: reason))
        release(index, blocking: blocking, now: now)
    }

    /// A failure of the current attempt: retried, tolerated, or failing the execution.
    private mutating func fail(_ index: Int, _ cause: StepFailure, outputs: JSONObject, now: Date) {
        let step = pipeline.steps[index]
        let timedOut = cause.kind == .timedOut
        var error = cause.message
        if let refusal = store(outputs, of: index) {
            error += " (its outputs were not kept: \(refusal))"
            _ = store([:], of: index)
            steps[index].outputs = [:]
        } else {
            steps[index].outputs = outputs
        }
        steps[index].error = error
        steps[index].endedAt = instant()
        steps[index].deadline = nil
        touch(index)
        if step.definition.onFailure == .retry, cause.allowsRetry, let settings = retrySettings(for: step),
            steps[index].attempt + 1 < settings.maxAttempts
        {
            let next = steps[index].attempt + 1
            let delay = settings.delay(beforeAttempt: next)
            move(index, .scheduleRetry)
            pending.timers.append(.setTimer(EngineTimer(kind: .retry, stepID: step.id, attempt: next), at: now.addingTimeInterval(delay)))
            pending.events.append(
                .stepRetrying(stepID: step.id, name: step.definition.name, nextAttempt: next, delaySeconds: delay, error: error))
            return
        }
        let tolerated = step.definition.onFailure == .continue
        move(index, timedOut ? .timeOut : .fail)
        steps[index].failureTolerated = tolerated
        pending.events.append(
            .stepFailed(stepID: step.id, name: step.definition.name, status: steps[index].status, error: error, tolerated: tolerated)
        )
        guard !tolerated else {
            release(index, blocking: false, now: now)
            return
        }
        if failure == nil { failure = (error, step.id) }
        if pipeline.definition.settings.failFast {
            abort(.failed, now: now)
        } else {
            release(index, blocking: true, now: now)
        }
    }

    /// A settled step unblocks its dependants, or — when it failed and the failure is not
    /// tolerated — skips them and everything after them.
    private mutating func release(_ index: Int, blocking: Bool, now: Date) {
        for dependant in pipeline.graph.dependants[index] where steps[dependant].status == .pending {
            if blocking {
                settleSkipped(dependant, reason: "Upstream step '\(steps[index].stepID)' did not succeed", blocking: true, now: now)
            } else {
                waitingOn[dependant] -= 1
                if waitingOn[dependant] == 0 { ready.insert(dependant) }
            }
        }
    }

    private mutating func reportProgress(_ index: Int, percent: Double?, etaSeconds: Int?, now: Date) {
        if let percent { steps[index].progress = min(100, max(steps[index].progress, percent)) }
        let etaSeconds = etaSeconds.map(DurationLimits.clamp)
        if let etaSeconds { steps[index].etaSeconds = etaSeconds }
        touch(index)
        // A reported ETA is the step's; the execution's follows from it and the rest of the DAG.
        let executionETA = etaSeconds.map { estimatedSecondsLeft(at: now) ?? $0 }
        updateProgress(stepID: steps[index].stepID, etaSeconds: executionETA, now: now)
    }

    // MARK: Timers

    private mutating func timerFired(_ timer: EngineTimer, now: Date) {
        guard execution.status == .running else {
            pending.other.append(.ignored("timer \(timer.key) fired after the execution ended"))
            return
        }
        if timer.kind == .executionDeadline {
            let timeout = pipeline.definition.settings.timeoutSeconds ?? 0
            failure = failure ?? ("Execution timed out after \(timeout) seconds", nil)
            abort(.timedOut, now: now)
            return
        }
        guard let stepID = timer.stepID, let index = pipeline.graph.index(of: stepID) else {
            pending.other.append(.ignored("timer \(timer.key) names no step"))
            return
        }
        switch (timer.kind, steps[index].status) {
        case (.retry, .retrying) where timer.attempt == steps[index].attempt + 1:
            steps[index].attempt += 1
            move(index, .retryDue)
            touch(index)
            ready.insert(index)
        case (.wakeUp, .awaitingEvent) where timer.attempt == steps[index].attempt:
            settleCompleted(index, outputs: WaitUntil.wokenOutputs(steps[index].outputs ?? [:], now: now), now: now)
        case (.stepDeadline, .running) where timer.attempt == steps[index].attempt:
            finishCall(index)
            abandon(index, reason: .timedOut)
            let timeout = DurationLimits.wholeSeconds((steps[index].deadline ?? now).timeIntervalSince(steps[index].startedAt ?? now))
            fail(index, .timedOut("Step timed out after \(timeout) seconds"), outputs: steps[index].outputs ?? [:], now: now)
        case (.stepDeadline, .awaitingEvent) where timer.attempt == steps[index].attempt:
            abandon(index, reason: .timedOut)
            let externalID = steps[index].externalWorkflowID ?? "unknown"
            fail(
                index, .timedOut("Step timed out waiting for event from workflow \(externalID)"), outputs: steps[index].outputs ?? [:],
                now: now)
        default:
            pending.other.append(.ignored("timer \(timer.key) found step '\(stepID)' \(steps[index].status.rawValue)"))
        }
    }

    // MARK: Ending

    private enum AbortKind {
        case failed
        case timedOut
        case cancelled(String)
    }

    /// Ends the execution before its steps are done: stops what runs, skips what waits.
    private mutating func abort(_ kind: AbortKind, now: Date) {
        let skipReason: String
        let cleanupReason: CleanupReason
        switch kind {
        case .failed:
            skipReason = "Workflow aborted"
            cleanupReason = .cancelled
        case .timedOut:
            skipReason = "Workflow aborted"
            cleanupReason = .timedOut
        case .cancelled:
            skipReason = "Execution cancelled"
            cleanupReason = .cancelled
        }
        for index in steps.indices {
            switch steps[index].status {
            case .running, .awaitingEvent:
                if steps[index].status == .running {
                    finishCall(index)
                } else {
                    pending.timers.append(.cancelTimer(awaitTimer(index)))
                }
                abandon(index, reason: cleanupReason)
                move(index, .abandon)
                steps[index].error = skipReason
                steps[index].endedAt = instant()
                touch(index)
            case .retrying:
                pending.timers.append(
                    .cancelTimer(EngineTimer(kind: .retry, stepID: steps[index].stepID, attempt: steps[index].attempt + 1)))
                move(index, .abandon)
                steps[index].error = skipReason
                steps[index].endedAt = instant()
                touch(index)
            case .pending:
                move(index, .skipUnstarted)
                steps[index].error = skipReason
                steps[index].endedAt = instant()
                touch(index)
            case .completed, .failed, .skipped, .timedOut, .cancelled:
                break
            }
        }
        ready = Heap()
        if case .cancelled(let reason) = kind {
            end(.cancelled, now: now, errorMessage: reason.isEmpty ? "Execution cancelled" : reason, stepID: nil)
            pending.events.append(.executionCancelled(reason: reason.isEmpty ? "Execution cancelled" : reason))
        } else {
            let message = failure?.message ?? "Execution failed"
            end(.failed, now: now, errorMessage: message, stepID: failure?.stepID)
            pending.events.append(.executionFailed(error: message))
        }
    }

    /// All steps settled: the execution completed, or failed if a failure was not tolerated.
    private mutating func finish(now: Date) {
        if let failure {
            end(.failed, now: now, errorMessage: failure.message, stepID: failure.stepID)
            pending.events.append(.executionFailed(error: failure.message))
            return
        }
        var stepOutputs = JSONObject()
        for step in steps where step.status == .completed { stepOutputs[step.stepID] = .object(step.outputs ?? [:]) }
        // Without declared outputs, the final outputs are every completed step's outputs by step
        // id: budapp's guardrails read this per-step map, so it is the default shape.
        var outputs = pipeline.outputs.isEmpty ? stepOutputs : JSONObject()
        let scope = fullScope()
        for output in pipeline.outputs {
            do throws(FieldTemplateError) {
                outputs[output.name] = try output.value.resolve(in: scope, path: "outputs.\(output.name)")
            } catch {
                let message = "\(error)"
                end(.failed, now: now, errorMessage: message, stepID: nil)
                pending.events.append(.executionFailed(error: message))
                return
            }
        }
        execution.outputs = outputs
        execution.progress = 100
        end(.completed, now: now, errorMessage: nil, stepID: nil)
        pending.events.append(.executionCompleted(outputs: outputs, stepOutputs: stepOutputs))
    }

    private mutating func end(_ status: ExecutionStatus, now: Date, errorMessage: String?, stepID: String?) {
        execution.status = status
        execution.endedAt = instant()
        if let errorMessage {
            var info: JSONObject = ["error": .string(errorMessage), "message": .string(errorMessage)]
            if let stepID { info["step_id"] = .string(stepID) }
            execution.errorInfo = info
        }
        pending.executionChanged = true
        if pipeline.definition.settings.timeoutSeconds != nil {
            pending.timers.append(.cancelTimer(EngineTimer(kind: .executionDeadline)))
        }
    }

    /// Fails a step the process kept dying on, whatever it was doing, without calling its plugin.
    private mutating func interrupt(_ index: Int, error: String, now: Date) {
        switch steps[index].status {
        case .running: finishCall(index)
        case .awaitingEvent: pending.timers.append(.cancelTimer(awaitTimer(index)))
        case .retrying:
            pending.timers.append(
                .cancelTimer(EngineTimer(kind: .retry, stepID: steps[index].stepID, attempt: steps[index].attempt + 1)))
        case .pending:
            // If it is in `ready`, `advance` passes over it once it has settled.
            markStarted(index, now: now)
        default: return
        }
        fail(index, .permanent(error), outputs: steps[index].outputs ?? [:], now: now)
    }

    // MARK: Helpers

    /// Moves step `index` along `transition`. A move from a status the table does not list is an
    /// engine fault: it is logged, and made all the same so that the execution can still end.
    private mutating func move(_ index: Int, _ transition: StepTransition) {
        let from = steps[index].status
        if !transition.leaves(from) {
            pending.other.append(
                .log(
                    EngineLogLine(
                        stepID: steps[index].stepID, level: "error",
                        message: "engine fault: transition \(transition.rawValue) taken from \(from.rawValue)")))
        }
        steps[index].status = transition.target
        transitionsTaken.insert(transition)
    }

    /// The step `id` when its current attempt is `attempt` (any, if `nil`) and its status one of
    /// `statuses`; otherwise the input is stale and noted as ignored.
    private mutating func current(_ id: String, attempt: Int?, in statuses: Set<StepStatus>, input: String) -> Int? {
        guard execution.status == .running else {
            pending.other.append(.ignored("\(input) for step '\(id)' after the execution ended"))
            return nil
        }
        guard let index = pipeline.graph.index(of: id) else {
            pending.other.append(.ignored("\(input) for unknown step '\(id)'"))
            return nil
        }
        guard statuses.contains(steps[index].status), attempt.map({ $0 == steps[index].attempt }) ?? true else {
            let attemptText = attempt.map { " attempt \($0)" } ?? ""
            pending.other.append(
                .ignored(
                    "\(input) for step '\(id)'\(attemptText) ignored: it is \(steps[index].status.rawValue) at attempt \(steps[index].attempt)"
                )
            )
            return nil
        }
        return index
    }

    /// The plugin call of step `index` ended (answered, timed out or abandoned): it frees its slot.
    private mutating func finishCall(_ index: Int) {
        executing -= 1
        if steps[index].deadline != nil { pending.timers.append(.cancelTimer(deadlineTimer(index))) }
    }

    private mutating func abandon(_ index: Int, reason: CleanupReason) {
        pending.dispatches.append(
            .abandon(
                StepAbandonment(
                    stepID: steps[index].stepID,
                    action: steps[index].action,
                    attempt: steps[index].attempt,
                    externalWorkflowID: steps[index].externalWorkflowID,
                    reason: reason
                )
            )
        )
    }

    private func deadlineTimer(_ index: Int) -> EngineTimer {
        EngineTimer(kind: .stepDeadline, stepID: steps[index].stepID, attempt: steps[index].attempt)
    }

    /// The timer that ends an awaiting step: its wake-up for `wait_until`, its deadline otherwise.
    private func awaitTimer(_ index: Int) -> EngineTimer {
        let kind: EngineTimer.Kind = steps[index].action == BuiltInActions.waitUntilType ? .wakeUp : .stepDeadline
        return EngineTimer(kind: kind, stepID: steps[index].stepID, attempt: steps[index].attempt)
    }

    private func idempotencyKey(_ index: Int) -> String {
        "\(executionID)/\(steps[index].stepID)/\(steps[index].attempt)"
    }

    private mutating func touch(_ index: Int) {
        guard changedIn[index] != generation else { return }
        changedIn[index] = generation
        pending.changedSteps.append(index)
    }

    /// Brings the settled count and the progress shares up to date with the steps changed so far.
    private mutating func account() {
        for index in pending.changedSteps {
            let isSettled = steps[index].status.isSettled
            if isSettled != settled[index] {
                settled[index] = isSettled
                settledCount += isSettled ? 1 : -1
            }
            let share: Double
            switch steps[index].status {
            case .completed, .failed, .skipped, .timedOut, .cancelled: share = 100
            case .running, .awaitingEvent: share = steps[index].progress
            case .pending, .retrying: share = 0
            }
            progressTotal += (share - progressShares[index]) * weights[index]
            progressShares[index] = share
        }
    }

    /// What a step's templates may read: the parameters and the steps they name.
    private func scope(for step: CompiledStep) -> TemplateScope {
        var stepValues = JSONObject()
        for index in step.readsSteps { stepValues[steps[index].stepID] = stepValue(index) }
        return TemplateScope(["params": .object(params), "steps": .object(stepValues)], limits: options.templateLimits)
    }

    private func fullScope() -> TemplateScope {
        var stepValues = JSONObject()
        for index in steps.indices { stepValues[steps[index].stepID] = stepValue(index) }
        return TemplateScope(["params": .object(params), "steps": .object(stepValues)], limits: options.templateLimits)
    }

    /// `{"outputs": {...}, "status": "COMPLETED"}`; no `outputs` key for a step that has none.
    private func stepValue(_ index: Int) -> JSONValue {
        var value: JSONObject = ["status": .string(steps[index].status.apiValue)]
        if let outputs = steps[index].outputs { value["outputs"] = .object(outputs) }
        return .object(value)
    }

    private func outputsForDispatch(_ step: CompiledStep) -> JSONObject {
        var outputs = JSONObject()
        for index in pipeline.graph.dependencies[step.index] + step.readsSteps {
            if let stepOutputs = steps[index].outputs { outputs[steps[index].stepID] = .object(stepOutputs) }
        }
        return outputs
    }

    /// Why resolved parameters cannot be stored with the step's dispatch, if they cannot.
    private static func refusal(ofParams params: JSONObject, limit: Int) -> String? {
        switch JSONValue.object(params).measure(limit: limit) {
        case .fits: nil
        case .tooLarge: "the step's parameters are larger than the limit of \(limit) bytes (BUDPIPELINE_MAX_STEP_PARAMS_BYTES)"
        case .tooDeep: "the step's parameters nest deeper than \(JSONValue.maximumNestingDepth) levels"
        }
    }

    private func resolveParams(_ step: CompiledStep) throws(FieldTemplateError) -> JSONObject {
        var params = try step.params.resolve(in: scope(for: step), path: "params").objectValue ?? [:]
        for definition in step.metadata?.params ?? [] where params[definition.name] == nil {
            if let defaultValue = definition.defaultValue { params[definition.name] = defaultValue }
        }
        return params
    }

    /// The step's retry settings: its own, else the pipeline's, else the action's, else the engine's.
    /// `nil` when a templated value does not resolve to a usable number (then the step is not retried).
    private func retrySettings(for step: CompiledStep) -> RetrySettings? {
        if let retry = step.retry {
            let scope = scope(for: step)
            guard let attempts = retry.maxAttempts.resolve(in: scope), let backoff = retry.backoffSeconds.resolve(in: scope),
                let multiplier = retry.backoffMultiplier.resolve(in: scope), let maximum = retry.maxBackoffSeconds.resolve(in: scope)
            else { return nil }
            return RetrySettings(checking: attempts, backoffSeconds: backoff, backoffMultiplier: multiplier, maxBackoffSeconds: maximum)
        }
        if let policy = pipeline.definition.settings.retryPolicy, case .number(let attempts) = policy.maxAttempts,
            case .number(let backoff) = policy.backoffSeconds, case .number(let multiplier) = policy.backoffMultiplier,
            case .number(let maximum) = policy.maxBackoffSeconds
        {
            return RetrySettings(checking: attempts, backoffSeconds: backoff, backoffMultiplier: multiplier, maxBackoffSeconds: maximum)
        }
        if let policy = step.metadata?.retryPolicy {
            return RetrySettings(
                maxAttempts: policy.maxAttempts,
                backoffSeconds: policy.initialIntervalSeconds,
                backoffMultiplier: policy.backoffMultiplier,
                maxBackoffSeconds: policy.maxIntervalSeconds
            )
        }
        return options.defaultRetry
    }

    /// Recomputes the execution's progress: the mean of the steps' shares weighted by
    /// `estimated_duration_seconds` (see `weights`), to two decimal places, where a settled step
    /// counts 100, a running or awaiting one its reported percent, a pending or retrying one 0.
    /// Stored progress never goes down; it is reported when it grew, or with an ETA.
    private mutating func updateProgress(stepID: String?, etaSeconds: Int?, now: Date) {
        account()
        guard execution.status == .running, !steps.isEmpty else { return }
        let percent = min(100, (progressTotal / totalWeight * 100).rounded() / 100)
        guard percent > execution.progress || etaSeconds != nil else { return }
        execution.progress = max(execution.progress, percent)
        pending.executionChanged = true
        pending.events.append(.progress(percent: execution.progress, etaSeconds: etaSeconds, stepID: stepID))
    }
}

extension CompiledNumber {
    func resolve(in scope: TemplateScope) -> Double? {
        switch self {
        case .number(let number): return number
        case .template(let template, _):
            guard let value = try? template.evaluate(in: scope) else { return nil }
            return value.doubleValue ?? value.stringValue.flatMap { Double($0.trimmingWhitespace()) }
        }
    }
}

/// Why stored state does not fit the pipeline it claims to be an execution of.
public enum ExecutionRestoreError: Error, Sendable, Equatable, CustomStringConvertible {
    case missingStep(String)
    case unknownStep(String)
    case duplicateStep(String)
    case implausibleValue(String)

    public var description: String {
        switch self {
        case .missingStep(let id): "no stored state for step '\(id)'"
        case .unknownStep(let id): "stored state for step '\(id)', which the pipeline does not have"
        case .duplicateStep(let id): "two stored states for step '\(id)'"
        case .implausibleValue(let what): "a stored value is out of range: \(what)"
        }
    }
}

/// The actions one input produced, gathered by kind and put in the order the runtime applies them.
private struct Pending {
    /// Changed steps, each once, in the order they first changed.
    var changedSteps: [Int] = []
    var executionChanged = false
    var timers: [ExecutionAction] = []
    var events: [EngineEvent] = []
    var other: [ExecutionAction] = []
    var dispatches: [ExecutionAction] = []

    /// State changes first, then timers, events, log lines and notes, then dispatches and abandonments.
    func actions(steps: [StepState], execution: ExecutionSnapshot) -> [ExecutionAction] {
        var actions = changedSteps.sorted().map { ExecutionAction.stepChanged(steps[$0]) }
        if executionChanged { actions.append(.executionChanged(execution)) }
        return actions + timers + events.map(ExecutionAction.emit) + other + dispatches
    }
}
