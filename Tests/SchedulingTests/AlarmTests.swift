import Scheduling
import Synchronization
import Testing

/// A clock that moves only when the test advances it, so that sleeps end exactly when the test
/// says, with no wall-clock waiting.
final class ManualClock: Clock, Sendable {
    struct Instant: InstantProtocol {
        var offset: Duration

        func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        func duration(to other: Instant) -> Duration { other.offset - offset }
        static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
    }

    private struct Sleeper {
        let deadline: Instant
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now = Instant(offset: .zero)
        var sleepers: [Int: Sleeper] = [:]
        var nextID = 0
    }

    private let state = Mutex(State())

    var now: Instant { state.withLock { $0.now } }
    var minimumResolution: Duration { .nanoseconds(1) }
    var sleeperCount: Int { state.withLock { $0.sleepers.count } }

    func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        let id = state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome = state.withLock { state -> Result<Void, any Error>? in
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if deadline <= state.now { return .success(()) }
                    state.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            state.withLock { $0.sleepers.removeValue(forKey: id) }?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves the clock on and ends the sleeps now due.
    func advance(by duration: Duration) {
        let due = state.withLock { state -> [Sleeper] in
            state.now = state.now.advanced(by: duration)
            let due = state.sleepers.filter { $0.value.deadline <= state.now }
            for id in due.keys { state.sleepers[id] = nil }
            return Array(due.values)
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    /// Returns once `count` tasks sleep on the clock.
    func waitForSleepers(_ count: Int = 1) async {
        while sleeperCount < count { await Task.yield() }
    }
}

@Suite("Alarm")
struct AlarmTests {
    @Test func aSleepEndsAtItsDeadlineAndNotBefore() async {
        let clock = ManualClock()
        let alarm = Alarm(clock: clock)
        let ended = Mutex<Alarm<ManualClock>.Ending?>(nil)
        let sleeper = Task {
            let ending = await alarm.sleep(for: .seconds(10))
            ended.withLock { $0 = ending }
        }
        await clock.waitForSleepers()
        clock.advance(by: .seconds(9))
        await Task.yield()
        #expect(ended.withLock { $0 } == nil)
        #expect(alarm.sleepingUntil == ManualClock.Instant(offset: .seconds(10)))
        clock.advance(by: .seconds(1))
        await sleeper.value
        #expect(ended.withLock { $0 } == .deadline)
        #expect(alarm.sleepingUntil == nil)
        #expect(clock.sleeperCount == 0)
    }

    @Test func aWakeEndsTheSleepInProgress() async {
        let clock = ManualClock()
        let alarm = Alarm(clock: clock)
        let sleeper = Task { await alarm.sleep(for: .seconds(3600)) }
        await clock.waitForSleepers()
        while alarm.sleepingUntil == nil { await Task.yield() }
        alarm.wake()
        #expect(await sleeper.value == .woken)
        // The clock's sleep was a child of the sleep: it ended with it.
        #expect(clock.sleeperCount == 0)
    }

    @Test func aWakeWhileNobodySleepsEndsTheNextSleepOnce() async {
        let clock = ManualClock()
        let alarm = Alarm(clock: clock)
        alarm.wake()
        alarm.wake()
        #expect(await alarm.sleep(for: .seconds(60)) == .woken)
        // Two wake-ups between sleeps are one: the next sleep lasts.
        let sleeper = Task { await alarm.sleep(for: .seconds(60)) }
        await clock.waitForSleepers()
        clock.advance(by: .seconds(60))
        #expect(await sleeper.value == .deadline)
    }

    @Test func cancellingTheSleeperEndsTheSleep() async {
        let clock = ManualClock()
        let alarm = Alarm(clock: clock)
        let sleeper = Task { await alarm.sleep(for: .seconds(3600)) }
        await clock.waitForSleepers()
        sleeper.cancel()
        #expect(await sleeper.value == .cancelled)
        #expect(clock.sleeperCount == 0)
        // A cancelled task does not sleep at all, and its cancellation used up no wake-up.
        let cancelled = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await alarm.sleep(for: .seconds(3600))
        }
        #expect(await cancelled.value == .cancelled)
    }

    @Test func aWakeForAnEarlierInstantEndsOnlyALongerSleep() async {
        let clock = ManualClock()
        let alarm = Alarm(clock: clock)
        let sleeper = Task { await alarm.sleep(for: .seconds(10)) }
        await clock.waitForSleepers()
        while alarm.sleepingUntil == nil { await Task.yield() }
        // Due after the sleep ends: nothing to wake for.
        alarm.wake(ifSleepingBeyond: ManualClock.Instant(offset: .seconds(20)))
        await Task.yield()
        #expect(alarm.sleepingUntil != nil)
        alarm.wake(ifSleepingBeyond: ManualClock.Instant(offset: .seconds(5)))
        #expect(await sleeper.value == .woken)
        // Nobody sleeping: the next sleep ends at once, whatever its deadline.
        alarm.wake(ifSleepingBeyond: ManualClock.Instant(offset: .seconds(100)))
        #expect(await alarm.sleep(for: .seconds(1)) == .woken)
    }

    @Test func aDeadlineInThePastDoesNotSleep() async {
        let clock = ManualClock()
        let alarm = Alarm(clock: clock)
        #expect(await alarm.sleep(for: .zero) == .deadline)
        #expect(await alarm.sleep(for: .seconds(-5)) == .deadline)
        #expect(clock.sleeperCount == 0)
    }

    @Test("no wake-up is lost when wakes and sleeps race", .timeLimit(.minutes(1)))
    func wakesAndSleepsRace() async {
        // Every round, one task sleeps for an hour on the real clock while another wakes it at
        // some point before, during or after the sleep began: each sleep must end by the wake.
        let alarm = Alarm()
        for round in 0..<2000 {
            async let woken = alarm.sleep(for: .seconds(3600))
            if round % 3 == 0 { await Task.yield() }
            alarm.wake()
            let ending = await woken
            #expect(ending == .woken)
            if ending != .woken { break }
        }
    }
}
