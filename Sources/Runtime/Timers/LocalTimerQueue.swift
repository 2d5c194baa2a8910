import Foundation
import HeapModule
import Storage
import Synchronization

/// The timers this process set, in due order, so that each fires on time without asking the
/// database. A timer cancelled or moved is dropped lazily when it reaches the front.
final class LocalTimerQueue: Sendable {
    private struct Entry: Comparable {
        let dueAt: Date
        let timer: TimerRecord

        static func < (lhs: Entry, rhs: Entry) -> Bool { lhs.dueAt < rhs.dueAt }
        static func == (lhs: Entry, rhs: Entry) -> Bool { lhs.dueAt == rhs.dueAt && lhs.timer == rhs.timer }
    }

    private struct TimerID: Hashable {
        let executionID: String
        let key: String
    }

    private struct State {
        var heap = Heap<Entry>()
        /// The current due time of each live timer; heap entries that disagree are stale.
        var current: [TimerID: Date] = [:]
        /// The sleeping timer loop, woken when an earlier timer arrives.
        var sleeper: Task<Void, Never>?
        var sleepingUntil: Date?
        /// A wake-up that came while nobody slept: the next sleep returns at once.
        var pendingWake = false

        /// The due time of the first live timer, dropping stale entries on the way.
        mutating func earliestLive() -> Date? {
            while let first = heap.min {
                if current[TimerID(executionID: first.timer.executionID, key: first.timer.key)] == first.dueAt { return first.dueAt }
                heap.removeMin()
            }
            return nil
        }
    }

    private let state = Mutex(State())

    var count: Int { state.withLock { $0.current.count } }

    func apply(_ effects: [TimerEffect], executionID: String) {
        guard !effects.isEmpty else { return }
        let wake = state.withLock { state -> Task<Void, Never>? in
            var earliest: Date?
            for effect in effects {
                switch effect {
                case .set(let timer):
                    state.current[TimerID(executionID: timer.executionID, key: timer.key)] = timer.dueAt
                    state.heap.insert(Entry(dueAt: timer.dueAt, timer: timer))
                    earliest = min(earliest ?? timer.dueAt, timer.dueAt)
                case .cancel(let key):
                    state.current[TimerID(executionID: executionID, key: key)] = nil
                }
            }
            guard let earliest, let sleepingUntil = state.sleepingUntil, earliest < sleepingUntil else { return nil }
            return state.sleeper
        }
        wake?.cancel()
    }

    /// Forgets every timer of an execution (it finished).
    func removeAll(executionID: String) {
        state.withLock { state in
            state.current = state.current.filter { $0.key.executionID != executionID }
        }
    }

    /// Removes and returns the timers due at `now`.
    func takeDue(now: Date) -> [TimerRecord] {
        state.withLock { state in
            var due: [TimerRecord] = []
            while let first = state.heap.min, first.dueAt <= now {
                state.heap.removeMin()
                let id = TimerID(executionID: first.timer.executionID, key: first.timer.key)
                guard state.current[id] == first.dueAt else { continue }
                state.current[id] = nil
                due.append(first.timer)
            }
            return due
        }
    }

    /// When the next live timer is due.
    func nextDue() -> Date? {
        state.withLock { $0.earliestLive() }
    }

    /// Sleeps until `deadline` (at most a day), or less when an earlier timer is added, `wake()`
    /// is called or the calling task is cancelled (a cancelled task returns at once).
    func sleep(until deadline: Date) async {
        let interval = min(deadline.timeIntervalSinceNow, 86_400)
        guard interval > 0, !Task.isCancelled else { return }
        // Its own task, so that a wake-up cancels the sleep and not the caller.
        let sleeper = Task { _ = try? await Task.sleep(for: .nanoseconds(Int64(interval * 1e9))) }
        let sleeps = state.withLock { state -> Bool in
            if state.pendingWake {
                state.pendingWake = false
                return false
            }
            if let next = state.earliestLive(), next < deadline { return false }
            state.sleeper = sleeper
            state.sleepingUntil = deadline
            return true
        }
        guard sleeps else {
            sleeper.cancel()
            return
        }
        await withTaskCancellationHandler {
            await sleeper.value
        } onCancel: {
            sleeper.cancel()
        }
        state.withLock { state in
            state.sleeper = nil
            state.sleepingUntil = nil
        }
    }

    /// Ends the current sleep at once.
    func wake() {
        let sleeper = state.withLock { state -> Task<Void, Never>? in
            if state.sleeper == nil { state.pendingWake = true }
            return state.sleeper
        }
        sleeper?.cancel()
    }
}
