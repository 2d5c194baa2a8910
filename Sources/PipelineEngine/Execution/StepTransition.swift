/// Why a step attempt failed: what the engine decides on (retry, tolerate, fail the execution)
/// and the message people read.
public struct StepFailure: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        /// Another attempt would fail the same way (bad parameters, a template error, a refusal by
        /// the plugin): never retried.
        case permanent
        /// Another attempt may succeed (an outage, a crash, a plugin that asked for a retry):
        /// retried when the step's `on_failure` is `retry` and attempts are left.
        case retryable
        /// The attempt ran or waited past its time: retried like ``retryable``; when no attempt is
        /// left the step ends `TIMEOUT` rather than `FAILED`.
        case timedOut
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public static func permanent(_ message: String) -> StepFailure { StepFailure(.permanent, message) }
    public static func retryable(_ message: String) -> StepFailure { StepFailure(.retryable, message) }
    public static func timedOut(_ message: String) -> StepFailure { StepFailure(.timedOut, message) }

    /// Whether another attempt may be made.
    public var allowsRetry: Bool { kind != .permanent }
}

/// Every change of a step's status the engine makes, named by its cause. ``ExecutionStateMachine``
/// changes a status only along this table: a move from a status the table does not list is an
/// engine fault, logged as such. The engine's tests take every transition and check that no fault
/// is logged.
public enum StepTransition: String, Sendable, CaseIterable {
    /// Its dependencies settled and a slot was free: the step runs (a built-in right away, a
    /// plugin action through a dispatch).
    case start
    /// Its action started external work; an event or its deadline will settle it.
    case awaitEvent
    /// Its action, an event or its wake-up time completed it.
    case complete
    /// It did not run: its condition was false, a branch chose another step, or an upstream step
    /// did not succeed.
    case skip
    /// Its attempt failed and another is allowed: it waits for the retry timer.
    case scheduleRetry
    /// Its retry timer fired: the next attempt waits for a slot like a new step.
    case retryDue
    /// Its attempt failed and no other follows (or the process kept dying on it).
    case fail
    /// Its attempt ran or waited past its time and no other follows.
    case timeOut
    /// The execution ended (failed, timed out, cancelled) while the step ran, waited or was due
    /// for a retry: its work is abandoned.
    case abandon
    /// The execution ended before the step started.
    case skipUnstarted

    /// The statuses the transition leaves from.
    public var sources: Set<StepStatus> { Set(StepStatus.allCases.filter(leaves)) }

    /// Whether the transition leaves from `status` (what ``sources`` lists, without building a
    /// set: the engine asks on every move).
    public func leaves(_ status: StepStatus) -> Bool {
        switch self {
        case .start, .skip, .skipUnstarted: status == .pending
        case .awaitEvent: status == .running
        case .complete, .scheduleRetry, .timeOut: status == .running || status == .awaitingEvent
        case .retryDue: status == .retrying
        case .fail, .abandon: status == .running || status == .awaitingEvent || status == .retrying
        }
    }

    /// The status the transition arrives at.
    public var target: StepStatus {
        switch self {
        case .start: .running
        case .awaitEvent: .awaitingEvent
        case .complete: .completed
        case .skip, .skipUnstarted: .skipped
        case .scheduleRetry: .retrying
        case .retryDue: .pending
        case .fail: .failed
        case .timeOut: .timedOut
        case .abandon: .cancelled
        }
    }
}

/// A set of step transitions, as compact as a machine word.
public struct StepTransitions: Sendable, Equatable {
    private var bits: UInt32 = 0

    public init() {}

    public init(_ transitions: some Sequence<StepTransition>) {
        for transition in transitions { insert(transition) }
    }

    public mutating func insert(_ transition: StepTransition) {
        bits |= 1 << Self.position(of: transition)
    }

    public func contains(_ transition: StepTransition) -> Bool {
        bits & (1 << Self.position(of: transition)) != 0
    }

    public mutating func formUnion(_ other: StepTransitions) {
        bits |= other.bits
    }

    /// The transitions of the set, in declaration order.
    public var members: [StepTransition] { StepTransition.allCases.filter(contains) }

    private static func position(of transition: StepTransition) -> UInt32 {
        switch transition {
        case .start: 0
        case .awaitEvent: 1
        case .complete: 2
        case .skip: 3
        case .scheduleRetry: 4
        case .retryDue: 5
        case .fail: 6
        case .timeOut: 7
        case .abandon: 8
        case .skipUnstarted: 9
        }
    }
}
