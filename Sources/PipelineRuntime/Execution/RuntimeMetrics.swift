import BudPipelineHost
import CoreMetrics
import Foundation
import Logging
import PipelineEngine
import Storage
import Synchronization
import Telemetry

/// What the runtime records as it works (see ``MetricCatalog`` for each metric's meaning), and the
/// gauges it measures when asked (``ExecutionRuntime/collectMetrics()``).
///
/// Counters move only once what they count is stored: a transition's counts after its commit, a
/// published event after every topic accepted it. Label values come from bounded sets — statuses,
/// outcomes, the actions and plugins loaded — and every family is bounded besides (see
/// ``MetricFamily``).
struct RuntimeMetrics: Sendable {
    /// False with the no-op factory: nothing is recorded or measured.
    let enabled: Bool
    let executionsStarted: CounterFamily
    let executionsFinished: CounterFamily
    let executionDuration: DurationFamily
    let stepTransitions: CounterFamily
    let stepDuration: DurationFamily
    let transitions: CounterFamily
    let transitionConflicts: CounterFamily
    let transitionWrite: DurationFamily
    let timerLag: DurationFamily
    let outboxPublished: CounterFamily
    let outboxPublishFailures: CounterFamily
    let outboxDeadLetters: CounterFamily
    let inboundEvents: CounterFamily
    let clusterTakeovers: CounterFamily
    let pluginCalls: CounterFamily
    let pluginCallDuration: DurationFamily

    let executionsInMemory: GaugeFamily
    let queuedInputs: GaugeFamily
    let dueTimers: GaugeFamily
    let oldestDueTimerAge: GaugeFamily
    let outboxPending: GaugeFamily
    let outboxDead: GaugeFamily
    let outboxOldestPendingAge: GaugeFamily
    let pluginCallsInFlight: GaugeFamily
    let pluginHealthy: GaugeFamily
    let pluginQuarantined: GaugeFamily
    let pluginsLoaded: GaugeFamily
    let databaseWritable: GaugeFamily
    let pluginProcessCrashes: MirroredCounterFamily
    let pluginProcessRestarts: MirroredCounterFamily

    /// The series every transition records into, looked up once.
    let transitionCount: Counter
    let transitionWriteTime: DurationSeries
    let executionStart: Counter
    /// The step series by action, looked up once per action (see ``StepSeries``).
    let stepSeries = StepSeriesCache()

    init(factory: any MetricsFactory) {
        enabled = !(factory is NOOPMetricsHandler)
        executionsStarted = CounterFamily(MetricCatalog.executionsStarted, factory: factory)
        executionsFinished = CounterFamily(MetricCatalog.executionsFinished, factory: factory)
        executionDuration = DurationFamily(MetricCatalog.executionDuration, factory: factory)
        stepTransitions = CounterFamily(MetricCatalog.stepTransitions, factory: factory)
        stepDuration = DurationFamily(MetricCatalog.stepDuration, factory: factory)
        transitions = CounterFamily(MetricCatalog.transitions, factory: factory)
        transitionConflicts = CounterFamily(MetricCatalog.transitionConflicts, factory: factory)
        transitionWrite = DurationFamily(MetricCatalog.transitionWriteDuration, factory: factory)
        timerLag = DurationFamily(MetricCatalog.timerLag, factory: factory)
        outboxPublished = CounterFamily(MetricCatalog.outboxPublished, factory: factory)
        outboxPublishFailures = CounterFamily(MetricCatalog.outboxPublishFailures, factory: factory)
        outboxDeadLetters = CounterFamily(MetricCatalog.outboxDeadLetters, factory: factory)
        inboundEvents = CounterFamily(MetricCatalog.inboundEvents, factory: factory)
        clusterTakeovers = CounterFamily(MetricCatalog.clusterTakeovers, factory: factory)
        pluginCalls = CounterFamily(MetricCatalog.pluginCalls, factory: factory)
        pluginCallDuration = DurationFamily(MetricCatalog.pluginCallDuration, factory: factory)
        executionsInMemory = GaugeFamily(MetricCatalog.executionsInMemory, factory: factory)
        queuedInputs = GaugeFamily(MetricCatalog.queuedInputs, factory: factory)
        dueTimers = GaugeFamily(MetricCatalog.dueTimers, factory: factory)
        oldestDueTimerAge = GaugeFamily(MetricCatalog.oldestDueTimerAge, factory: factory)
        outboxPending = GaugeFamily(MetricCatalog.outboxPending, factory: factory)
        outboxDead = GaugeFamily(MetricCatalog.outboxDead, factory: factory)
        outboxOldestPendingAge = GaugeFamily(MetricCatalog.outboxOldestPendingAge, factory: factory)
        pluginCallsInFlight = GaugeFamily(MetricCatalog.pluginCallsInFlight, factory: factory)
        pluginHealthy = GaugeFamily(MetricCatalog.pluginHealthy, factory: factory)
        pluginQuarantined = GaugeFamily(MetricCatalog.pluginQuarantined, factory: factory)
        pluginsLoaded = GaugeFamily(MetricCatalog.pluginsLoaded, factory: factory)
        databaseWritable = GaugeFamily(MetricCatalog.databaseWritable, factory: factory)
        pluginProcessCrashes = MirroredCounterFamily(MetricCatalog.pluginProcessCrashes, factory: factory)
        pluginProcessRestarts = MirroredCounterFamily(MetricCatalog.pluginProcessRestarts, factory: factory)
        transitionCount = transitions.counter()
        transitionWriteTime = transitionWrite.series()
        executionStart = executionsStarted.counter()
    }

