import Foundation
import Scheduling

extension Alarm where C == ContinuousClock {
    /// The instant of the alarm's clock at which the wall-clock time `date` comes (at most a day
    /// ahead: the services look again at least daily, and the conversion stays finite).
    func instant(at date: Date) -> ContinuousClock.Instant {
        let seconds = min(max(date.timeIntervalSinceNow, 0), 86_400)
        return clock.now.advanced(by: .seconds(seconds.isFinite ? seconds : 0))
    }

    /// Sleeps until the wall-clock time `date` (see ``instant(at:)``), a wake-up or cancellation.
    @discardableResult
    func sleep(untilDate date: Date) async -> Ending {
        await sleep(until: instant(at: date))
    }
}
