import Synchronization

/// A sleep on a clock that another task can end early: the one waiting primitive of the server's
/// timers and background services.
///
/// Guarantees:
/// - `wake()` ends the sleep in progress; when nobody sleeps, it ends the next sleep at once, so
///   a wake-up that arrives between two sleeps is never lost.
/// - A sleep ends at its deadline, on a wake-up, or when the sleeping task is cancelled (a task
///   cancelled before it sleeps returns at once), whichever comes first.
/// - No task outlives a sleep: the clock's sleep and the wait for a wake-up are child tasks of the
///   sleeping task, both finished before `sleep` returns.
///
/// One task sleeps at a time; a second concurrent sleeper ends the first one's sleep as a wake-up.
public final class Alarm<C: Clock>: Sendable where C.Duration == Duration {
    /// Why a sleep ended.
    public enum Ending: Sendable, Equatable {
        case deadline
        case woken
        case cancelled
    }

    private struct State {
        var waiter: CheckedContinuation<Void, Never>?
        /// The sleep the stored waiter belongs to, and the one `sleepingUntil` belongs to.
        var waiterSleep: UInt64 = 0
        var deadlineSleep: UInt64 = 0
        var lastSleep: UInt64 = 0
        var pendingWake = false
        var sleepingUntil: C.Instant?
    }

    public let clock: C
    private let state = Mutex(State())

    public init(clock: C) {
        self.clock = clock
    }

    /// The deadline of the sleep in progress, `nil` when nobody sleeps.
    public var sleepingUntil: C.Instant? { state.withLock { $0.sleepingUntil } }

    /// Sleeps for `duration` (nothing when it is not positive) on the alarm's clock.
    @discardableResult
    public func sleep(for duration: Duration) async -> Ending {
        await sleep(until: clock.now.advanced(by: duration))
    }

    /// Sleeps until `deadline`, a wake-up or the cancellation of the calling task.
    @discardableResult
    public func sleep(until deadline: C.Instant) async -> Ending {
        if Task.isCancelled { return .cancelled }
        if takePendingWake() { return .woken }
        guard clock.now < deadline else { return .deadline }
        let sleep = state.withLock { state -> UInt64 in
            state.lastSleep &+= 1
            state.deadlineSleep = state.lastSleep
            state.sleepingUntil = deadline
            return state.lastSleep
        }
        defer {
            state.withLock { state in
                if state.deadlineSleep == sleep { state.sleepingUntil = nil }
            }
        }
        return await withTaskGroup(of: Ending.self) { group in
            group.addTask { [clock] in
                do {
                    try await clock.sleep(until: deadline, tolerance: nil)
                    return .deadline
                } catch {
                    return .cancelled
                }
            }
            group.addTask { [self] in
                await waitForWake(sleep)
                return Task.isCancelled ? .cancelled : .woken
            }
            let first = await group.next() ?? .cancelled
            group.cancelAll()
            return Task.isCancelled ? .cancelled : first
        }
    }

    /// Ends the sleep in progress, or the next one when nobody sleeps.
    public func wake() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            defer { state.waiter = nil }
            if state.waiter == nil { state.pendingWake = true }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Ends the sleep in progress when it would last beyond `instant`; when nobody sleeps, ends
    /// the next sleep at once (the sleeper may not have seen what made `instant` due).
    public func wake(ifSleepingBeyond instant: C.Instant) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let until = state.sleepingUntil, until <= instant { return nil }
            defer { state.waiter = nil }
            if state.waiter == nil { state.pendingWake = true }
            return state.waiter
        }
        waiter?.resume()
    }

    private func takePendingWake() -> Bool {
        state.withLock { state in
            defer { state.pendingWake = false }
            return state.pendingWake
        }
    }

    /// Returns on a wake-up or when the calling task is cancelled; `sleep` tells this sleep's
    /// waiter from a later sleeper's.
    private func waitForWake(_ sleep: UInt64) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let (resumeNow, displaced) = state.withLock { state -> (Bool, CheckedContinuation<Void, Never>?) in
                    // Checked under the lock that the cancellation handler takes: a cancellation
                    // either is seen here or finds the continuation stored.
                    if Task.isCancelled { return (true, nil) }
                    if state.pendingWake {
                        state.pendingWake = false
                        return (true, nil)
                    }
                    defer {
                        state.waiter = continuation
                        state.waiterSleep = sleep
                    }
                    return (false, state.waiter)
                }
                displaced?.resume()
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            // Only this sleep's waiter: another sleeper may have taken the alarm since.
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                guard state.waiterSleep == sleep else { return nil }
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }
    }
}

extension Alarm where C == ContinuousClock {
    /// An alarm on the continuous clock: the one the server's services sleep on.
    public convenience init() {
        self.init(clock: ContinuousClock())
    }
}
