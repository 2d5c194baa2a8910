import BudJSON
import Foundation
import PipelineEngine
import Scheduling
import Synchronization

/// This process's side of the talk between the processes sharing a database: which executions
/// other processes stream (so that this one forwards their events) and which this one streams
/// (so that it tells the others), and the messages waiting to be sent. ``ClusterService`` sends
/// and receives them; everything here is memory only.
///
/// Nothing is sent while the process is alone on its database or not in a group (SQLite): the
/// relay is then a few checks of an empty dictionary per transition.
final class ClusterRelay: Sendable {
    /// How long another process's watch counts without being repeated.
    static let watchLifetime: Duration = .seconds(15)
    /// How often this process repeats its own watches.
    static let watchRepeat: Duration = .seconds(5)
    /// The most executions one watch message names (a message stays under the channel's limit).
    static let executionsPerWatch = 100
    /// The most (execution, process) watches kept at once; more are ignored (a bound on memory
    /// whatever arrives on the channel).
    static let maximumRemoteWatches = 100_000
    /// The most messages waiting to be sent; live events beyond it are dropped (the streams that
    /// wanted them read the execution again) rather than memory growing with a slow database.
    static let maximumOutgoing = 50_000

    private struct State {
        var joined = false
        /// Executions streamed by other processes, by process, until when the watch counts.
        var remoteWatches: [ExecutionID: [String: ContinuousClock.Instant]] = [:]
        /// How many (execution, process) pairs `remoteWatches` holds.
        var remoteWatchCount = 0
        /// How many streams of this process follow each execution.
        var localWatches: [ExecutionID: Int] = [:]
        var outgoing: [String] = []
        /// Live events dropped because `outgoing` was full, by execution: their streams resync.
        var overflowed: Set<ExecutionID> = []
        /// Streams waiting for their execution's watch to come back from the database (then the
        /// other processes have it too).
        var echoWaiters: [ExecutionID: [Alarm<ContinuousClock>]] = [:]
    }

    /// This process in its messages: the worker id and a token of this run, so that two processes
    /// started with the same worker id still tell each other's messages from their own.
    let sender: String
    private let state = Mutex(State())
    /// Rung when a message is waiting.
    let alarm = Alarm()
    /// Set by a wake from another process: the timer service claims due timers at its next turn.
    let pollTimersNow = Atomic<Bool>(false)
    /// Set by a wake from another process: the lease service looks for expired claims at its next turn.
    let sweepLeasesNow = Atomic<Bool>(false)

    init(workerID: String) {
        self.sender = "\(workerID) \(UInt64.random(in: 0...UInt64.max))"
    }

    /// Whether `sender` is a run of the process `workerID` (worker ids have no spaces).
    static func sender(_ sender: String, isRunOf workerID: String) -> Bool {
        sender.hasPrefix(workerID + " ")
    }

    /// Whether messages go anywhere: this process is in a group.
    var isJoined: Bool { state.withLock { $0.joined } }

    func joined(_ joined: Bool) {
        state.withLock { state in
            state.joined = joined
            if !joined {
                state.remoteWatches = [:]
                state.remoteWatchCount = 0
                state.outgoing = []
                for alarm in state.echoWaiters.values.joined() { alarm.wake() }
                state.echoWaiters = [:]
            }
        }
    }

    // MARK: Outgoing

    /// Queues `body` for every process (nothing when not in a group).
    func broadcast(_ body: ClusterMessage.Body) {
        if state.withLock({ queue(body, in: &$0) }) { alarm.wake() }
    }

    /// Queues `body` in `state`, which the caller holds: messages queued under one lock keep the
    /// order of the changes they announce.
    private func queue(_ body: ClusterMessage.Body, in state: inout State) -> Bool {
        guard state.joined, state.outgoing.count < Self.maximumOutgoing else { return false }
        state.outgoing.append(ClusterMessage(sender: sender, body: body).encoded())
        return true
    }

    /// Whether another process streams `executionID`: its events must be forwarded.
    func isWatchedElsewhere(_ executionID: ExecutionID) -> Bool {
        state.withLock { state in
            guard state.joined, let watchers = state.remoteWatches[executionID] else { return false }
            let now = ContinuousClock.now
            return watchers.values.contains { $0 > now }
        }
    }

    /// Queues the events of a committed transition for the processes that stream the execution.
    func forward(_ events: [(eventType: String, payload: JSONValue)], of executionID: ExecutionID, version: Int?) {
        let queued = state.withLock { state -> Bool in
            guard state.joined else { return false }
            guard state.outgoing.count + events.count <= Self.maximumOutgoing else {
                state.overflowed.insert(executionID)
                return false
            }
            for event in events {
                let body = ClusterMessage.Body.live(
                    executionID: executionID, version: version, eventType: event.eventType, payload: event.payload)
                state.outgoing.append(ClusterMessage(sender: sender, body: body).encoded())
            }
            return true
        }
        if queued { alarm.wake() }
    }

