import BudJSON
public import BudPipelineHost
public import Foundation
import Logging
import PipelineEngine
import PluginSchema
import Scheduling
public import ServiceLifecycle
import Storage
import Synchronization
import WorkMarks

/// The runtime's long-running parts, to run in one `ServiceGroup` in this order: the link to the
/// other processes on the database (stopped last, so that it can tell them what the runtime
/// released), the runtime itself (stopped after the others), timers, step claims, retention,
/// schedules, publishing.
///
/// Every one of them returns promptly on graceful shutdown and on cancellation of its task (a
/// group cancelled after a failure or a shutdown that overran): their loops stop and their
/// sleeps end, whichever of the two comes.
public enum RuntimeServices {
    public static func all(for runtime: ExecutionRuntime) -> [any Service] {
        [
            ClusterService(runtime: runtime), RuntimeLifecycleService(runtime: runtime), TimerService(runtime: runtime),
            LeaseService(runtime: runtime),
            RetentionService(runtime: runtime), ScheduleService(runtime: runtime), PublisherService(runtime: runtime),
            PluginRetirementService(plugins: runtime.plugins),
        ]
    }
}

/// Shuts down the plugins a reload replaced or dropped, each once its calls under way have
/// returned (see ``PluginHost/runRetirements()``), until the group shuts down.
public struct PluginRetirementService: Service {
    let plugins: PluginHost

    public init(plugins: PluginHost) {
        self.plugins = plugins
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            await plugins.runRetirements()
        } onGracefulShutdown: {
            plugins.stopRetirements()
        }
    }
}

/// Runs the work the runtime starts by itself (see ``RuntimeTasks``) for the life of the group
/// and, on shutdown, lets its work in progress finish (see ``ExecutionRuntime/shutdown()``;
/// cancelled, it stops waiting for plugin calls at once). Plugin calls still under way after the
/// grace period are cancelled: their claims expire and another process runs them again.
public struct RuntimeLifecycleService: Service {
    let runtime: ExecutionRuntime

    public init(runtime: ExecutionRuntime) {
        self.runtime = runtime
    }

    public func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask { await runtime.tasks.run() }
            try? await gracefulShutdown()
            await runtime.shutdown()
            runtime.tasks.finish()
            group.cancelAll()
        }
        // Stopped in order: the work still marked did not die with the process.
        WorkMarks.closeCleanly()
    }
}

/// Fires timers: this process's own at their due time (kept in memory), and, every poll
/// interval, those in the store that no live process has claimed (set by a process that died, or
/// due while none ran).
public struct TimerService: Service {
    let runtime: ExecutionRuntime

    public init(runtime: ExecutionRuntime) {
        self.runtime = runtime
    }

    public func run() async throws {
        let queue = runtime.timers
        await runtime.countInterruptionsAtStart()
        var nextPoll = Date()
        await repeatUntilShutdown(waitingOn: queue.alarm) {
            let now = Date()
            for timer in queue.takeDue(now: now) {
                runtime.recordTimerLag(timer, firedAt: now, source: "local")
                runtime.submit(.timer(timer), to: timer.executionID)
            }
            if now >= nextPoll || runtime.cluster.pollTimersNow.exchange(false, ordering: .acquiringAndReleasing) {
                nextPoll = await poll(now: now)
            }
            return min(queue.nextDue() ?? nextPoll, nextPoll)
        }
    }

    /// Claims due timers from the store and submits them; returns when to poll next.
    private func poll(now: Date) async -> Date {
        let configuration = runtime.configuration
        let batch = 500
        do {
            let claimed = try await runtime.store.timers.claimDue(
                owner: configuration.workerID, now: now, claimUntil: now.addingTimeInterval(30), limit: batch)
            for timer in claimed {
                runtime.recordTimerLag(timer, firedAt: now, source: "store")
                runtime.submit(.timer(timer), to: timer.executionID)
            }
            if claimed.count == batch { return now }
        } catch {
            runtime.logger.warning("could not read due timers", metadata: ["error": "\(error)"])
        }
        return now.addingTimeInterval(configuration.timerPollInterval.seconds)
    }
}

/// Renews the claims on the steps whose plugin calls run here, and takes over running steps whose
/// claim expired (their process died): they run again with the same idempotency key.
public struct LeaseService: Service {
    let runtime: ExecutionRuntime

    public init(runtime: ExecutionRuntime) {
        self.runtime = runtime
    }

