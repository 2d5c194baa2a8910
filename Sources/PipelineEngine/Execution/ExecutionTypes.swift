public import BudJSON
public import Foundation
public import PluginSchema

/// Where a step is in its life.
public enum StepStatus: String, Sendable, CaseIterable {
    /// Waiting for its dependencies (or for a free slot, or for its retry).
    case pending = "PENDING"
    /// Executing: its action was called and has not answered.
    case running = "RUNNING"
    /// Its action started external work; an event (or its timeout) will finish it.
    case awaitingEvent = "AWAITING_EVENT"
    /// Failed; another attempt is scheduled.
    case retrying = "RETRYING"
    case completed = "COMPLETED"
    case failed = "FAILED"
    /// Did not run: its condition was false, a branch chose another target, an upstream step
    /// failed, or the execution ended first.
    case skipped = "SKIPPED"
    /// Ran or waited longer than its timeout.
    case timedOut = "TIMEOUT"
    /// Was executing or waiting when the execution was cancelled or failed.
    case cancelled = "CANCELLED"

    /// The status clients see: an awaiting step is `RUNNING` (with `awaiting_event` set).
    public var apiValue: String { self == .awaitingEvent ? StepStatus.running.rawValue : rawValue }

    /// Whether the step will not change again.
    public var isSettled: Bool {
        switch self {
        case .completed, .failed, .skipped, .timedOut, .cancelled: true
        case .pending, .running, .awaitingEvent, .retrying: false
        }
    }
}

/// Where an execution is in its life.
public enum ExecutionStatus: String, Sendable, CaseIterable {
    case pending = "PENDING"
    case running = "RUNNING"
    case completed = "COMPLETED"
    case failed = "FAILED"
    case cancelled = "CANCELLED"

    public var isFinished: Bool { self == .completed || self == .failed || self == .cancelled }
}

/// Everything recorded about one step.
public struct StepState: Sendable, Equatable {
    public let stepID: String
    public let name: String
    public let action: String
    /// 1-based position in the definition.
    public let sequence: Int
    public var status: StepStatus = .pending
    /// 0 for the first attempt, 1 for the first retry, …
    public var attempt = 0
    public var startedAt: Date?
    public var endedAt: Date?
    public var outputs: JSONObject?
    /// Why the step failed, was skipped or cancelled.
    public var error: String?
    /// 0…100.
    public var progress: Double = 0
    public var etaSeconds: Int?
    /// The id an awaited event carries.
    public var externalWorkflowID: String?
    /// When the current attempt times out (or, for `wait_until`, wakes up).
    public var deadline: Date?
    /// For a failed or timed-out step: whether `on_failure: continue` tolerated it.
    public var failureTolerated = false

    /// A step that has not run yet.
    public init(stepID: String, name: String, action: String, sequence: Int) {
        self.stepID = stepID
        self.name = name
        self.action = action
        self.sequence = sequence
    }

    /// Whether the step waits for an external event.
    public var isAwaitingEvent: Bool { status == .awaitingEvent }
}

/// The execution-level record.
public struct ExecutionSnapshot: Sendable, Equatable {
    public var status: ExecutionStatus
    public var startedAt: Date?
    public var endedAt: Date?
    /// 0…100, never decreasing.
    public var progress: Double
    /// The DAG's `outputs`, resolved when the execution completes.
    public var outputs: JSONObject?
    /// `{"error", "message", "step_id"?}` when the execution failed or was cancelled.
    public var errorInfo: JSONObject?

    public init(
        status: ExecutionStatus,
        startedAt: Date? = nil,
        endedAt: Date? = nil,
        progress: Double = 0,
        outputs: JSONObject? = nil,
        errorInfo: JSONObject? = nil
    ) {
        self.status = status
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.progress = progress
        self.outputs = outputs
        self.errorInfo = errorInfo
    }
}

/// A due-time the engine asked the runtime to keep. Setting a timer with the key of an existing
/// one moves it.
public struct EngineTimer: Sendable, Hashable {
    public enum Kind: String, Sendable {
        /// The next attempt of a step is due.
        case retry
        /// A step's attempt runs out of time (executing or awaiting an event).
        case stepDeadline = "step_deadline"
        /// A `wait_until` step wakes up.
        case wakeUp = "wake_up"
        /// The whole execution runs out of time.
        case executionDeadline = "execution_deadline"
    }

    public let kind: Kind
    public let stepID: String?
    public let attempt: Int?

    public init(kind: Kind, stepID: String? = nil, attempt: Int? = nil) {
        self.kind = kind
        self.stepID = stepID
        self.attempt = attempt
    }

    /// A stable text form, e.g. `retry:deploy:2`, for storage.
    public var key: String {
        [kind.rawValue, stepID, attempt.map(String.init)].compactMap { $0 }.joined(separator: ":")
    }

