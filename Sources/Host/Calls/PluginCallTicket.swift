import Dispatch
import Synchronization

/// What the owner of a ticket learns about the call's fate.
struct PluginCallEvents: Sendable {
    /// The error the caller gets when the deadline passes; `running` tells whether the call had started.
    var timeoutError: @Sendable (_ running: Bool) -> any Error
    /// The call overran its deadline (called on the watchdog thread).
    var overran: @Sendable () -> Void
    /// A call that overran has finally returned (called on its pool thread).
    var returnedLate: @Sendable () -> Void
    /// Asks the running call to stop (the caller's deadline passed or its task was cancelled).
    var cancelRunning: @Sendable () -> Void
}

/// One call waiting for, or running on, a pool thread, and the task awaiting its result.
///
/// Exactly one of the worker (normal completion), the watchdog (deadline) or the caller's task
/// (cancellation) ends the wait; an atomic phase decides which.
final class PluginCallTicket<Value: Sendable>: PoolJob {
    private enum Phase: UInt8 {
        /// Waiting for a thread.
        case queued
        /// Running; the caller waits for it.
        case running
        /// Finished in time; the caller has the result.
        case done
        /// Timed out before a thread took it.
        case expiredWaiting
        /// Still running at the deadline; the caller got a timeout and the thread is stuck.
        case overran
        /// The caller's task was cancelled while the call ran; the call goes on unobserved.
        case detached
        /// The caller's task was cancelled before the call started.
        case cancelled
    }

    let serialKey: ObjectIdentifier?
    let deadline: UInt64
    private let phase = Atomic<UInt8>(Phase.queued.rawValue)
    private let continuation = Mutex<CheckedContinuation<Value, any Error>?>(nil)
    private let work: @Sendable () -> Value
    private let events: PluginCallEvents

    init(serialKey: ObjectIdentifier?, timeout: Duration, work: @escaping @Sendable () -> Value, events: PluginCallEvents) {
        self.serialKey = serialKey
        let (seconds, attoseconds) = timeout.components
        // Ten years at the most: longer is "never" in effect, and the nanoseconds stay in range.
        let boundedSeconds = min(max(0, seconds), 315_360_000)
        let nanoseconds = boundedSeconds * 1_000_000_000 + max(0, attoseconds / 1_000_000_000)
        let (deadline, overflow) = DispatchTime.now().uptimeNanoseconds.addingReportingOverflow(UInt64(nanoseconds))
        self.deadline = overflow ? UInt64.max - 1 : deadline
        self.work = work
        self.events = events
    }

    /// Runs the call on `pool` and waits for its result, its deadline or the task's cancellation.
    func value(on pool: PluginThreadPool, shutDownError: @autoclosure () -> any Error) async throws -> Value {
        let rejected = shutDownError()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Value, any Error>) in
                self.continuation.withLock { $0 = continuation }
                if Phase(rawValue: phase.load(ordering: .acquiring)) == .cancelled {
                    resume(throwing: CancellationError())
                } else if !pool.submit(self) {
                    if transition(from: .queued, to: .cancelled) { resume(throwing: rejected) }
                }
            }
        } onCancel: {
            cancel()
        }
    }

    // MARK: PoolJob

    func claim() -> Bool {
        transition(from: .queued, to: .running)
    }

    func run() {
        let value = work()
        if transition(from: .running, to: .done) {
            resume(returning: value)
        } else if Phase(rawValue: phase.load(ordering: .acquiring)) == .overran {
            events.returnedLate()
        }
    }

    func expire() -> JobExpiry {
        if transition(from: .queued, to: .expiredWaiting) {
            resume(throwing: events.timeoutError(false))
            return .expiredWaiting
        }
        if transition(from: .running, to: .overran) {
            events.cancelRunning()
            events.overran()
            resume(throwing: events.timeoutError(true))
            return .overran
        }
        if transition(from: .detached, to: .overran) {
            events.overran()
            return .overran
        }
        return .nothing
    }

    var overran: Bool {
        Phase(rawValue: phase.load(ordering: .acquiring)) == .overran
    }

    // MARK: Private

    private func cancel() {
        if transition(from: .queued, to: .cancelled) {
            resume(throwing: CancellationError())
        } else if transition(from: .running, to: .detached) {
            events.cancelRunning()
            resume(throwing: CancellationError())
        }
    }

    private func transition(from: Phase, to: Phase) -> Bool {
        phase.compareExchange(expected: from.rawValue, desired: to.rawValue, ordering: .acquiringAndReleasing).exchanged
    }

    private func resume(returning value: Value) {
        continuation.withLock { $0.take() }?.resume(returning: value)
    }

    private func resume(throwing error: any Error) {
        continuation.withLock { $0.take() }?.resume(throwing: error)
    }
}
