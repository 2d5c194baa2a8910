import Synchronization

/// A ``RateLimitTable`` shared by every request: one lock held for a table lookup, no other work
/// under it, no allocation past the table's growth to its bound.
final class RateLimiter: Sendable {
    let readBudget: RateLimitBudget?
    let startBudget: RateLimitBudget?
    private let table: Mutex<State>
    /// Nanoseconds on a monotonic clock.
    private let now: @Sendable () -> Int64

    private struct State {
        var table: RateLimitTable
        /// When a still-limited key was last forgotten for room (for a warning a window at most).
        var lastEvictionWarning: Int64?
    }

    /// How long between two warnings that the table is full of limited keys.
    static let evictionWarningInterval = RateLimitTable.nanoseconds(.seconds(60))

    /// A limiter for `settings`, reading time from `now` (nanoseconds on a monotonic clock; the
    /// process's continuous clock by default).
    init(settings: RateLimitSettings, now: (@Sendable () -> Int64)? = nil) {
        readBudget = RateLimitBudget(limit: settings.readsPerMinute)
        startBudget = RateLimitBudget(limit: settings.startsPerMinute)
        table = Mutex(State(table: RateLimitTable(maximumKeys: settings.maximumKeys)))
        if let now {
            self.now = now
        } else {
            let start = ContinuousClock.now
            self.now = { RateLimitTable.nanoseconds(ContinuousClock.now - start) }
        }
    }

    /// The budget of `kind`; `nil` when it is not limited.
    func budget(_ kind: RateLimitBudget.Kind) -> RateLimitBudget? {
        kind == .executionReads ? readBudget : startBudget
    }

    /// Counts one request of `client` against its budget of `kind`; `nil` when that budget is not
    /// limited. `warnAboutEviction` is set (once a minute at most) when the table was full of
    /// limited keys and one was forgotten to make room.
    func check(_ client: RateLimitClient, _ kind: RateLimitBudget.Kind) -> (decision: RateLimitDecision, warnAboutEviction: Bool)? {
        guard let budget = budget(kind) else { return nil }
        let now = now()
        return table.withLock { state in
            let decision = state.table.check(RateLimitKey(client: client, budget: kind), budget: budget, now: now)
            guard decision.evictedActiveKey else { return (decision, false) }
            if let last = state.lastEvictionWarning, now - last < Self.evictionWarningInterval { return (decision, false) }
            state.lastEvictionWarning = now
            return (decision, true)
        }
    }

    /// The keys remembered now.
    var count: Int { table.withLock { $0.table.count } }
}