    public func run() async throws {
        let configuration = runtime.configuration
        let renewEvery = configuration.leaseDuration.seconds / 3
        var nextRenewal = Date().addingTimeInterval(renewEvery)
        var nextSweep = Date()
        await runtime.countInterruptionsAtStart()
        await repeatUntilShutdown(waitingOn: runtime.leaseAlarm) {
            let now = Date()
            if now >= nextRenewal {
                await renew(now: now)
                nextRenewal = now.addingTimeInterval(renewEvery)
            }
            if now >= nextSweep || runtime.cluster.sweepLeasesNow.exchange(false, ordering: .acquiringAndReleasing) {
                let full = await sweep(now: now)
                nextSweep = full ? now : now.addingTimeInterval(configuration.leaseSweepInterval.seconds)
            }
            return min(nextRenewal, nextSweep)
        }
    }

    private func renew(now: Date) async {
        let steps = runtime.calls.inFlight.map { (executionID: $0.executionID, stepID: $0.stepID) }
        guard !steps.isEmpty else { return }
        do {
            try await runtime.store.leases.renew(
                owner: runtime.configuration.workerID, steps: steps,
                until: now.addingTimeInterval(runtime.configuration.leaseDuration.seconds))
        } catch {
            runtime.logger.warning("could not renew step claims", metadata: ["error": "\(error)", "steps": "\(steps.count)"])
        }
    }

    /// Counts the work of processes that died, then takes over expired claims; true when the
    /// batch was full (more may be waiting).
    private func sweep(now: Date) async -> Bool {
        await runtime.countInterruptions()
        let batch = 100
        let configuration = runtime.configuration
        do {
            let taken = try await runtime.store.leases.claimExpired(
                owner: configuration.workerID, now: now, until: now.addingTimeInterval(configuration.leaseDuration.seconds), limit: batch)
            for step in taken { resume(step) }
            return taken.count == batch
        } catch {
            runtime.logger.warning("could not look for expired step claims", metadata: ["error": "\(error)"])
            return false
        }
    }

    private func resume(_ step: LeasedStep) {
        let limit = runtime.configuration.interruptionLimit
        if step.interruptions >= limit {
            // The process died on this step too often: fail it instead of calling its plugin again.
            let action = step.dispatch?["action"]?.stringValue ?? ""
            runtime.logger.error(
                "failing a step the process kept dying on",
                metadata: ["execution_id": "\(step.executionID)", "step_id": "\(step.stepID)", "interruptions": "\(step.interruptions)"])
            runtime.submit(
                .engine(
                    .stepInterrupted(stepID: step.stepID, error: runtime.interruptionMessage(count: step.interruptions, action: action))),
                to: step.executionID)
            return
        }
        guard let dispatch = step.dispatch, let request = try? ExecuteRequest(json: dispatch) else {
            runtime.logger.error(
                "a running step has no readable request; failing it",
                metadata: ["execution_id": "\(step.executionID)", "step_id": "\(step.stepID)"])
            runtime.submit(
                .engine(
                    .stepFailed(
                        stepID: step.stepID, attempt: step.attempt, failure: .permanent("The step's stored request is unreadable"),
                        outputs: [:])),
                to: step.executionID)
            return
        }
        runtime.logger.info(
            "running a step again after its claim expired",
            metadata: ["execution_id": "\(step.executionID)", "step_id": "\(step.stepID)", "idempotency_key": "\(request.idempotencyKey)"])
        runtime.startCall(StepCall(request: request))
    }
}

/// Deletes finished executions older than `PIPELINE_RETENTION_DAYS`, on `PIPELINE_CLEANUP_SCHEDULE`,
/// in batches.
public struct RetentionService: Service {
    let runtime: ExecutionRuntime

    public init(runtime: ExecutionRuntime) {
        self.runtime = runtime
    }

    public func run() async throws {
        let configuration = runtime.configuration
        guard configuration.retentionDays > 0 else {
            try? await gracefulShutdown()
            return
        }
        var due = configuration.retentionSchedule.next(after: Date())
        await repeatUntilShutdown(waitingOn: Alarm()) {
            guard let scheduled = due else { return nil }
            if Date() >= scheduled {
                await runOnce(now: Date())
                due = configuration.retentionSchedule.next(after: Date())
            }
            return due
        }
        try? await gracefulShutdown()
    }

    /// How long handled inbound event ids are remembered: 7 days.
    static let inboundEventMemory: TimeInterval = 7 * 86_400