    /// Reads a key written by ``key``.
    public init?(key: String) {
        let parts = key.split(separator: ":", maxSplits: 1).map(String.init)
        guard let first = parts.first, let kind = Kind(rawValue: first) else { return nil }
        guard parts.count == 2 else {
            self.init(kind: kind)
            return
        }
        if let separator = parts[1].lastIndex(of: ":"), let attempt = Int(parts[1][parts[1].index(after: separator)...]) {
            self.init(kind: kind, stepID: String(parts[1][..<separator]), attempt: attempt)
        } else {
            self.init(kind: kind, stepID: parts[1])
        }
    }
}

/// A step for the runtime to run through a plugin.
public struct StepDispatch: Sendable, Equatable {
    public let stepID: String
    public let action: String
    public let attempt: Int
    /// `<execution id>/<step id>/<attempt>`: the same for every run of this attempt.
    public let idempotencyKey: String
    /// Parameters with templates resolved and the action's defaults applied.
    public let params: JSONObject
    /// Outputs of the steps the step depends on or reads, by step id.
    public let stepOutputs: JSONObject
    /// Time the call may take, when limited.
    public let timeoutSeconds: Int?
}

/// A step the runtime should tell its plugin about (`cleanup`) and whose late results it ignores.
public struct StepAbandonment: Sendable, Equatable {
    public let stepID: String
    public let action: String
    public let attempt: Int
    public let externalWorkflowID: String?
    public let reason: CleanupReason

    public init(stepID: String, action: String, attempt: Int, externalWorkflowID: String?, reason: CleanupReason) {
        self.stepID = stepID
        self.action = action
        self.attempt = attempt
        self.externalWorkflowID = externalWorkflowID
        self.reason = reason
    }
}

/// A line a `log` step writes.
public struct EngineLogLine: Sendable, Equatable {
    public let stepID: String
    /// `debug`, `info`, `warning` or `error`.
    public let level: String
    public let message: String

    public init(stepID: String, level: String, message: String) {
        self.stepID = stepID
        self.level = level
        self.message = message
    }
}

/// Something that happened, for publishing (docs/events.md maps these to the published events).
public enum EngineEvent: Sendable, Equatable {
    case executionStarted
    case stepStarted(stepID: String, name: String, sequence: Int, attempt: Int)
    case stepCompleted(stepID: String, name: String, outputs: JSONObject, durationSeconds: Double?)
    case stepFailed(stepID: String, name: String, status: StepStatus, error: String, tolerated: Bool)
    case stepSkipped(stepID: String, name: String, reason: String)
    case stepRetrying(stepID: String, name: String, nextAttempt: Int, delaySeconds: Double, error: String)
    case stepAwaitingEvent(stepID: String, name: String, externalWorkflowID: String)
    /// The execution's progress changed; `stepID` names the step whose report caused it, if any.
    case progress(percent: Double, etaSeconds: Int?, stepID: String?)
    /// `outputs` are the execution's final outputs; `stepOutputs` the outputs of every completed
    /// step by step id (what budapp reads from the completion notification).
    case executionCompleted(outputs: JSONObject, stepOutputs: JSONObject)
    case executionFailed(error: String)
    case executionCancelled(reason: String)
}

/// What the runtime must do after the engine handled an input. The runtime records every state
/// change, timer and event of one batch in one transaction, then performs dispatches and
/// abandonments.
public enum ExecutionAction: Sendable, Equatable {
    case stepChanged(StepState)
    case executionChanged(ExecutionSnapshot)
    case setTimer(EngineTimer, at: Date)
    case cancelTimer(EngineTimer)
    case emit(EngineEvent)
    case log(EngineLogLine)
    case abandon(StepAbandonment)
    case dispatch(StepDispatch)
    /// An input that no longer applies (a late result, a stale timer); for the runtime's log.
    case ignored(String)
}

/// Something that happened to an execution, for the engine to react to.
public enum ExecutionInput: Sendable, Equatable {
    case start
    /// The plugin's `execute` completed the step.
    case stepSucceeded(stepID: String, attempt: Int, outputs: JSONObject)
    /// The plugin's `execute` failed, could not be called, or ran past its time (a `timedOut`
    /// failure, whose `outputs` are not used: the step keeps those it had).
    case stepFailed(stepID: String, attempt: Int, failure: StepFailure, outputs: JSONObject)
    /// The plugin's `execute` started external work.
    case stepAwaitingEvent(stepID: String, attempt: Int, externalWorkflowID: String, timeoutSeconds: Int?, outputs: JSONObject)
    /// An event finished an awaiting step (the plugin's `on_event` said `complete`).
    case eventCompletedStep(stepID: String, status: StepCompletionStatus, outputs: JSONObject, error: String?)
    /// A step reported progress (from `execute` or an event).
    case stepProgress(stepID: String, percent: Double?, etaSeconds: Int?, message: String?)
    case timerFired(EngineTimer)
    case cancel(reason: String)
    /// The process died while working on the step too many times: it fails with `error`, without
    /// another call to its plugin (not even `cleanup`), and the failure policy applies.
    case stepInterrupted(stepID: String, error: String)
}

