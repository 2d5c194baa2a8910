import BudJSON
import BudPipelineHost
import Foundation
import Logging
import PipelineEngine
import PluginSchema
import Scheduling
import Synchronization
import Tracing

/// The plugin calls this process is making, so that their claims can be renewed, and the mapping
/// of their answers to engine inputs.
final class StepCalls: Sendable {
    struct Key: Hashable, Sendable {
        let executionID: ExecutionID
        let stepID: String
    }

    private struct State {
        var inFlight: [Key: Int] = [:]
        /// Cleanup calls under way (abandoned steps' `cleanup`).
        var cleanups = 0
        var accepting = true
    }

    private let plugins: PluginHost
    private let tasks: RuntimeTasks
    private let logger: Logger
    private let metrics: RuntimeMetrics
    private let tracing: ExecutionTracing
    private let state = Mutex(State())
    /// Rung when the last call in flight returns.
    private let idle = Alarm()

    init(plugins: PluginHost, tasks: RuntimeTasks, logger: Logger, metrics: RuntimeMetrics, tracing: ExecutionTracing = .off) {
        self.plugins = plugins
        self.tracing = tracing
        self.tasks = tasks
        self.logger = logger
        self.metrics = metrics
    }

    /// Steps whose calls are running here.
    var inFlight: [Key] { state.withLock { Array($0.inFlight.keys) } }
    var inFlightCount: Int { state.withLock { $0.inFlight.count } }

    /// Makes no more calls: steps dispatched from now on are left to their claims.
    func stopAccepting() {
        state.withLock { $0.accepting = false }
    }

    /// Returns once no call is in flight, after `limit` at the latest, or at once when the task
    /// is cancelled.
    func waitUntilIdle(atMost limit: Duration) async {
        let deadline = idle.clock.now.advanced(by: limit)
        while state.withLock({ !$0.inFlight.isEmpty || $0.cleanups > 0 }), idle.clock.now < deadline {
            if await idle.sleep(until: deadline) == .cancelled { return }
        }
    }

    /// Calls the step's action and reports its result as an input (`nil` results — the host shut
    /// down under the call — report nothing: the claim expires and the step runs again). Returns
    /// false when calls are no longer accepted.
    @discardableResult
    func start(
        _ call: StepCall,
        result: @escaping @Sendable (ExecutionInput) -> Void,
        progress: @escaping @Sendable (ExecutionInput) -> Void
    ) -> Bool {
        let key = Key(executionID: call.executionID, stepID: call.stepID)
        let accepted = state.withLock { state -> Bool in
            guard state.accepting else { return false }
            state.inFlight[key, default: 0] += 1
            return true
        }
        guard accepted else { return false }
        let started = tasks.start { [self] in
            let callStarted = ContinuousClock.now
            // A call dispatched again after a takeover has no stored context at hand: the one
            // derived from the execution id.
            let parent = call.traceParent ?? .derived(from: call.executionID)
            let span = tracing.startSpan("plugin.call", parent: parent) { attributes in
                attributes["budpipeline.execution.id"] = call.executionID.rawValue
                attributes["budpipeline.step.id"] = call.stepID
                attributes["budpipeline.step.attempt"] = call.attempt
                attributes["budpipeline.plugin.name"] = plugins.action(call.request.action)?.plugin.name ?? "other"
                attributes["budpipeline.plugin.action"] = call.request.action
            }
            let (input, outcome) = await execute(call, trace: tracing.traceParent(of: span, else: parent), progress: progress)
            if let span {
                span.attributes["budpipeline.plugin.outcome"] = outcome
                span.end(failure: Self.succeeded.contains(outcome) ? nil : Self.failureMessage(of: input) ?? outcome)
            }
            if metrics.enabled {
                metrics.recordPluginCall(
                    plugin: plugins.action(call.request.action)?.plugin.name ?? "other", outcome: outcome,
                    duration: ContinuousClock.now - callStarted)
            }
            finished(key)
            if let input { result(input) }
        }
        if !started { finished(key) }
        return started
    }

    /// The outcomes of a call that did what was asked.
    private static let succeeded: Set<String> = ["completed", "awaiting_event", "unfinished"]

    /// What a failed call reported, for its span's status.
    private static func failureMessage(of input: ExecutionInput?) -> String? {
        guard case .stepFailed(_, _, let failure, _)? = input else { return nil }
        return String(describing: failure).prefix(500).description
    }

    private func finished(_ key: Key) {
        settle { state in
            let remaining = (state.inFlight[key] ?? 1) - 1
            state.inFlight[key] = remaining > 0 ? remaining : nil
        }
    }

    private func cleanupEnded() {
        settle { $0.cleanups -= 1 }
    }

