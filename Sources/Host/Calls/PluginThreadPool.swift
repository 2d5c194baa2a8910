import DequeModule
import Dispatch
import Foundation
import Synchronization

/// A unit of work the pool runs on one of its threads, with a deadline counted from submission.
protocol PoolJob: AnyObject, Sendable {
    /// Jobs with the same key never run at the same time (plugins that are not thread-safe).
    var serialKey: ObjectIdentifier? { get }
    /// `DispatchTime` uptime in nanoseconds after which the job has timed out.
    var deadline: UInt64 { get }
    /// Marks the job as started; false when it already ended (expired or cancelled while queued).
    func claim() -> Bool
    /// Runs the work on the current pool thread.
    func run()
    /// Called by the watchdog once the deadline has passed.
    func expire() -> JobExpiry
    /// Whether the watchdog found the job running past its deadline.
    var overran: Bool { get }
}

/// What expiring a job did.
enum JobExpiry: Equatable {
    /// The job had already ended.
    case nothing
    /// The job never started; its caller got a timeout.
    case expiredWaiting
    /// The job is running past its deadline: its thread is stuck until the work returns.
    case overran
}

/// Dedicated threads for plugin calls. Calls never run on the caller's thread or an event loop.
///
/// Each job has a deadline. A job still queued at its deadline fails without running; a job still
/// running at its deadline is reported as overrun, and since a thread cannot be stopped from
/// outside, the pool starts a replacement thread (up to `maximumThreads`) so that stuck calls do
/// not starve the others. When the stuck call finally returns, its surplus thread exits.
final class PluginThreadPool: Sendable {
    let threadCount: Int
    let maximumThreads: Int

    private struct State {
        var queue: Deque<any PoolJob> = []
        var deferred: [ObjectIdentifier: Deque<any PoolJob>] = [:]
        var busyKeys: Set<ObjectIdentifier> = []
        var running: [Int: any PoolJob] = [:]
        var liveThreads = 0
        var stuckThreads = 0
        var nextThreadID = 0
        var shuttingDown = false
        var watchdogWake = UInt64.max
    }

    private let state = Mutex(State())
    private let workAvailable = DispatchSemaphore(value: 0)
    private let watchdogSignal = DispatchSemaphore(value: 0)

    init(threadCount: Int, maximumThreads: Int) {
        self.threadCount = max(1, threadCount)
        self.maximumThreads = max(self.threadCount, maximumThreads)
        for _ in 0..<self.threadCount { startThread() }
        let watchdog = Thread { [self] in watchdogLoop() }
        watchdog.name = "bp-plugin-watchdog"
        watchdog.start()
    }

    /// Queues a job; false (and nothing queued) once `shutdown()` was called.
    func submit(_ job: any PoolJob) -> Bool {
        let (accepted, wakeWatchdog) = state.withLock { state -> (Bool, Bool) in
            guard !state.shuttingDown else { return (false, false) }
            state.queue.append(job)
            guard job.deadline < state.watchdogWake else { return (true, false) }
            state.watchdogWake = job.deadline
            return (true, true)
        }
        guard accepted else { return false }
        workAvailable.signal()
        if wakeWatchdog { watchdogSignal.signal() }
        return true
    }

    /// Threads currently alive, including stuck ones.
    var liveThreadCount: Int { state.withLock { $0.liveThreads } }

    /// Threads blocked in a call that overran its deadline.
    var stuckThreadCount: Int { state.withLock { $0.stuckThreads } }

    /// Stops accepting jobs. Threads finish what is queued, then exit; the watchdog exits with the last one.
    func shutdown() {
        let threads = state.withLock { state in
            state.shuttingDown = true
            return state.liveThreads
        }
        for _ in 0..<threads { workAvailable.signal() }
        watchdogSignal.signal()
    }

    // MARK: Worker threads

    private func startThread() {
        let threadID = state.withLock { state in
            state.liveThreads += 1
            state.nextThreadID += 1
            return state.nextThreadID
        }
        let thread = Thread { [self] in workerLoop(threadID: threadID) }
        thread.name = "bp-plugin-\(threadID)"
        thread.stackSize = 8 << 20
        thread.start()
    }

