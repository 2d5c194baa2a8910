import Foundation
import Scheduling
import Testing

@Suite struct CronExpressionTests {
    private func utc(_ text: String) -> Date {
        let formatter = ISO8601DateFormatter()
        guard let date = formatter.date(from: text) else { preconditionFailure("bad test date \(text)") }
        return date
    }

    private func next(_ expression: String, after text: String) throws -> String? {
        let date = try CronExpression(expression).next(after: utc(text))
        return date.map { ISO8601DateFormatter().string(from: $0) }
    }

    static let cases: [(expression: String, after: String, next: String)] = [
        ("* * * * *", "2026-11-22T20:38:32Z", "2026-11-22T20:39:00Z"),
        ("* * * * *", "2026-11-22T20:38:00Z", "2026-11-22T20:39:00Z"),
        ("0 3 * * *", "2026-11-22T20:38:32Z", "2026-11-23T03:00:00Z"),
        ("*/15 * * * *", "2026-11-22T20:38:32Z", "2026-11-22T20:45:00Z"),
        ("5/20 * * * *", "2026-11-22T20:38:32Z", "2026-11-22T20:45:00Z"),
        ("0-10/5 9 * * *", "2026-11-22T09:06:00Z", "2026-11-22T09:10:00Z"),
        ("30 9,17 * * *", "2026-11-22T10:00:00Z", "2026-11-22T17:30:00Z"),
        ("0 0 1 * *", "2026-11-22T20:38:32Z", "2026-12-01T00:00:00Z"),
        ("0 0 * * 1", "2026-11-22T20:38:32Z", "2026-11-23T00:00:00Z"),
        ("0 0 * * 7", "2026-11-22T20:38:32Z", "2026-11-29T00:00:00Z"),
        ("0 0 13 * 5", "2026-11-22T20:38:32Z", "2026-11-27T00:00:00Z"),
        ("0 0 29 2 *", "2026-11-22T20:38:32Z", "2028-02-29T00:00:00Z"),
        ("59 23 31 12 *", "2026-12-31T23:59:00Z", "2027-12-31T23:59:00Z"),
        ("0 12 * * 1-5", "2026-11-21T13:00:00Z", "2026-11-23T12:00:00Z"),
        ("0,30 8-9 * * *", "2026-11-22T09:30:00Z", "2026-11-23T08:00:00Z"),
        ("@hourly", "2026-11-22T20:38:32Z", "2026-11-22T21:00:00Z"),
        ("@daily", "2026-11-22T20:38:32Z", "2026-11-23T00:00:00Z"),
        ("@weekly", "2026-11-22T20:38:32Z", "2026-11-29T00:00:00Z"),
        ("@monthly", "2026-11-22T20:38:32Z", "2026-12-01T00:00:00Z"),
        ("@yearly", "2026-11-22T20:38:32Z", "2027-01-01T00:00:00Z"),
        ("@every_minute", "2026-11-22T20:38:32Z", "2026-11-22T20:39:00Z"),
    ]

    @Test(arguments: cases)
    func nextRun(_ example: (expression: String, after: String, next: String)) throws {
        #expect(try next(example.expression, after: example.after) == example.next)
    }

    @Test func aDayThatNeverComesHasNoNextRun() throws {
        #expect(try next("0 0 30 2 *", after: "2026-11-22T20:38:32Z") == nil)
    }

    static let neverFiring: [(expression: String, reason: String)] = [
        ("0 0 31 2 *", "February has no day 31"),
        ("0 0 30 2 *", "February has no day 30"),
        ("0 0 30-31 2 *", "February has no day 30 or 31"),
        ("0 0 31 4,6,9,11 *", "April, June, September and November have no day 31"),
        ("15 */2 31 2-2/5 *", "February has no day 31"),
        ("0 0 31 2,4 *", "February and April have no day 31"),
    ]

    @Test(arguments: neverFiring)
    func expressionsThatNeverFireSayWhy(_ example: (expression: String, reason: String)) throws {
        #expect(try CronExpression(example.expression).neverFiresReason == example.reason)
    }

    @Test(arguments: [
        "* * * * *", "0 0 29 2 *", "0 0 31 * *", "0 0 31 1-12/2 *", "0 0 30,31 2,3 *", "0 0 30 2 1", "0 0 31 4 */2", "0 0 * 2 *",
        "0 0 28-31 2 *", "@yearly",
    ])
    func expressionsThatFireHaveNoReason(_ expression: String) throws {
        #expect(try CronExpression(expression).neverFiresReason == nil)
    }

    /// The decision agrees with the search for the next run (which looks eight years ahead, so
    /// 29 February is found), for every day of month in every month, alone and with a weekday.
    @Test func neverFiringAgreesWithTheNextRun() throws {
        let start = utc("2026-11-22T20:38:32Z")
        for month in 1...12 {
            for day in 25...31 {
                for weekday in ["*", "3"] {
                    let expression = try CronExpression("0 0 \(day) \(month) \(weekday)")
                    #expect((expression.neverFiresReason == nil) == (expression.next(after: start) != nil), "\(expression)")
                }
            }
            let pair = try CronExpression("0 0 30,31 \(month),\(month % 12 + 1) *")
            #expect((pair.neverFiresReason == nil) == (pair.next(after: start) != nil), "\(pair)")
        }
    }

    @Test func nextTimesAreIncreasing() throws {
        // 2026-11-22 is a Sunday.
        let times = try CronExpression("*/20 * * * *").nextTimes(after: utc("2026-11-22T20:38:32Z"), count: 4)
        #expect(
            times.map { ISO8601DateFormatter().string(from: $0) } == [
                "2026-11-22T20:40:00Z", "2026-11-22T21:00:00Z", "2026-11-22T21:20:00Z", "2026-11-22T21:40:00Z",
            ])
    }

    static let errors: [(expression: String, message: String)] = [
        ("", "Empty expression"),
        ("   ", "Empty expression"),
        ("* * * *", "Too few fields (expected 5)"),
        ("* * * * * *", "Too many fields (expected 5)"),
        ("60 * * * *", "Value 60 out of range for minute (0-59)"),
        ("* 24 * * *", "Value 24 out of range for hour (0-23)"),
        ("* * 0 * *", "Value 0 out of range for day of month (1-31)"),
        ("* * * 13 *", "Value 13 out of range for month (1-12)"),
        ("* * * * 8", "Value 8 out of range for day of week (0-7)"),
        ("a * * * *", "Invalid value for minute"),
        ("* * * JAN *", "Invalid value for month"),
        ("*/0 * * * *", "Invalid step value for minute"),
        ("*/x * * * *", "Invalid step value for minute"),
        ("1/2/3 * * * *", "Invalid step value for minute"),
        ("10-5 * * * *", "Range out of bounds for minute: 10-5 (start after end)"),
        ("1,,2 * * * *", "Invalid value for minute"),
        ("-1 * * * *", "Invalid value for minute"),
    ]

    @Test(arguments: errors)
    func refused(_ example: (expression: String, message: String)) {
        #expect(throws: CronParseError(example.message)) { try CronExpression(example.expression) }
    }

    @Test func unknownPresetsNameTheKnownOnes() {
        #expect {
            try CronExpression("@fortnightly")
        } throws: { error in
            (error as? CronParseError)?.message.hasPrefix("Unknown preset '@fortnightly' (known: @annually") == true
        }
    }
}
