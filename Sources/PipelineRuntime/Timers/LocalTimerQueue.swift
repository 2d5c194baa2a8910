import Foundation
import HeapModule
import PipelineEngine
import Scheduling
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
        let executionID: ExecutionID
        let key: String
    }

    private struct State {
        var heap = Heap<Entry>()
        /// The current due time of each live timer; heap entries that disagree are stale.
        var current: [TimerID: Date] = [:]

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
    /// The timer loop's sleep, cut short when an earlier timer arrives.
    let alarm = Alarm()

    var count: Int { state.withLock { $0.current.count } }

    func apply(_ effects: [TimerEffect], executionID: ExecutionID) {
        guard !effects.isEmpty else { return }
        let earliest = state.withLock { state -> Date? in
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
            return earliest
        }
        if let earliest { alarm.wake(ifSleepingBeyond: alarm.instant(at: earliest)) }
    }

    /// Forgets every timer of an execution (it finished).
    func removeAll(executionID: ExecutionID) {
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
    /// is called or the calling task is cancelled (a cancelled task returns at once). A timer
    /// added while nobody sleeps ends the next sleep at once, so the loop looks at it again.
    func sleep(until deadline: Date) async {
        await alarm.sleep(untilDate: deadline)
    }

    /// Ends the current sleep at once.
    func wake() {
        alarm.wake()
    }
}
