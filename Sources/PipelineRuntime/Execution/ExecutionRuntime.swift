import BudJSON
public import BudPipelineHost
public import CoreMetrics
public import Foundation
public import Logging
public import PipelineEngine
import PluginSchema
import Scheduling
public import Storage
import Synchronization
import Telemetry
public import Tracing
import WorkMarks

/// Runs executions against the store: every input to an execution becomes one transaction (the
/// step rows, the execution row with its version, timers, progress events and outbox events
/// together), and what the transition asks for — plugin calls, cleanups, timers — happens only
/// after it is committed.
///
/// The process keeps no state a restart would lose. Inputs of one execution are applied in order
/// (several waiting inputs go into one transaction); different executions proceed in parallel.
/// Another process may change the same execution: the version check turns that into a conflict,
/// after which the execution is read again and the inputs re-applied.
public final class ExecutionRuntime: Sendable {
    public let store: PipelineStore
    public let plugins: PluginHost
    public let configuration: RuntimeConfiguration
    /// Built-in actions and those of the loaded plugins.
    public let catalog: RuntimeActionCatalog
    let logger: Logger
    let timers = LocalTimerQueue()
    /// Wakes the schedule service when a schedule changed here.
    let scheduleAlarm = Alarm()
    /// Wakes the publisher when a transition here wrote outbox events.
    let publishAlarm = Alarm()
    /// Wakes the lease service when another process says claims ran out.
    let leaseAlarm = Alarm()
    /// What this process and the others sharing its database tell each other.
    let cluster: ClusterRelay
    /// Live events of this process's executions, for streams; without Dapr, notifications too.
    public let eventBus = EventBus()
    let calls: StepCalls
    /// What the runtime records (nothing, with the default no-op factory).
    let metrics: RuntimeMetrics
    /// The spans the runtime makes (none without a tracer).
    public let tracing: ExecutionTracing
    /// The work the runtime starts by itself, run by ``RuntimeLifecycleService``.
    let tasks = RuntimeTasks()
    /// The first count of interruptions (see ``countInterruptionsAtStart()``).
    let startupCount = Mutex<Task<Int, Never>?>(nil)

    private struct Mailbox {
        var inputs: [QueuedInput] = []
        var draining = false
        var live: LiveExecution?
    }

    private struct QueuedInput {
        let input: RuntimeInput
        /// Told once the input's batch is stored: whether the engine took the input.
        let completion: (@Sendable (Result<Bool, any Error>) -> Void)?
    }

    private struct State {
        var mailboxes: [ExecutionID: Mailbox] = [:]
        /// Alarms of the tasks waiting for an execution to finish, rung when it does.
        var finishWaiters: [ExecutionID: [UInt64: Alarm<ContinuousClock>]] = [:]
        var lastFinishWaiter: UInt64 = 0
        var stopping = false
        var activeDrains = 0
        var idleWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())
    private let statistics = Mutex(RuntimeStatistics())

    /// `metrics` receives what the runtime records (see ``MetricCatalog``); by default nothing is.
    /// `tracer` makes the executions' spans (see ``ExecutionTracing``); by default none are made.
    public init(
        store: PipelineStore, plugins: PluginHost, configuration: RuntimeConfiguration, logger: Logger,
        metrics: any MetricsFactory = NOOPMetricsHandler.instance, tracer: (any Tracer)? = nil
    ) {
        self.store = store
        self.plugins = plugins
        self.configuration = configuration
        self.logger = logger
        self.catalog = RuntimeActionCatalog(plugins: plugins)
        self.cluster = ClusterRelay(workerID: configuration.workerID)
        let recorder = RuntimeMetrics(factory: metrics)
        self.metrics = recorder
        let tracing = ExecutionTracing(tracer: tracer)
        self.tracing = tracing
        self.calls = StepCalls(plugins: plugins, tasks: tasks, logger: logger, metrics: recorder, tracing: tracing)
    }

    /// Executions held in memory and the inputs waiting for them.
    var mailboxCounts: (executions: Int, inputs: Int) {
        state.withLock { state in
            (state.mailboxes.count, state.mailboxes.values.reduce(0) { $0 + $1.inputs.count })
        }
    }

    // MARK: Starting and steering executions