    /// The messages waiting, at most `limit`, oldest first; they leave the queue.
    func takeOutgoing(limit: Int) -> [String] {
        state.withLock { state in
            let taken = Array(state.outgoing.prefix(limit))
            state.outgoing.removeFirst(taken.count)
            return taken
        }
    }

    /// Executions whose forwarded events were dropped since the last call (see ``maximumOutgoing``).
    func takeOverflowed() -> Set<ExecutionID> {
        state.withLock { state in
            defer { state.overflowed = [] }
            return state.overflowed
        }
    }

    // MARK: This process's streams

    /// A stream of this process starts following `executionID`; the others hear of it at once.
    /// Returns an alarm that rings when the announcement has come back from the database (every
    /// process has received it by then), when one was sent; `nil` when none was needed (another
    /// stream here follows the execution already, or the process is in no group).
    func watch(_ executionID: ExecutionID) -> Alarm<ContinuousClock>? {
        let (queued, alarm) = state.withLock { state -> (Bool, Alarm<ContinuousClock>?) in
            state.localWatches[executionID, default: 0] += 1
            guard state.localWatches[executionID] == 1, queue(.watch([executionID]), in: &state) else { return (false, nil) }
            let alarm = Alarm()
            state.echoWaiters[executionID, default: []].append(alarm)
            return (true, alarm)
        }
        if queued { self.alarm.wake() }
        return alarm
    }

    /// This process's own watch of `ids` came back from the database.
    func echoed(_ ids: [ExecutionID]) {
        let alarms = state.withLock { state in ids.flatMap { state.echoWaiters.removeValue(forKey: $0) ?? [] } }
        for alarm in alarms { alarm.wake() }
    }

    /// A stream of this process stopped following `executionID`.
    func unwatch(_ executionID: ExecutionID) {
        let queued = state.withLock { state -> Bool in
            guard let count = state.localWatches[executionID] else { return false }
            state.localWatches[executionID] = count > 1 ? count - 1 : nil
            if count == 1, let waiting = state.echoWaiters.removeValue(forKey: executionID) {
                for alarm in waiting { alarm.wake() }
            }
            return count == 1 && queue(.unwatch([executionID]), in: &state)
        }
        if queued { alarm.wake() }
    }

    /// The executions this process streams.
    var watchedHere: [ExecutionID] { state.withLock { Array($0.localWatches.keys) } }

    /// Tells the others again which executions this process streams.
    func repeatWatches() {
        let ids = watchedHere
        var start = 0
        while start < ids.count {
            let end = min(start + Self.executionsPerWatch, ids.count)
            broadcast(.watch(Array(ids[start..<end])))
            start = end
        }
    }

    // MARK: Incoming

    /// Records what another process says it streams; forgets watches that ran out.
    func received(watch ids: [ExecutionID], from sender: String, watching: Bool) {
        let until = ContinuousClock.now + Self.watchLifetime
        state.withLock { state in
            for id in ids {
                if watching {
                    if state.remoteWatches[id]?[sender] == nil {
                        guard state.remoteWatchCount < Self.maximumRemoteWatches else { continue }
                        state.remoteWatchCount += 1
                    }
                    state.remoteWatches[id, default: [:]][sender] = until
                } else if state.remoteWatches[id]?.removeValue(forKey: sender) != nil {
                    state.remoteWatchCount -= 1
                    if state.remoteWatches[id]?.isEmpty == true { state.remoteWatches[id] = nil }
                }
            }
        }
    }

    /// Forgets every watch of the runs of `workerID` (the process left or died).
    func forget(_ workerID: String) {
        state.withLock { state in
            for (id, watchers) in state.remoteWatches {
                let kept = watchers.filter { !Self.sender($0.key, isRunOf: workerID) }
                guard kept.count != watchers.count else { continue }
                state.remoteWatchCount -= watchers.count - kept.count
                state.remoteWatches[id] = kept.isEmpty ? nil : kept
            }
        }
    }

    /// Forgets the watches that were not repeated in time.
    func expireWatches(now: ContinuousClock.Instant = .now) {
        state.withLock { state in
            state.remoteWatches = state.remoteWatches.compactMapValues { watchers in
                let live = watchers.filter { $0.value > now }
                return live.isEmpty ? nil : live
            }
            state.remoteWatchCount = state.remoteWatches.values.reduce(0) { $0 + $1.count }
        }
    }
}