    /// Deletes, in batches of 100, every finished execution that ended more than the retention
    /// period before `now`, and inbound event ids older than ``inboundEventMemory``; returns how
    /// many executions it deleted.
    @discardableResult
    public func runOnce(now: Date) async -> Int {
        let cutoff = now.addingTimeInterval(-Double(runtime.configuration.retentionDays) * 86_400)
        var deleted = 0
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                let batch = try await runtime.store.retention.deleteFinished(endedBefore: cutoff, limit: 100)
                deleted += batch
                if batch < 100 { break }
            } catch {
                runtime.logger.warning("retention stopped early", metadata: ["error": "\(error)", "deleted": "\(deleted)"])
                break
            }
        }
        runtime.logger.info(
            "retention removed finished executions", metadata: ["deleted": "\(deleted)", "ended_before": "\(SQLTimestamp.format(cutoff))"])
        // Event ids are kept to recognise redeliveries, which Dapr stops after hours, not weeks.
        do {
            try await runtime.store.inboundEvents.forgetProcessed(processedBefore: now.addingTimeInterval(-Self.inboundEventMemory))
            try await runtime.store.inboundEvents.forgetParked(
                receivedBefore: now.addingTimeInterval(-(runtime.configuration.parkedEventWindow / .seconds(1))))
        } catch {
            runtime.logger.warning("could not forget old inbound events", metadata: ["error": "\(error)"])
        }
        return deleted
    }
}

/// A flag set once, from any thread.
final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)

    var isSet: Bool { flag.load(ordering: .acquiring) }

    func set() {
        flag.store(true, ordering: .releasing)
    }
}

/// Runs `iteration` again and again until the service group shuts down gracefully or the task is
/// cancelled, sleeping on `alarm` in between until the time the iteration returned (cut short by
/// a wake-up of the alarm). Shutdown and cancellation end the sleep at once and no iteration
/// starts after them; an iteration that returns `nil` ends the loop.
func repeatUntilShutdown(waitingOn alarm: Alarm<ContinuousClock>, _ iteration: () async -> Date?) async {
    let stopped = StopFlag()
    await withTaskCancellationOrGracefulShutdownHandler {
        while !stopped.isSet {
            guard let next = await iteration(), !stopped.isSet else { return }
            await alarm.sleep(untilDate: next)
        }
    } onCancelOrGracefulShutdown: {
        stopped.set()
        alarm.wake()
    }
}

/// Fires due schedules: each occurrence once across all processes (claimed in the store), on
/// time — it sleeps until the earliest schedule is due, is woken when schedules change here, and
/// polls every `timerPollInterval` for changes made by other processes.
public struct ScheduleService: Service {
    let runtime: ExecutionRuntime

    public init(runtime: ExecutionRuntime) {
        self.runtime = runtime
    }

    public func run() async throws {
        await repeatUntilShutdown(waitingOn: runtime.scheduleAlarm) {
            let now = Date()
            let full = await fireDue(now: now)
            var wake = now.addingTimeInterval(runtime.configuration.timerPollInterval.seconds)
            if full {
                wake = now
            } else if let due = try? await runtime.store.triggers.nextScheduleDue(), due < wake {
                wake = due
            }
            return wake
        }
    }

    /// Fires the schedules due at `now`; true when the batch was full (more may be due).
    @discardableResult
    public func fireDue(now: Date) async -> Bool {
        let batch = 50
        let owner = runtime.configuration.workerID
        let claimed: [ScheduleRecord]
        do {
            claimed = try await runtime.store.triggers.claimDueSchedules(
                owner: owner, now: now, claimUntil: now.addingTimeInterval(60), limit: batch)
        } catch {
            runtime.logger.warning("could not read due schedules", metadata: ["error": "\(error)"])
            return false
        }
        for schedule in claimed {
            await fire(schedule, now: now, owner: owner)
        }
        return claimed.count == batch
    }

    private func fire(_ schedule: ScheduleRecord, now: Date, owner: String) async {
        let updated: ScheduleRecord
        switch ScheduleFiring.decide(schedule, now: now) {
        case .retire(let retired):
            updated = retired
        case .run(let params):
            do {
                let record = try await runtime.startSavedPipeline(
                    schedule.pipelineID, ExecutionRequest(dag: .null, params: params, ownerID: schedule.userID))
                updated = ScheduleFiring.afterRun(schedule, executionID: record.id, started: true, now: now)
            } catch {
                runtime.logger.warning(
                    "a schedule could not start its pipeline",
                    metadata: ["schedule_id": "\(schedule.id)", "pipeline_id": "\(schedule.pipelineID)", "error": "\(error)"])
                updated = ScheduleFiring.afterRun(schedule, executionID: nil, started: false, now: now)
            }
        }
        do {
            if try await !runtime.store.triggers.releaseSchedule(updated, owner: owner) {
                runtime.logger.info("a schedule changed while it fired; its change stands", metadata: ["schedule_id": "\(schedule.id)"])
            }
        } catch {
            runtime.logger.warning("could not store a fired schedule", metadata: ["schedule_id": "\(schedule.id)", "error": "\(error)"])
        }
    }
}