    /// Validates a DAG and its parameters, stores a new execution and starts it. Returns at once;
    /// the execution runs in the background: in this process when `runHere` (the default), else
    /// in whichever process sharing the database picks it up first.
    ///
    /// With tracing on, an `execution.start` span covers this, and the execution's later spans
    /// descend from it; its parent is the request's trace context, else one derived from the
    /// execution id.
    public func startExecution(_ request: ExecutionRequest, runHere: Bool = true) async throws -> ExecutionRecord {
        guard tracing.enabled else { return try await start(request, runHere: runHere) }
        var request = request
        let executionID = request.executionID ?? .generate()
        request.executionID = executionID
        let span = tracing.startSpan("execution.start", parent: request.traceParent ?? .derived(from: executionID)) { attributes in
            attributes["budpipeline.execution.id"] = executionID.rawValue
            if let pipelineID = request.pipelineID { attributes["budpipeline.pipeline.id"] = pipelineID.rawValue }
            attributes["budpipeline.execution.initiator"] = request.initiator
        }
        request.traceParent = tracing.traceParent(of: span, else: request.traceParent)
        do {
            let record = try await start(request, runHere: runHere)
            span?.end()
            return record
        } catch {
            span?.recordError(error)
            span?.end(failure: "\(error)")
            throw error
        }
    }

    private func start(_ request: ExecutionRequest, runHere: Bool) async throws -> ExecutionRecord {
        guard !isStopping else { throw RuntimeError.shuttingDown }
        let prepared = try ExecutionPreparation.prepare(request, catalog: catalog, options: configuration.engineOptions)
        // A saved pipeline's literal parameters were checked by their plugins when it was saved;
        // an ephemeral DAG's are checked now. Templated ones are checked as each step runs.
        if request.pipelineID == nil {
            let errors = await pluginParameterErrors(in: prepared.machine.pipeline)
            if !errors.isEmpty {
                throw ExecutionStartError.invalidPipeline(ValidationReport(errors: errors, warnings: [], stepCount: 0))
            }
        }
        let now = Date()
        var record = prepared.record
        record.createdAt = now
        record.updatedAt = now
        let steps = prepared.machine.steps.map { state in
            StepRecord(id: UUIDText.random(), executionID: record.id, state: state, createdAt: now, updatedAt: now)
        }
        guard runHere else {
            // Whichever process fires the start timer runs the first steps: all are told at once.
            try await store.executions.insert(
                NewExecution(
                    record: record, steps: steps, callbackTopics: request.callbackTopics,
                    timers: [.set(key: RuntimeTimerKey.start, dueAt: now, claimedBy: nil, claimedUntil: nil)]))
            cluster.broadcast(.wake)
            return record
        }
        // Started here: the first transition is planned before anything is stored and stored with
        // the execution, in one transaction — a new execution costs one commit, and an execution of
        // built-in steps only is stored finished. A crash after the commit leaves what any
        // transition leaves (leases, timers), taken over as usual.
        var live = LiveExecution(
            machine: prepared.machine,
            version: record.version,
            eventSequence: 0,
            pipelineID: record.pipelineID,
            ownerID: record.userID,
            stepRowIDs: Dictionary(steps.map { ($0.state.stepID, $0.id) }, uniquingKeysWith: { first, _ in first }),
            publishes: publishes(callbackTopics: request.callbackTopics, subscriberIDs: record.subscriberIDs),
            traceParent: LiveExecution.traceParent(of: record)
        )
        let inputs = [RuntimeInput.engine(.start)]
        let plan = WorkMarks.during(Self.transitionMark(record.id, inputs)) {
            live.plan(inputs, now: now, settings: planSettings)
        }
        // Its mailbox is taken before the insert, as a drain takes it: inputs that name the
        // execution as soon as it is stored (a plugin result, an event) wait until what follows
        // the first transition is done, and shutdown waits for it.
        guard reserveMailbox(record.id) else { throw RuntimeError.shuttingDown }
        let writeStarted = ContinuousClock.now
        do {
            try await store.executions.insert(
                NewExecution(record: record, steps: steps, callbackTopics: request.callbackTopics), startedBy: plan.transition)
        } catch {
            // The id is new: when a row with it exists, the insert was stored though its answer
            // was lost, and the execution goes on as if the commit had answered.
            let duplicate = (error as? DatabaseError)?.kind == .uniqueViolation
            let stored = duplicate ? nil : (try? await store.executions.find(id: record.id)).flatMap { $0 }
            guard stored != nil else {
                abandonDrain(record.id)
                throw error
            }
            logger.debug("a new execution whose commit reported an error was stored", metadata: ["execution_id": "\(record.id)"])
        }
        let writeTime = ContinuousClock.now - writeStarted
        live.committed(plan)
        statistics.withLock { $0.recordTransition(inputs: inputs.count, plan: plan, writeTime: writeTime) }
        metrics.recordCommitted(plan, writeTime: writeTime, actionLabel: actionLabel)
        WorkMarks.during(Self.transitionMark(record.id, inputs)) { perform(plan, executionID: record.id) }
        releaseMailbox(record.id, live: live)
        return record
    }

