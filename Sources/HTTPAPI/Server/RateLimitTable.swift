import Foundation

/// Who a request is counted against, in a fixed-size form (no key holds heap memory).
enum RateLimitClient: Hashable, Sendable {
    /// A caller that sent a valid `X-User-ID`.
    case user(UUID)
    /// A peer address: IPv4 addresses whole, IPv6 addresses by their /64 network (what one
    /// subscriber usually gets).
    case ipv4(UInt32)
    case ipv6Network(UInt64)
    /// A peer whose address is not an IP address (a Unix socket, or unknown).
    case otherPeer
    /// The service-level caller (budapp with the service token, no user header).
    case serviceCaller
}

/// One budget of one client: reads and starts are counted apart.
struct RateLimitKey: Hashable, Sendable {
    var client: RateLimitClient
    var budget: RateLimitBudget.Kind
}

/// How many requests a key may make per window, as the generic cell rate algorithm sees it: one
/// request costs `interval`, and a key may run up to `limit` requests ahead of the clock.
struct RateLimitBudget: Sendable, Equatable {
    /// The two budgets the API has.
    enum Kind: UInt8, Hashable, Sendable {
        case executionReads
        case executionStarts
    }

    /// Requests per window; at least 1.
    let limit: Int
    /// The cost of one request, in nanoseconds: the window divided by `limit`, rounded down.
    let interval: Int64
    /// How far ahead of the clock a key may be: `limit` requests' worth. Exactly `limit` requests
    /// fit in it, the rounding of `interval` notwithstanding.
    var capacity: Int64 { interval * Int64(limit) }

    /// `limit` requests per `window`; `nil` when `limit` is 0 (not limited) or out of range.
    init?(limit: Int, window: Duration = .seconds(60)) {
        let windowNanoseconds = RateLimitTable.nanoseconds(window)
        guard limit >= 1, limit <= RateLimitSettings.perMinuteRange.upperBound, windowNanoseconds >= Int64(limit) else { return nil }
        self.limit = limit
        self.interval = windowNanoseconds / Int64(limit)
    }
}

/// What the limiter decided for one request.
struct RateLimitDecision: Sendable, Equatable {
    var allowed: Bool
    var limit: Int
    /// Requests the key may still make at once after this one (0 when refused).
    var remaining: Int
    /// Nanoseconds until a request of this key would be allowed; 0 when this one was.
    var retryAfter: Int64
    /// Nanoseconds until the key has its whole budget again.
    var resetAfter: Int64
    /// Making room for this key forgot a key that was still limited (the table was full).
    var evictedActiveKey = false

    /// Whole seconds, rounded up: `Retry-After` and `X-RateLimit-Reset` take seconds.
    static func seconds(roundingUp nanoseconds: Int64) -> Int {
        Int((max(0, nanoseconds) + 999_999_999) / 1_000_000_000)
    }
}

/// The limiter's memory: for each key one number, its theoretical arrival time (the generic cell
/// rate algorithm, GCRA), in a table of at most `maximumKeys` keys kept in least-recently-seen
/// order. A pure value: time is given to every call, so it is tested without a clock.
///
/// Guarantees:
/// - A key is allowed `limit` requests at once; after that one request per `interval`
///   (`limit` per window on average). A refused request costs nothing.
/// - A key whose arrival time has passed has its whole budget back, exactly as if it had never
///   been seen; such keys are dropped from the least-recently-seen end, up to two per check, so
///   the table shrinks as traffic goes on. Forgetting them changes no decision.
/// - The table never holds more than `maximumKeys` keys: a new key when it is full takes the
///   place of the least recently seen key, even one still limited (that key then starts afresh,
///   the decision says so in ``RateLimitDecision/evictedActiveKey``). Keys that keep coming are
///   the most recently seen, so they stay counted. Every operation is O(1).
struct RateLimitTable: Sendable {
    /// A slot of the table: a key, its arrival time and its neighbours in seen order.
    private struct Slot: Sendable {
        var key: RateLimitKey
        var arrival: Int64
        /// The slot seen just after this one (towards the newest), or `none`.
        var newer: Int
        /// The slot seen just before this one (towards the oldest), or `none`.
        var older: Int
    }

