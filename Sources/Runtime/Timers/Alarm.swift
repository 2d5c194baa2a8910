import Foundation
import Synchronization

/// A sleep that another task can cut short: `wake()` ends the current sleep, or the next one
/// when nobody sleeps (so a wake-up between two sleeps is not lost).
final class Alarm: Sendable {
    private struct State {
        var sleeper: Task<Void, Never>?
        var pendingWake = false
    }

    private let state = Mutex(State())

    /// Sleeps until `deadline`, a wake-up, or cancellation of the sleeping task's group.
    func sleep(until deadline: Date) async {
        let interval = min(deadline.timeIntervalSinceNow, 86_400)
        guard interval > 0 else { return }
        let sleeper = Task { _ = try? await Task.sleep(for: .nanoseconds(Int64(interval * 1e9))) }
        let sleeps = state.withLock { state -> Bool in
            guard !state.pendingWake else {
                state.pendingWake = false
                return false
            }
            state.sleeper = sleeper
            return true
        }
        guard sleeps else {
            sleeper.cancel()
            return
        }
        await sleeper.value
        state.withLock { $0.sleeper = nil }
    }

    func wake() {
        let sleeper = state.withLock { state -> Task<Void, Never>? in
            if state.sleeper == nil { state.pendingWake = true }
            return state.sleeper
        }
        sleeper?.cancel()
    }
}
