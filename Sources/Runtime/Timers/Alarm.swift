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

    /// Sleeps until `deadline` (at most a day), a wake-up, or cancellation of the calling task:
    /// a cancelled task returns at once, and a sleep in progress ends when its task is cancelled.
    func sleep(until deadline: Date) async {
        let interval = min(deadline.timeIntervalSinceNow, 86_400)
        guard interval > 0, !Task.isCancelled else { return }
        // The sleep runs in a task of its own so that `wake()` can cancel it without cancelling
        // the caller; the cancellation handler forwards the caller's cancellation to it.
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
        await withTaskCancellationHandler {
            await sleeper.value
        } onCancel: {
            sleeper.cancel()
        }
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