    private func workerLoop(threadID: Int) {
        while true {
            workAvailable.wait()
            guard let job = nextJob(threadID: threadID) else {
                if exitIfDrained() { return }
                continue
            }
            job.run()
            if finish(job, threadID: threadID) { return }
        }
    }

    /// Takes the next job that may start now; jobs whose serial key is busy wait aside.
    private func nextJob(threadID: Int) -> (any PoolJob)? {
        state.withLock { state in
            while let job = state.queue.popFirst() {
                if let key = job.serialKey, state.busyKeys.contains(key) {
                    state.deferred[key, default: []].append(job)
                    continue
                }
                guard job.claim() else { continue }
                if let key = job.serialKey { state.busyKeys.insert(key) }
                state.running[threadID] = job
                return job
            }
            return nil
        }
    }

    /// Bookkeeping after a job returned. True when this thread should exit (it was a surplus thread).
    private func finish(_ job: any PoolJob, threadID: Int) -> Bool {
        let (releasedJobs, exit) = state.withLock { state -> (Int, Bool) in
            state.running[threadID] = nil
            var released = 0
            if let key = job.serialKey {
                state.busyKeys.remove(key)
                if let waiting = state.deferred.removeValue(forKey: key) {
                    state.queue.insert(contentsOf: waiting, at: 0)
                    released = waiting.count
                }
            }
            if job.overran { state.stuckThreads -= 1 }
            let surplus = state.liveThreads - state.stuckThreads > threadCount
            guard surplus || (state.shuttingDown && state.queue.isEmpty) else { return (released, false) }
            state.liveThreads -= 1
            return (released, true)
        }
        for _ in 0..<releasedJobs { workAvailable.signal() }
        if exit { watchdogSignal.signal() }
        return exit
    }

    /// During shutdown, ends this thread once the queue is empty.
    private func exitIfDrained() -> Bool {
        let exit = state.withLock { state in
            guard state.shuttingDown, state.queue.isEmpty else { return false }
            state.liveThreads -= 1
            return true
        }
        if exit { watchdogSignal.signal() }
        return exit
    }

    // MARK: Watchdog

    private func watchdogLoop() {
        while true {
            let wake = state.withLock { state -> UInt64? in
                if state.shuttingDown && state.liveThreads == 0 { return nil }
                return state.watchdogWake
            }
            guard let wake else { return }
            if wake == UInt64.max {
                watchdogSignal.wait()
            } else {
                _ = watchdogSignal.wait(timeout: DispatchTime(uptimeNanoseconds: wake))
            }
            expireOverdueJobs()
        }
    }

    /// Expires the jobs past their deadline and starts replacements for threads stuck in one.
    /// Expiring resumes callers and reports through the call's events (which log), so it happens
    /// outside the lock; a job that returns meanwhile is simply not expired (its phase decides).
    private func expireOverdueJobs() {
        let now = DispatchTime.now().uptimeNanoseconds
        let overdue = state.withLock { state -> [any PoolJob] in
            var overdue: [any PoolJob] = state.queue.filter { $0.deadline <= now }
            for waiting in state.deferred.values { overdue += waiting.filter { $0.deadline <= now } }
            overdue += state.running.values.filter { $0.deadline <= now }
            return overdue
        }
        let overran = overdue.reduce(0) { count, job in job.expire() == .overran ? count + 1 : count }
        let replacements = state.withLock { state -> Int in
            state.stuckThreads += overran
            var earliest = UInt64.max
            for job in state.queue where job.deadline > now { earliest = min(earliest, job.deadline) }
            for waiting in state.deferred.values {
                for job in waiting where job.deadline > now { earliest = min(earliest, job.deadline) }
            }
            for job in state.running.values where job.deadline > now { earliest = min(earliest, job.deadline) }
            state.watchdogWake = earliest
            let healthyThreads = state.liveThreads - state.stuckThreads
            return max(0, min(threadCount - healthyThreads, maximumThreads - state.liveThreads))
        }
        for _ in 0..<replacements { startThread() }
    }
}