/// Engine-wide defaults.
public struct EngineOptions: Sendable, Equatable {
    /// How long a step may await an event when neither the plugin nor the step says.
    public var defaultAwaitTimeoutSeconds: Int
    /// Retry settings of `on_failure: retry` steps when neither the step, the settings nor the action say.
    public var defaultRetry: RetrySettings
    /// What one template evaluation may do.
    public var templateLimits: TemplateLimits
    /// How large what an execution stores may be.
    public var storedSizes: StoredSizeLimits

    public init(
        defaultAwaitTimeoutSeconds: Int = 1800, defaultRetry: RetrySettings = RetrySettings(),
        templateLimits: TemplateLimits = TemplateLimits(), storedSizes: StoredSizeLimits = StoredSizeLimits()
    ) {
        self.defaultAwaitTimeoutSeconds = defaultAwaitTimeoutSeconds
        self.defaultRetry = defaultRetry
        self.templateLimits = templateLimits
        self.storedSizes = storedSizes
    }
}

/// Resolved retry settings.
public struct RetrySettings: Sendable, Equatable {
    public var maxAttempts: Int
    public var backoffSeconds: Double
    public var backoffMultiplier: Double
    public var maxBackoffSeconds: Double

    public init(maxAttempts: Int = 3, backoffSeconds: Double = 60, backoffMultiplier: Double = 2, maxBackoffSeconds: Double = 3600) {
        self.maxAttempts = maxAttempts
        self.backoffSeconds = backoffSeconds
        self.backoffMultiplier = backoffMultiplier
        self.maxBackoffSeconds = maxBackoffSeconds
    }

    /// Settings from numbers a pipeline gave (possibly through templates); `nil` unless every one
    /// is finite and within its bounds: 1–1,000 attempts, a multiplier of 1–100, backoffs of at
    /// most a year.
    public init?(checking attempts: Double, backoffSeconds: Double, backoffMultiplier: Double, maxBackoffSeconds: Double) {
        guard attempts >= 1, attempts <= 1000, attempts.rounded() == attempts, backoffMultiplier >= 1, backoffMultiplier <= 100,
            DurationLimits.allows(backoffSeconds), DurationLimits.allows(maxBackoffSeconds)
        else { return nil }
        self.init(
            maxAttempts: Int(attempts), backoffSeconds: backoffSeconds, backoffMultiplier: backoffMultiplier,
            maxBackoffSeconds: maxBackoffSeconds)
    }

    /// The delay before attempt `nextAttempt` (1 for the first retry): the backoff grows by the
    /// multiplier after each retry and never exceeds the maximum.
    ///
    /// Always a finite number of seconds within `0...maxBackoffSeconds` (at most a year), whatever
    /// the settings hold.
    public func delay(beforeAttempt nextAttempt: Int) -> Double {
        let ceiling = DurationLimits.clamp(maxBackoffSeconds) ?? 0
        let growth = pow(backoffMultiplier, Double(max(0, nextAttempt - 1)))
        let delay = backoffSeconds * growth
        guard backoffSeconds > 0, delay.isFinite else { return backoffSeconds > 0 ? ceiling : 0 }
        return min(delay, ceiling)
    }
}

/// How large what an execution stores may be, in bytes of JSON text (see docs/operations.md,
/// "Limits"). A step whose parameters or outputs would pass a limit fails with a message naming
/// it, before anything is stored; a log line is cut with a marker.
public struct StoredSizeLimits: Sendable, Equatable {
    /// A step's resolved parameters.
    public var maximumStepParamsBytes: Int
    /// A step's outputs.
    public var maximumStepOutputsBytes: Int
    /// The execution's parameters and every step's outputs together.
    public var maximumExecutionBytes: Int
    /// One log line a `log` step writes.
    public var maximumLogLineBytes: Int

    public static let defaultMaximumStepParamsBytes = 1 << 20
    public static let defaultMaximumStepOutputsBytes = 1 << 20
    public static let defaultMaximumExecutionBytes = 16 << 20
    public static let defaultMaximumLogLineBytes = 8 << 10

    public init(
        maximumStepParamsBytes: Int = defaultMaximumStepParamsBytes, maximumStepOutputsBytes: Int = defaultMaximumStepOutputsBytes,
        maximumExecutionBytes: Int = defaultMaximumExecutionBytes, maximumLogLineBytes: Int = defaultMaximumLogLineBytes
    ) {
        self.maximumStepParamsBytes = max(2, maximumStepParamsBytes)
        self.maximumStepOutputsBytes = max(2, maximumStepOutputsBytes)
        self.maximumExecutionBytes = max(2, maximumExecutionBytes)
        self.maximumLogLineBytes = max(64, maximumLogLineBytes)
    }
}