    private static let none = -1

    let maximumKeys: Int
    private var slots: [Slot] = []
    private var freeSlots: [Int] = []
    private var slotByKey: [RateLimitKey: Int] = [:]
    private var newest = none
    private var oldest = none

    /// The keys tracked now.
    var count: Int { slotByKey.count }

    /// A table that tracks at most `maximumKeys` keys (at least one).
    init(maximumKeys: Int) {
        self.maximumKeys = max(1, maximumKeys)
    }

    /// Counts a request of `key` against `budget` at time `now` (nanoseconds on a monotonic
    /// clock) and says whether it is allowed.
    mutating func check(_ key: RateLimitKey, budget: RateLimitBudget, now: Int64) -> RateLimitDecision {
        dropExpired(now: now, atMost: 2)
        var evictedActiveKey = false
        let slot: Int
        if let found = slotByKey[key] {
            slot = found
            moveToNewest(slot)
        } else {
            if slotByKey.count >= maximumKeys {
                evictedActiveKey = slots[oldest].arrival > now
                remove(oldest)
            }
            slot = insert(key, arrival: now)
        }
        let arrival = max(slots[slot].arrival, now)
        let next = arrival + budget.interval
        guard next - now <= budget.capacity else {
            return RateLimitDecision(
                allowed: false, limit: budget.limit, remaining: 0, retryAfter: next - budget.capacity - now, resetAfter: arrival - now,
                evictedActiveKey: evictedActiveKey)
        }
        slots[slot].arrival = next
        return RateLimitDecision(
            allowed: true, limit: budget.limit, remaining: Int((budget.capacity - (next - now)) / budget.interval), retryAfter: 0,
            resetAfter: next - now, evictedActiveKey: evictedActiveKey)
    }

    /// Drops up to `atMost` keys from the least-recently-seen end whose budget is whole again.
    mutating func dropExpired(now: Int64, atMost: Int) {
        var dropped = 0
        while dropped < atMost, oldest != Self.none, slots[oldest].arrival <= now {
            remove(oldest)
            dropped += 1
        }
    }

    // MARK: Seen order

    private mutating func insert(_ key: RateLimitKey, arrival: Int64) -> Int {
        let entry = Slot(key: key, arrival: arrival, newer: Self.none, older: newest)
        let slot: Int
        if let reused = freeSlots.popLast() {
            slot = reused
            slots[slot] = entry
        } else {
            slot = slots.count
            slots.append(entry)
        }
        if newest != Self.none { slots[newest].newer = slot }
        newest = slot
        if oldest == Self.none { oldest = slot }
        slotByKey[key] = slot
        return slot
    }

    private mutating func remove(_ slot: Int) {
        unlink(slot)
        slotByKey[slots[slot].key] = nil
        freeSlots.append(slot)
    }

    private mutating func moveToNewest(_ slot: Int) {
        guard slot != newest else { return }
        unlink(slot)
        slots[slot].older = newest
        slots[slot].newer = Self.none
        if newest != Self.none { slots[newest].newer = slot }
        newest = slot
        if oldest == Self.none { oldest = slot }
    }

    private mutating func unlink(_ slot: Int) {
        let (newer, older) = (slots[slot].newer, slots[slot].older)
        if newer != Self.none { slots[newer].older = older } else { newest = older }
        if older != Self.none { slots[older].newer = newer } else { oldest = newer }
    }

    /// `duration` in nanoseconds, clamped to what an `Int64` holds.
    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return seconds < 0 ? .min : .max }
        let (total, overflowAgain) = whole.addingReportingOverflow(attoseconds / 1_000_000_000)
        return overflowAgain ? (whole < 0 ? .min : .max) : total
    }
}