    /// Applies the end of a call or cleanup and rings ``idle`` when nothing is left under way.
    private func settle(_ change: (inout State) -> Void) {
        let none = state.withLock { state -> Bool in
            change(&state)
            return state.inFlight.isEmpty && state.cleanups == 0
        }
        if none { idle.wake() }
    }

    /// The input a call's result makes, and the outcome the metrics count it as (see
    /// ``MetricCatalog/pluginCalls``).
    private func execute(
        _ call: StepCall, trace: TraceParent?, progress: @escaping @Sendable (ExecutionInput) -> Void
    ) async -> (input: ExecutionInput?, outcome: String) {
        let stepID = call.stepID
        var context = PluginCallContext(executionID: call.executionID.rawValue, stepID: stepID) { report in
            progress(.stepProgress(stepID: stepID, percent: report.percent, etaSeconds: report.etaSeconds, message: report.message))
        }
        context.traceparent = trace?.header
        let timeout = call.request.timeoutSeconds.map { Duration.seconds($0) }
        do {
            if call.checkParamsFirst, plugins.action(call.request.action)?.validatesParams == true {
                let problems = try await plugins.validateParams(action: call.request.action, params: call.request.params, timeout: timeout)
                if !problems.isEmpty {
                    let failure = StepFailure.permanent("invalid parameters: \(problems.joined(separator: "; "))")
                    return (.stepFailed(stepID: stepID, attempt: call.attempt, failure: failure, outputs: [:]), "invalid_params")
                }
            }
            let outcome = try await plugins.execute(call.request, context: context, timeout: timeout)
            switch outcome {
            case .completed(let outputs):
                return (.stepSucceeded(stepID: stepID, attempt: call.attempt, outputs: outputs), "completed")
            case .awaitingEvent(let externalID, let timeoutSeconds, let outputs):
                let input = ExecutionInput.stepAwaitingEvent(
                    stepID: stepID, attempt: call.attempt, externalWorkflowID: externalID, timeoutSeconds: timeoutSeconds, outputs: outputs)
                return (input, "awaiting_event")
            case .failed(let message, let retryable, let outputs):
                let failure: StepFailure = retryable ? .retryable(message) : .permanent(message)
                return (.stepFailed(stepID: stepID, attempt: call.attempt, failure: failure, outputs: outputs), "failed")
            }
        } catch {
            switch error.kind {
            case .timedOut, .timedOutWaiting:
                let message = call.request.timeoutSeconds.map { "Step timed out after \($0) seconds" } ?? "Step timed out: \(error.message)"
                return (.stepFailed(stepID: stepID, attempt: call.attempt, failure: .timedOut(message), outputs: [:]), "timed_out")
            case .unknownAction, .protocolViolation:
                let input = ExecutionInput.stepFailed(
                    stepID: stepID, attempt: call.attempt, failure: .permanent(error.message), outputs: [:])
                return (input, error.kind == .protocolViolation ? "protocol_violation" : "failed")
            case .pluginUnhealthy, .retryRequested, .pluginCrashed:
                let input = ExecutionInput.stepFailed(
                    stepID: stepID, attempt: call.attempt, failure: .retryable(error.message), outputs: [:])
                let outcome =
                    switch error.kind {
                    case .pluginCrashed: "crashed"
                    case .pluginUnhealthy: "unhealthy"
                    default: "failed"
                    }
                return (input, outcome)
            case .shuttingDown, .cancelled:
                logger.info(
                    "plugin call left unfinished; the step runs again once its claim expires",
                    metadata: ["execution_id": "\(call.executionID)", "step_id": "\(stepID)", "reason": "\(error.message)"])
                return (nil, "unfinished")
            }
        }
    }

    /// Tells the action of an abandoned step to stop its work; failures are logged.
    func cleanup(_ abandonment: StepAbandonment, executionID: ExecutionID) {
        let request = CleanupRequest(
            action: abandonment.action,
            executionID: executionID.rawValue,
            stepID: abandonment.stepID,
            externalWorkflowID: abandonment.externalWorkflowID,
            reason: abandonment.reason
        )
        guard plugins.action(abandonment.action) != nil else { return }
        // Cleanups are waited for at shutdown like calls: a cancelled one would leave the
        // abandoned step's external work running, and nobody asks again.
        state.withLock { $0.cleanups += 1 }
        let started = tasks.start { [plugins, logger, self] in
            defer { cleanupEnded() }
            do {
                if let problem = try await plugins.cleanup(request) {
                    logger.warning(
                        "plugin cleanup reported a problem",
                        metadata: ["execution_id": "\(executionID)", "step_id": "\(abandonment.stepID)", "error": "\(problem)"])
                }
            } catch {
                logger.warning(
                    "plugin cleanup failed",
                    metadata: ["execution_id": "\(executionID)", "step_id": "\(abandonment.stepID)", "error": "\(error)"])
            }
        }
        if !started { cleanupEnded() }
    }
}
