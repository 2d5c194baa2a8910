import Foundation
import Scheduling
import Testing

@Suite struct ScheduleTimingTests {
    private func date(_ text: String) -> Date {
        guard let date = ISO8601DateFormatter().date(from: text) else { preconditionFailure("bad test date \(text)") }
        return date
    }

    private func text(_ date: Date?) -> String? {
        date.map { ISO8601DateFormatter().string(from: $0) }
    }

    @Test("cron fields are read as wall-clock time in the schedule's time zone")
    func cronInTimeZone() throws {
        let timing = try ScheduleTiming(kind: "cron", expression: "0 3 * * *", timezone: "Asia/Kolkata", runAt: nil)
        #expect(text(timing.next(after: date("2026-11-22T12:00:00Z"))) == "2026-11-22T21:30:00Z")
    }

    @Test("a time skipped by a daylight-saving change fires when the clock resumes; a repeated one fires once")
    func daylightSaving() throws {
        let skipped = try ScheduleTiming(kind: "cron", expression: "30 2 * * *", timezone: "Europe/Berlin", runAt: nil)
        // 29 March 2026: 02:00 CET jumps to 03:00 CEST.
        let spring = try #require(skipped.next(after: date("2026-03-28T12:00:00Z")))
        #expect(spring > date("2026-03-28T12:00:00Z") && spring <= date("2026-03-29T01:30:00Z"))
        let repeated = try ScheduleTiming(kind: "cron", expression: "30 2 * * *", timezone: "Europe/Berlin", runAt: nil)
        // 25 October 2026: 03:00 CEST falls back to 02:00 CET, so 02:30 happens twice.
        let first = try #require(repeated.next(after: date("2026-10-24T12:00:00Z")))
        #expect(text(first) == "2026-10-25T00:30:00Z")
        let second = try #require(repeated.next(after: first))
        #expect(text(second) == "2026-10-26T01:30:00Z")
    }

    @Test("intervals: @every with d, h, m, s parts in order")
    func intervals() throws {
        let cases: [(String, Int)] = [("@every 45s", 45), ("@every 1h30m", 5_400), ("@EVERY 2d", 172_800), ("@every 1d2h3m4s", 93_784)]
        for (expression, seconds) in cases {
            #expect(
                try ScheduleTiming(kind: "interval", expression: expression, timezone: "UTC", runAt: nil) == .interval(seconds: seconds))
        }
        #expect(
            try ScheduleTiming(kind: "interval", expression: "@every 3650d", timezone: "UTC", runAt: nil) == .interval(seconds: 315_360_000)
        )
        #expect(throws: ScheduleTimingError("Interval must be at most 3650 days (ten years): '@every 999999999d'")) {
            try ScheduleTiming(kind: "interval", expression: "@every 999999999d", timezone: "UTC", runAt: nil)
        }
        for bad in ["@every", "@every 0s", "@every 30m1h", "every 5m", "@every 5x", "@every 5", "@every 1h1h", "@every 3651d"] {
            #expect(throws: ScheduleTimingError.self) { try ScheduleTiming(kind: "interval", expression: bad, timezone: "UTC", runAt: nil) }
        }
    }

    @Test("missing expressions, unknown kinds and zones are refused, each with its message")
    func refusals() {
        #expect(throws: ScheduleTimingError("Cron expression required")) {
            try ScheduleTiming(kind: "cron", expression: nil, timezone: "UTC", runAt: nil)
        }
        #expect(throws: ScheduleTimingError("Interval expression required")) {
            try ScheduleTiming(kind: "interval", expression: " ", timezone: "UTC", runAt: nil)
        }
        #expect(throws: ScheduleTimingError.self) { try ScheduleTiming(kind: "weekly", expression: nil, timezone: "UTC", runAt: nil) }
        #expect(throws: ScheduleTimingError.self) {
            try ScheduleTiming(kind: "cron", expression: "@daily", timezone: "Nowhere/City", runAt: nil)
        }
    }

    @Test("a cron expression that can never fire is refused, saying why; 29 February is taken")
    func neverFiringCron() throws {
        #expect(
            throws: ScheduleTimingError(
                "Cron expression '0 0 31 4,6,9,11 *' never fires: April, June, September and November have no day 31")
        ) {
            try ScheduleTiming(kind: "cron", expression: "0 0 31 4,6,9,11 *", timezone: "Europe/Berlin", runAt: nil)
        }
        let leap = try ScheduleTiming(kind: "cron", expression: "0 0 29 2 *", timezone: "UTC", runAt: nil)
        #expect(text(leap.next(after: date("2026-11-22T12:00:00Z"))) == "2028-02-29T00:00:00Z")
    }

    @Test("one-time and manual schedules")
    func oneTimeAndManual() throws {
        let at = date("2026-12-01T10:00:00Z")
        let once = try ScheduleTiming(kind: "one_time", expression: nil, timezone: "UTC", runAt: at)
        #expect(once.next(after: date("2026-11-30T00:00:00Z")) == at)
        #expect(once.next(after: at) == nil)
        #expect(once.nextRuns(after: date("2026-11-30T00:00:00Z"), count: 5) == [at])
        #expect(try ScheduleTiming(kind: "manual", expression: nil, timezone: "UTC", runAt: nil).next(after: at) == nil)
    }
}
