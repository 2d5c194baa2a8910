import BudJSON
import BudPipelineHost
import Foundation
import Logging
import PipelineEngine
import Scheduling
import Storage
import Synchronization
import WorkMarks

/// How the runtime keeps a step that kills the process from doing it forever.
///
/// Every plugin call for a step and every transition is marked while it runs (``WorkMarks``).
/// Marks left by processes that have ended are counted against the steps (or, without a step, the
/// execution) they name — only the work that received the fatal signal when one did, otherwise
/// all the work that was under way. A step counted ``RuntimeConfiguration/interruptionLimit``
/// times is failed instead of being run again (its plugin is not called, not even `cleanup`), and
/// its execution follows its failure policy; if the process dies even then, or the execution
/// itself reaches the limit, the execution is ended in the store without the engine. See
/// docs/operations.md, "Crash loops".
extension ExecutionRuntime {
    /// Reads the work marks of processes that have ended and counts them in the store: one death
    /// per step (or execution) per process (``EndedProcess/charges``). Returns how many
    /// executions were charged.
    ///
    /// The marks of an ended process are deleted once read, so the count reaches the store even
    /// when the caller is cancelled meanwhile (a shutdown that overran): it runs in a task of its
    /// own, which the caller awaits.
    @discardableResult
    public func countInterruptions() async -> Int {
        // Unstructured on purpose: a cancellation of the caller must not stop the count half way
        // (the pool refuses work of a cancelled task, and the marks it read are gone); the count
        // is bounded by the number of marks and the database's own timeouts.
        await Task { await countInterruptionsShielded() }.value
    }

    private func countInterruptionsShielded() async -> Int {
        guard let directory = configuration.workMarksDirectory else { return 0 }
        var counted = 0
        for process in WorkMarks.collectEnded(in: directory) {
            for charge in process.charges {
                for mark in charge.marks {
                    var metadata: Logger.Metadata = [
                        "worker_id": "\(process.worker)", "execution_id": "\(mark.executionID)", "steps": "\(mark.stepIDs)",
                        "work": "\(mark.kind.rawValue)",
                    ]
                    if let plugin = mark.plugin { metadata["plugin"] = "\(plugin)" }
                    if let action = mark.action { metadata["action"] = "\(action)" }
                    if let signal = mark.signal { metadata["signal"] = "\(Self.signalName(signal))" }
                    logger.error(
                        mark.signal == nil
                            ? "a process ended while this work was under way" : "a process died of a fatal signal during this work",
                        metadata: metadata)
                }
                do {
                    try await store.interruptions.record(executionID: ExecutionID(charge.executionID), stepIDs: charge.stepIDs)
                    counted += 1
                } catch {
                    logger.warning(
                        "could not count an interruption",
                        metadata: ["execution_id": "\(charge.executionID)", "steps": "\(charge.stepIDs)", "error": "\(error)"])
                }
            }
        }
        return counted
    }

    /// Counts the interruptions left by processes that died before this one started, once; every
    /// caller waits for that one count. The services that claim work (timers, leases) call it
    /// before their first claim, so no step is run again before its deaths are counted — and
    /// since they start once the server listens, counting never delays serving.
    func countInterruptionsAtStart() async {
        let count = startupCount.withLock { task -> Task<Int, Never> in
            if let task { return task }
            // Unstructured on purpose: the one count every caller awaits, shielded from any one
            // caller's cancellation like ``countInterruptions()``.
            let started = Task { await countInterruptionsShielded() }
            task = started
            return started
        }
        _ = await count.value
    }

    /// Why a step the process kept dying on is failed.
    func interruptionMessage(count: Int, action: String) -> String {
        let plugin = plugins.action(action).map { " (plugin \($0.plugin.name), action \(action))" } ?? ""
        return "the server process died while running this step \(count) times; it was not run again\(plugin)"
    }

    /// Ends an execution that could not be run on without risking the process again, without
    /// the engine: FAILED with `reason`, and the failure published to `callbackTopics` (the
    /// execution's, read with it) and its subscribers.
    func quarantine(_ execution: ExecutionRecord, callbackTopics topics: [String], reason: String) async {
        var snapshot = execution.snapshot
        let now = Date()
        snapshot.status = .failed
        snapshot.endedAt = now
        snapshot.errorInfo = ["error": .string(reason), "message": .string(reason)]
        var records = EventRecords(
            executionID: execution.id, pipelineID: execution.pipelineID,
            publishes: publishes(callbackTopics: topics, subscriberIDs: execution.subscriberIDs), now: now,
            sequence: execution.eventSequence)
        records.record([.executionFailed(error: reason)], execution: snapshot)
        do {
            if try await store.interruptions.quarantine(executionID: execution.id, reason: reason, notifications: records.outbox, now: now)
            {
                logger.error(
                    "execution stopped without its failure policy", metadata: ["execution_id": "\(execution.id)", "reason": "\(reason)"])
                publishLive(records.live, of: execution.id, version: nil)
                publishAlarm.wake()
                timers.removeAll(executionID: execution.id)
            }
        } catch {
            logger.error("could not stop an execution", metadata: ["execution_id": "\(execution.id)", "error": "\(error)"])
        }
    }

    static func signalName(_ signal: Int32) -> String {
        switch signal {
        case SIGSEGV: "SIGSEGV"
        case SIGBUS: "SIGBUS"
        case SIGILL: "SIGILL"
        case SIGTRAP: "SIGTRAP"
        case SIGABRT: "SIGABRT"
        case SIGFPE: "SIGFPE"
        default: "signal \(signal)"
        }
    }
}

extension RuntimeInput {
    /// The step the input is about, if any.
    var stepID: String? {
        switch self {
        case .timer(let timer): EngineTimer(key: timer.key)?.stepID
        case .engine(let input):
            switch input {
            case .start, .cancel: nil
            case .timerFired(let timer): timer.stepID
            case .stepSucceeded(let id, _, _), .stepFailed(let id, _, _, _), .stepAwaitingEvent(let id, _, _, _, _),
                .eventCompletedStep(let id, _, _, _), .stepProgress(let id, _, _, _),
                .stepInterrupted(let id, _):
                id
            }
        }
    }
}

extension ExecutionRuntime {
    /// Test-only: in debug builds, `BUDPIPELINE_TEST_FAULT=transition:<step id>` makes the
    /// process trap while it applies that step's successful result, and
    /// `transition-any:<step id>` while it applies any input for that step — a host-side fault for
    /// the crash-loop tests. Release builds ignore the variable.
    func injectFaultIfAsked(_ inputs: [RuntimeInput]) {
        #if DEBUG
            guard let fault = Self.injectedFault else { return }
            for input in inputs where input.stepID == fault.stepID {
                if case .engine(.stepSucceeded) = input {
                    fatalError("injected fault (BUDPIPELINE_TEST_FAULT) applying the result of step \(fault.stepID)")
                }
                if fault.anyInput { fatalError("injected fault (BUDPIPELINE_TEST_FAULT) applying an input for step \(fault.stepID)") }
            }
        #endif
    }

    #if DEBUG
        private static let injectedFault: (anyInput: Bool, stepID: String)? = {
            guard let value = ProcessInfo.processInfo.environment["BUDPIPELINE_TEST_FAULT"] else { return nil }
            if value.hasPrefix("transition:") { return (false, String(value.dropFirst("transition:".count))) }
            if value.hasPrefix("transition-any:") { return (true, String(value.dropFirst("transition-any:".count))) }
            return nil
        }()
    #endif
}