    /// Takes a new execution's mailbox for its first transition, as ``drain(_:)`` does; false when
    /// the runtime is stopping.
    private func reserveMailbox(_ executionID: ExecutionID) -> Bool {
        state.withLock { state in
            guard !state.stopping else { return false }
            state.mailboxes[executionID, default: Mailbox()].draining = true
            state.activeDrains += 1
            return true
        }
    }

    /// Hands a mailbox taken by ``reserveMailbox(_:)`` back with the execution as stored: a drain
    /// applies the inputs that came meanwhile, else the mailbox keeps `live` for the next input.
    private func releaseMailbox(_ executionID: ExecutionID, live: LiveExecution) {
        let drainAgain = state.withLock { state -> Bool in
            guard var mailbox = state.mailboxes[executionID] else { return false }
            if !live.isFinished { mailbox.live = live }
            guard mailbox.inputs.isEmpty else {
                state.mailboxes[executionID] = mailbox
                return true
            }
            mailbox.draining = false
            state.mailboxes[executionID] = live.isFinished ? nil : mailbox
            state.activeDrains -= 1
            return false
        }
        if drainAgain {
            if !tasks.start({ await self.drain(executionID) }) { abandonDrain(executionID) }
        } else {
            notifyIdleIfDone()
        }
    }

    /// Starts the saved pipeline `pipelineID` with the request's parameters and options; the
    /// request's DAG, pipeline id and name are taken from the stored pipeline.
    public func startSavedPipeline(_ pipelineID: PipelineID, _ request: ExecutionRequest) async throws -> ExecutionRecord {
        guard let pipeline = try await store.definitions.find(id: pipelineID),
            request.requestingUser == nil || pipeline.systemOwned || pipeline.userID == request.requestingUser
        else { throw ExecutionStartError.pipelineNotFound(pipelineID) }
        guard pipeline.status != .draft, pipeline.stepCount > 0 else { throw ExecutionStartError.pipelineIsDraft(pipeline.id) }
        var request = request
        request.dag = pipeline.dag
        request.pipelineID = pipeline.id
        request.pipelineName = pipeline.name
        return try await startExecution(request)
    }

    /// Tells the schedule service that schedules changed, so that it reconsiders when to fire
    /// next without waiting for its poll.
    public func schedulesChanged() {
        scheduleAlarm.wake()
    }

    /// Cancels a running execution: running and awaiting steps are abandoned (their plugins get
    /// `cleanup`), waiting ones skipped. Returns once the cancellation is stored.
    public func cancel(executionID: ExecutionID, reason: String = "Execution cancelled") async throws {
        try await apply(.engine(.cancel(reason: reason)), to: executionID)
    }

    /// Hands an engine input to an execution (a plugin result, a progress report, an event) and
    /// returns once it is stored: `true` when the engine took it, `false` when it was stale and
    /// changed nothing (the step had moved on, say completed by an input that came first, or the
    /// execution had ended), as decided on the execution as stored.
    @discardableResult
    public func apply(_ input: ExecutionInput, to executionID: ExecutionID) async throws -> Bool {
        try await apply(.engine(input), to: executionID)
    }

    /// Waits until the execution has finished (here or in another process) and returns it.
    public func waitUntilFinished(executionID: ExecutionID, timeout: Duration = .seconds(3600)) async throws -> ExecutionRecord {
        let deadline = ContinuousClock.now + timeout
        while true {
            try Task.checkCancellation()
            guard let record = try await store.executions.find(id: executionID) else { throw RuntimeError.executionNotFound(executionID) }
            if record.status.isFinished { return record }
            // Shutting down, this process finishes nothing more: the record as it stands.
            guard ContinuousClock.now < deadline, !isStopping else { return record }
            await waitForFinish(executionID, atMost: .milliseconds(500))
        }
    }