    /// Counts a committed transition: the transition, its step changes, and the start or end of
    /// its execution. `actionLabel` bounds the action label to the actions the runtime knows;
    /// `writeTime` is `nil` when the commit's answer was lost.
    func recordCommitted(_ plan: TransitionPlan, writeTime: Duration?, actionLabel: (String) -> String) {
        guard enabled else { return }
        transitionCount.increment()
        if let writeTime { transitionWriteTime.record(writeTime) }
        if plan.startedExecution { executionStart.increment() }
        for step in plan.stepOutcomes {
            let series = stepSeries.series(for: step.action, step.outcome) {
                let label = actionLabel(step.action)
                return StepSeries(
                    transitions: stepTransitions.counter(label, step.outcome.rawValue),
                    durations: step.outcome.endsAttempt ? stepDuration.series(label, step.outcome.rawValue) : nil)
            }
            series.transitions.increment()
            if let seconds = step.seconds { series.durations?.record(seconds: seconds) }
        }
        if let status = plan.finished {
            let label = status.rawValue.lowercased()
            executionsFinished.increment(label)
            let execution = plan.transition.execution
            if let started = execution.startedAt, let ended = execution.endedAt {
                executionDuration.record(seconds: ended.timeIntervalSince(started), label)
            }
        }
    }

    /// Counts a plugin's answer to a step attempt.
    func recordPluginCall(plugin: String, outcome: String, duration: Duration) {
        guard enabled else { return }
        pluginCalls.increment(plugin, outcome)
        pluginCallDuration.record(duration, plugin)
    }

    /// The plugins' state, as the gauges and mirrored counters show it.
    func measure(plugins: [LoadedPlugin], callsInFlight: Int) {
        pluginsLoaded.set(Double(plugins.count))
        pluginCallsInFlight.set(Double(callsInFlight))
        for plugin in plugins {
            pluginHealthy.set(plugin.healthStatus.isHealthy ? 1 : 0, plugin.name)
            let status = plugin.processStatus
            pluginQuarantined.set(status?.quarantined == nil ? 0 : 1, plugin.name)
            if let status {
                pluginProcessCrashes.sync(to: status.crashes, plugin.name)
                pluginProcessRestarts.sync(to: status.restarts, plugin.name)
            }
        }
    }
}

extension ExecutionRuntime {
    /// Sets the gauges that are measured rather than counted: this process's queue, the store's
    /// due timers and outbox backlog, the plugins' health and whether the store takes writes.
    /// Store figures that cannot be read within `timeout` keep their last values.
    public func collectMetrics(timeout: Duration = .seconds(2)) async {
        guard metrics.enabled else { return }
        let (inMemory, queued) = mailboxCounts
        metrics.executionsInMemory.set(Double(inMemory))
        metrics.queuedInputs.set(Double(queued))
        metrics.databaseWritable.set(store.health.isWritable ? 1 : 0)
        metrics.measure(plugins: plugins.plugins, callsInFlight: calls.inFlightCount)
        let store = self.store
        let now = Date()
        async let dueTimers = readWithin(timeout) { try await store.timers.dueSummary(now: now) }
        // Logs its own failure.
        async let backlog = outboxBacklog(timeout: timeout)
        switch await dueTimers {
        case .success(let timers):
            metrics.dueTimers.set(Double(timers.count))
            metrics.oldestDueTimerAge.set(timers.earliest.map { max(0, now.timeIntervalSince($0)) } ?? 0)
        case .failure(let failure):
            logger.warning(
                "could not measure the due timers for /metrics; they keep their last values", metadata: ["error": "\(failure.message)"])
        }
        if case .success(let outbox) = await backlog {
            metrics.outboxPending.set(Double(outbox.pending))
            metrics.outboxDead.set(Double(outbox.dead))
            metrics.outboxOldestPendingAge.set(outbox.oldestPendingAge ?? 0)
        }
    }

    /// Records how late `timer` fired.
    func recordTimerLag(_ timer: TimerRecord, firedAt now: Date, source: String) {
        guard metrics.enabled else { return }
        metrics.timerLag.record(seconds: now.timeIntervalSince(timer.dueAt), source)
    }

    /// The action label for `action`: itself when the runtime knows the action, else `other`.
    func actionLabel(_ action: String) -> String {
        catalog.metadata(for: action) != nil ? action : "other"
    }
}

/// The step series of one action and outcome: its transition counter and, for an outcome that
/// ends an attempt, its duration histogram.
struct StepSeries: Sendable {
    let transitions: Counter
    let durations: DurationSeries?
}

/// ``StepSeries`` by action and outcome, made on first use (so only the outcomes that happened
/// have series). Holds at most 5,000 pairs; beyond, each use looks its series up in the families
/// again (which stay bounded either way).
final class StepSeriesCache: Sendable {
    struct Key: Hashable {
        let action: String
        let outcome: StepOutcome.Kind
    }

    private let series = Mutex<[Key: StepSeries]>([:])

    func series(for action: String, _ outcome: StepOutcome.Kind, make: () -> StepSeries) -> StepSeries {
        let key = Key(action: action, outcome: outcome)
        if let known = series.withLock({ $0[key] }) { return known }
        let made = make()
        series.withLock { cache in
            if cache.count < 5000 { cache[key] = made }
        }
        return made
    }
}