    /// The estimated seconds until a stored execution ends (see
    /// ``ExecutionStateMachine/estimatedSecondsLeft(at:)``); `nil` when it cannot be told.
    public func estimatedSecondsLeft(_ execution: ExecutionRecord, steps: [StepRecord], at now: Date = Date()) -> Int? {
        let live = try? LiveExecution.restore(
            execution: execution, steps: steps, publishes: false, catalog: catalog, options: configuration.engineOptions)
        return live?.machine.estimatedSecondsLeft(at: now)
    }

    /// Counters since the runtime started.
    public var statisticsSnapshot: RuntimeStatistics { statistics.withLock { $0 } }

    // MARK: Inputs

    @discardableResult
    func apply(_ input: RuntimeInput, to executionID: ExecutionID) async throws -> Bool {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Bool, any Error>) in
            submit(input, to: executionID) { continuation.resume(with: $0) }
        }
    }

    /// Queues an input for an execution; the execution's drain applies it.
    func submit(_ input: RuntimeInput, to executionID: ExecutionID, completion: (@Sendable (Result<Bool, any Error>) -> Void)? = nil) {
        let startDrain = state.withLock { state -> Bool? in
            guard !state.stopping else { return nil }
            state.mailboxes[executionID, default: Mailbox()].inputs.append(QueuedInput(input: input, completion: completion))
            guard state.mailboxes[executionID]?.draining == false else { return false }
            state.mailboxes[executionID]?.draining = true
            state.activeDrains += 1
            return true
        }
        switch startDrain {
        case nil: completion?(.failure(RuntimeError.shuttingDown))
        case true?:
            if !tasks.start({ await self.drain(executionID) }) { abandonDrain(executionID) }
        case false?: break
        }
    }

    /// Fails the queued inputs of an execution whose drain could not start (the runtime's tasks
    /// ended), so that nobody waits for them.
    private func abandonDrain(_ executionID: ExecutionID) {
        let inputs = state.withLock { state -> [QueuedInput] in
            state.activeDrains -= 1
            defer { state.mailboxes[executionID] = nil }
            return state.mailboxes[executionID]?.inputs ?? []
        }
        for queued in inputs { queued.completion?(.failure(RuntimeError.shuttingDown)) }
        notifyIdleIfDone()
    }

    private var isStopping: Bool { state.withLock { $0.stopping } }

    /// Applies the execution's queued inputs, a batch per transaction, until none are left.
    private func drain(_ executionID: ExecutionID) async {
        while true {
            let limit = configuration.maximumInputsPerTransition
            let batch = state.withLock { state -> (inputs: [QueuedInput], live: LiveExecution?)? in
                guard var mailbox = state.mailboxes[executionID] else { return nil }
                guard !mailbox.inputs.isEmpty else {
                    mailbox.draining = false
                    // Keep the execution in memory only while it can still change.
                    if let live = mailbox.live, !live.isFinished {
                        state.mailboxes[executionID] = mailbox
                    } else {
                        state.mailboxes[executionID] = nil
                    }
                    state.activeDrains -= 1
                    return nil
                }
                let inputs = Array(mailbox.inputs.prefix(limit))
                mailbox.inputs.removeFirst(inputs.count)
                let live = mailbox.live
                mailbox.live = nil
                state.mailboxes[executionID] = mailbox
                return (inputs, live)
            }
            guard var batch else {
                notifyIdleIfDone()
                return
            }
            // Moved, not copied: the machine is then uniquely referenced and changes in place.
            var live = batch.live
            batch.live = nil
            let outcome = await process(batch.inputs.map(\.input), live: &live, executionID: executionID)
            state.withLock { [live] in $0.mailboxes[executionID]?.live = live }
            for (position, queued) in batch.inputs.enumerated() { queued.completion?(outcome.map { $0[position] }) }
        }
    }

    /// Applies one batch, reloading and retrying after conflicts and transient failures. Leaves in
    /// `live` the execution as now stored (`nil` to read it again next time) and returns the
    /// batch's outcome: for each input of `batch`, whether the engine took it in the transition
    /// that was stored (a stale input, one dropped after a conflict, or every input of a
    /// quarantined execution, was not).
    ///
    /// The plan changes the machine in place; when its transaction fails, the changed machine is
    /// dropped and the execution read again, so memory never runs ahead of the store.
    private func process(_ batch: [RuntimeInput], live: inout LiveExecution?, executionID: ExecutionID) async -> Result<[Bool], any Error> {
        // Each input with its place in `batch`; the ones loading adds have none.
        var inputs: [PlacedInput] = batch.enumerated().map { PlacedInput(position: $0.offset, input: $0.element) }
        let noneTaken = [Bool](repeating: false, count: batch.count)
        var attempt = 0
        // A plan whose commit failed without a conflict: it may have been stored all the same
        // (the connection failed after the commit, before its answer came).
        var unacknowledged: TransitionPlan?
        while true {
            attempt += 1
            var attempted: TransitionPlan?
            do {
                if live == nil {
                    switch try await load(executionID, for: inputs.map(\.input)) {
                    case nil:
                        return .failure(RuntimeError.executionNotFound(executionID))
                    case .quarantine(let execution, let topics, let reason)?:
                        await quarantine(execution, callbackTopics: topics, reason: reason)
                        return .success(noneTaken)
                    case .live(let loaded, let interrupted, let updatedAt)?:
                        if let plan = unacknowledged, Self.stored(plan.transition, asOf: loaded, updatedAt: updatedAt) {
                            // It was: do what follows a commit, once, and read the execution
                            // again for the next batch (with the inputs loading just added).
                            logger.debug(
                                "a transition whose commit reported an error was stored", metadata: ["execution_id": "\(executionID)"])
                            metrics.recordCommitted(plan, writeTime: nil, actionLabel: actionLabel)
                            WorkMarks.during(Self.transitionMark(executionID, [])) { perform(plan, executionID: executionID) }
                            return .success(Self.taken(by: plan, of: inputs, count: batch.count))
                        }
                        unacknowledged = nil
                        live = loaded
                        inputs = interrupted.map { PlacedInput(position: nil, input: $0) } + inputs
                    }
                }
                guard var current = live else { continue }
                live = nil
                let now = Date()
                let applied = inputs.map(\.input)
                let plan = WorkMarks.during(Self.transitionMark(executionID, applied)) {
                    injectFaultIfAsked(applied)
                    return current.plan(applied, now: now, settings: planSettings)
                }
                let writeStarted = ContinuousClock.now
                attempted = plan
                try await store.executions.apply(plan.transition)
                let writeTime = ContinuousClock.now - writeStarted
                current.committed(plan)
                statistics.withLock { $0.recordTransition(inputs: inputs.count, plan: plan, writeTime: writeTime) }
                metrics.recordCommitted(plan, writeTime: writeTime, actionLabel: actionLabel)
                WorkMarks.during(Self.transitionMark(executionID, applied)) { perform(plan, executionID: executionID) }
                live = current.isFinished ? nil : current
                return .success(Self.taken(by: plan, of: inputs, count: batch.count))
            } catch let conflict as DatabaseError where conflict.kind == .conflict {
                statistics.withLock { $0.conflicts += 1 }
                if metrics.enabled { metrics.transitionConflicts.increment() }
                logger.debug(
                    "transition conflicted; reading the execution again",
                    metadata: ["execution_id": "\(executionID)", "reason": "\(conflict.message)"])
                live = nil
                inputs = await inputsStillCurrent(inputs)
                if inputs.isEmpty { return .success(noneTaken) }
                if attempt >= 20 { return .failure(conflict) }
            } catch let error as RuntimeError {
                logger.error("execution cannot continue", metadata: ["execution_id": "\(executionID)", "error": "\(error)"])
                return .failure(error)
            } catch {
                live = nil
                unacknowledged = attempted ?? unacknowledged
                guard attempt < 8, !isStopping else {
                    logger.error(
                        "giving up on a transition; work left running is taken over when its claim expires",
                        metadata: ["execution_id": "\(executionID)", "error": "\(error)"])
                    return .failure(error)
                }
                logger.warning("transition failed; retrying", metadata: ["execution_id": "\(executionID)", "error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(min(4000, 50 << attempt)))
            }
        }
    }

    /// For each of a batch's `count` inputs, whether `plan` (made from `inputs`) took it.
    private static func taken(by plan: TransitionPlan, of inputs: [PlacedInput], count: Int) -> [Bool] {
        var taken = [Bool](repeating: false, count: count)
        for (input, took) in zip(inputs, plan.taken) {
            if let position = input.position, taken.indices.contains(position) { taken[position] = took }
        }
        return taken
    }

    /// Whether `transition` is the last one stored for `loaded`: the version it moved to, the event
    /// number it reached and the time it wrote (to the microsecond) all match. Another transition
    /// matching all three would have to be planned at the same microsecond from the same version.
    private static func stored(_ transition: ExecutionTransition, asOf loaded: LiveExecution, updatedAt: Date) -> Bool {
        loaded.version == transition.expectedVersion &+ 1 && loaded.eventSequence == transition.eventSequence
            && SQLTimestamp.format(updatedAt) == SQLTimestamp.format(transition.now)
    }

    /// An input of a batch and its place there (`nil`: not one of the batch's).
    private struct PlacedInput {
        var position: Int?
        var input: RuntimeInput
    }

    /// Drops fired timers that were moved or removed since they fired.
    private func inputsStillCurrent(_ inputs: [PlacedInput]) async -> [PlacedInput] {
        var current: [PlacedInput] = []
        for input in inputs {
            guard case .timer(let timer) = input.input else {
                current.append(input)
                continue
            }
            let due = try? await store.timers.due(executionID: timer.executionID, key: timer.key)
            if let due, SQLTimestamp.format(due) == SQLTimestamp.format(timer.dueAt) { current.append(input) }
        }
        return current
    }

    private enum Loaded {
        /// The execution, inputs that fail its steps the process kept dying on, and when its
        /// last transition was stored.
        case live(LiveExecution, interrupted: [RuntimeInput], updatedAt: Date)
        /// The execution cannot go on without risking the process again (or at all).
        case quarantine(ExecutionRecord, callbackTopics: [String], reason: String)
    }

    /// Reads an execution from the store, checking first how often processes died working on it
    /// (see ``countInterruptions()``).
    private func load(_ executionID: ExecutionID, for inputs: [RuntimeInput]) async throws -> Loaded? {
        guard let stored = try await store.executions.findForResuming(id: executionID) else { return nil }
        statistics.withLock { $0.loads += 1 }
        let execution = stored.execution
        let limit = configuration.interruptionLimit
        let unfinished = !execution.status.isFinished
        if unfinished, execution.interruptions >= limit {
            return .quarantine(
                execution, callbackTopics: stored.callbackTopics,
                reason: "the server process died \(execution.interruptions) times while working on this execution; it was stopped")
        }
        let interrupted = stored.steps.filter { unfinished && $0.interruptions >= limit && !$0.state.status.isSettled }
        if let step = interrupted.first(where: { $0.interruptions > limit }) {
            return .quarantine(
                execution, callbackTopics: stored.callbackTopics,
                reason: "the server process died while running step '\(step.state.stepID)' \(step.interruptions) times, the last time "
                    + "while failing it; the execution was stopped")
        }
        let restored = WorkMarks.during(Self.transitionMark(executionID, inputs)) {
            Result { () throws(RuntimeError) in
                try LiveExecution.restore(
                    execution: execution, steps: stored.steps,
                    publishes: publishes(callbackTopics: stored.callbackTopics, subscriberIDs: execution.subscriberIDs),
                    catalog: catalog, options: configuration.engineOptions)
            }
        }
        switch restored {
        case .success(let live):
            let failures = interrupted.map { step in
                RuntimeInput.engine(
                    .stepInterrupted(
                        stepID: step.state.stepID, error: interruptionMessage(count: step.interruptions, action: step.state.action)))
            }
            return .live(live, interrupted: failures, updatedAt: execution.updatedAt)
        case .failure(.unrecoverable(let message)) where unfinished:
            return .quarantine(
                execution, callbackTopics: stored.callbackTopics, reason: "the execution cannot continue: \(message)")
        case .failure(let error):
            throw error
        }
    }

    /// The work mark of a transition of `executionID` applying `inputs`.
    private static func transitionMark(_ executionID: ExecutionID, _ inputs: [RuntimeInput]) -> WorkMark {
        var steps: [String] = []
        for input in inputs { if let step = input.stepID, !steps.contains(step) { steps.append(step) } }
        return WorkMark(kind: .transition, executionID: executionID.rawValue, stepIDs: steps)
    }

    private var planSettings: PlanSettings {
        PlanSettings(
            workerID: configuration.workerID,
            leaseSeconds: configuration.leaseDuration.seconds,
            timerClaimGrace: configuration.timerClaimGrace.seconds
        )
    }

    // MARK: After a commit

    private func perform(_ plan: TransitionPlan, executionID: ExecutionID) {
        for note in plan.notes { logger.debug("input ignored", metadata: ["execution_id": "\(executionID)", "note": "\(note)"]) }
        if logger.logLevel <= .debug {
            for step in plan.stepOutcomes {
                var metadata: Logger.Metadata = [
                    "execution_id": "\(executionID)", "step_id": "\(step.stepID)", "action": "\(step.action)",
                    "outcome": "\(step.outcome.rawValue)", "attempt": "\(step.attempt)",
                ]
                if let seconds = step.seconds { metadata["duration_seconds"] = "\(seconds)" }
                logger.debug("step transition", metadata: metadata)
            }
        }
        for line in plan.logLines {
            let level: Logger.Level =
                switch line.level {
                case "debug": .debug
                case "warning": .warning
                case "error": .error
                default: .info
                }
            logger.log(level: level, "\(line.message)", metadata: ["execution_id": "\(executionID)", "step_id": "\(line.stepID)"])
        }
        if plan.finished != nil {
            timers.removeAll(executionID: executionID)
        } else {
            timers.apply(plan.timerEffects, executionID: executionID)
        }
        publishLive(plan.liveEvents, of: executionID, version: plan.transition.expectedVersion &+ 1)
        if !plan.transition.outbox.isEmpty { publishAlarm.wake() }
        if tracing.enabled { recordStepSpans(plan, executionID: executionID) }
        for call in plan.calls { startCall(call) }
        for abandonment in plan.abandonments { calls.cleanup(abandonment, executionID: executionID) }
        for workflowID in plan.awaitedWorkflowIDs { tasks.start { await self.deliverParkedEvents(for: workflowID) } }
        if let status = plan.finished {
            logger.info("execution finished", metadata: ["execution_id": "\(executionID)", "status": "\(status.rawValue)"])
            notifyFinished(executionID)
        }
    }

    /// One span per step attempt that `plan` ended, from its start to the transition that stored
    /// its end, in whichever process that was.
    private func recordStepSpans(_ plan: TransitionPlan, executionID: ExecutionID) {
        let ended = plan.transition.now
        for step in plan.stepOutcomes where step.outcome.endsAttempt {
            let started = step.seconds.map { ended.addingTimeInterval(-max(0, $0)) } ?? ended
            let span = tracing.startSpan("step", parent: plan.traceParent, at: started) { attributes in
                attributes["budpipeline.execution.id"] = executionID.rawValue
                attributes["budpipeline.step.id"] = step.stepID
                attributes["budpipeline.step.action"] = step.action
                attributes["budpipeline.step.attempt"] = step.attempt
                attributes["budpipeline.step.outcome"] = step.outcome.rawValue
            }
            let failed = step.outcome == .failed || step.outcome == .timedOut || step.outcome == .retrying
            span?.end(failure: failed ? "step \(step.outcome.rawValue)" : nil, at: ended)
        }
    }

    /// Whether an execution with these options has topics to publish to (else its transitions
    /// write nothing to the outbox).
    func publishes(callbackTopics: [String], subscriberIDs: String?) -> Bool {
        NotificationAudience.mayHaveTopics(callbackTopics: callbackTopics, subscriberIDs: subscriberIDs)
    }

    /// Hands a committed transition's events, without secrets, to this process's live streams and
    /// to the processes that stream the execution; `version` is the execution's version after it.
    func publishLive(_ events: [OutboxEvent], of executionID: ExecutionID, version: Int?) {
        let elsewhere = cluster.isWatchedElsewhere(executionID)
        guard elsewhere || eventBus.subscriberCount > 0 else { return }
        let shown = events.map { (eventType: $0.eventType, payload: configuration.secretKeys.masked($0.payload)) }
        for event in shown {
            eventBus.publish(
                EventBus.Message(topic: nil, executionID: executionID, eventType: event.eventType, payload: event.payload, version: version)
            )
        }
        if elsewhere { cluster.forward(shown, of: executionID, version: version) }
    }

    /// A live stream of `executionID` opens in this process: the other processes sharing the
    /// database forward the execution's events to this one's bus until ``unfollow(_:)``. Returns
    /// once they have been told (at most a second): what they commit from then on reaches the bus,
    /// so an execution read after it misses nothing.
    public func follow(_ executionID: ExecutionID) async {
        guard let told = cluster.watch(executionID) else { return }
        await told.sleep(for: .seconds(1))
    }

    /// Whether other processes may be running this one's executions: it is in a group on its
    /// database (see ``ClusterService``).
    public var sharesDatabase: Bool { cluster.isJoined }

    /// A live stream opened with ``follow(_:)`` ended.
    public func unfollow(_ executionID: ExecutionID) {
        cluster.unwatch(executionID)
    }

    /// Has this process's loops look in the store now for work any process may take (another
    /// process said some is waiting): due timers, expired step claims, schedules, events to publish.
    func lookForSharedWork() {
        cluster.pollTimersNow.store(true, ordering: .releasing)
        timers.alarm.wake()
        cluster.sweepLeasesNow.store(true, ordering: .releasing)
        leaseAlarm.wake()
        scheduleAlarm.wake()
        publishAlarm.wake()
    }

    /// Runs one step attempt on the plugin pool and feeds its result back as an input.
    func startCall(_ call: StepCall) {
        let started = calls.start(call) { [self] input in
            submit(.engine(input), to: call.executionID)
        } progress: { [self] input in
            submit(.engine(input), to: call.executionID)
        }
        guard !started else { return }
        // Shutting down: hand the step to whichever process claims it next (or, when even that
        // cannot start, let its claim expire).
        tasks.start { [store, configuration] in
            try? await store.leases.release(owner: configuration.workerID, executionID: call.executionID, stepID: call.stepID, now: Date())
        }
    }

    // MARK: Waiting

    private func waitForFinish(_ executionID: ExecutionID, atMost limit: Duration) async {
        let alarm = Alarm()
        let id = state.withLock { state -> UInt64? in
            guard !state.stopping else { return nil }
            state.lastFinishWaiter &+= 1
            state.finishWaiters[executionID, default: [:]][state.lastFinishWaiter] = alarm
            return state.lastFinishWaiter
        }
        guard let id else { return }
        await alarm.sleep(for: limit)
        state.withLock { state in
            state.finishWaiters[executionID]?[id] = nil
            if state.finishWaiters[executionID]?.isEmpty == true { state.finishWaiters[executionID] = nil }
        }
    }

    private func notifyFinished(_ executionID: ExecutionID) {
        let waiters = state.withLock { $0.finishWaiters.removeValue(forKey: executionID) } ?? [:]
        for waiter in waiters.values { waiter.wake() }
    }

    private func notifyIdleIfDone() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard state.activeDrains == 0 else { return [] }
            defer { state.idleWaiters = [] }
            return state.idleWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    // MARK: Shutdown

    /// Stops taking inputs, lets the transitions in progress finish, then waits up to the grace
    /// period for plugin calls and cleanups in flight (their results are stored if they come in time; otherwise
    /// their claims expire and another process runs them again). A cancelled task stops waiting
    /// for plugin calls at once; the transitions in progress are still waited for.
    public func shutdown() async {
        calls.stopAccepting()
        let graceEnds = ContinuousClock.now + configuration.shutdownGracePeriod
        await calls.waitUntilIdle(atMost: configuration.shutdownGracePeriod)
        state.withLock { $0.stopping = true }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let idle = state.withLock { state -> Bool in
                guard state.activeDrains > 0 else { return true }
                state.idleWaiters.append(continuation)
                return false
            }
            if idle { continuation.resume() }
        }
        // The last transitions may have abandoned steps: their cleanups get what is left of the
        // grace period before the runtime's tasks are cancelled.
        let left = graceEnds - ContinuousClock.now
        if left > .zero { await calls.waitUntilIdle(atMost: left) }
        let waiters = state.withLock { state -> [Alarm<ContinuousClock>] in
            defer { state.finishWaiters = [:] }
            return state.finishWaiters.values.flatMap(\.values)
        }
        for waiter in waiters { waiter.wake() }
    }
}

/// Counters of a runtime, for benchmarks and diagnostics.
public struct RuntimeStatistics: Sendable {
    /// Committed transitions.
    public var transitions = 0
    /// Inputs applied by them.
    public var inputs = 0
    /// Step rows written by them.
    public var stepWrites = 0
    /// Transitions that lost a race and were applied again.
    public var conflicts = 0
    /// Executions read from the store (not found in memory).
    public var loads = 0
    /// Time spent writing the committed transitions (from the first statement to the commit).
    public var writeTime = Duration.zero

    mutating func recordTransition(inputs count: Int, plan: TransitionPlan, writeTime time: Duration) {
        transitions += 1
        inputs += count
        stepWrites += plan.transition.steps.count
        writeTime += time
    }
}

extension Duration {
    /// The duration in seconds, as a floating-point number.
    var seconds: Double { self / .seconds(1) }
}
