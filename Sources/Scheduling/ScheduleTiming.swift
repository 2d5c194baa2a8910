public import Foundation

/// When a schedule fires: a cron expression read as wall-clock time in the schedule's IANA time
/// zone (`UTC` when the request names none), a fixed interval, one moment, or only on request.
public enum ScheduleTiming: Sendable, Equatable {
    case cron(CronExpression, TimeZone)
    /// Every so many seconds: first that long after the schedule is created, enabled or given a
    /// new timing, then in step with the previous planned run (the runtime's
    /// `ScheduleFiring.nextRun` keeps the phase; runs missed while down are not made up).
    case interval(seconds: Int)
    /// Once, at the given moment (`nil`: never).
    case oneTime(Date?)
    /// Only when triggered by hand.
    case manual

    /// Reads a schedule's fields: `kind` is `cron`, `interval`, `one_time` or `manual`. A cron
    /// expression that can never fire (``CronExpression/neverFiresReason``) is refused. The error
    /// message completes "Invalid schedule: …".
    public init(kind: String, expression: String?, timezone: String, runAt: Date?) throws(ScheduleTimingError) {
        switch kind {
        case "cron":
            guard let expression, !expression.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw ScheduleTimingError("Cron expression required")
            }
            guard let zone = TimeZone(identifier: timezone) else { throw ScheduleTimingError("Unknown time zone '\(timezone)'") }
            let cron: CronExpression
            do {
                cron = try CronExpression(expression)
            } catch {
                throw ScheduleTimingError(error.message)
            }
            if let reason = cron.neverFiresReason {
                throw ScheduleTimingError("Cron expression '\(expression)' never fires: \(reason)")
            }
            self = .cron(cron, zone)
        case "interval":
            guard let expression, !expression.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw ScheduleTimingError("Interval expression required")
            }
            self = .interval(seconds: try Self.intervalSeconds(expression))
        case "one_time": self = .oneTime(runAt)
        case "manual": self = .manual
        default: throw ScheduleTimingError("Unknown schedule type '\(kind)' (expected cron, interval, one_time or manual)")
        }
    }

    /// The first run strictly after `date`; `nil` when there is none.
    public func next(after date: Date) -> Date? {
        switch self {
        case .cron(let expression, let zone): expression.next(after: date, in: zone)
        case .interval(let seconds): date.addingTimeInterval(Double(seconds))
        case .oneTime(let runAt): runAt.flatMap { $0 > date ? $0 : nil }
        case .manual: nil
        }
    }

    /// The next `count` runs after `date`.
    public func nextRuns(after date: Date, count: Int) -> [Date] {
        var runs: [Date] = []
        var cursor = date
        while runs.count < count, let next = next(after: cursor) {
            runs.append(next)
            cursor = next
        }
        return runs
    }

    /// The longest interval: ten years.
    public static let maximumIntervalSeconds = 3650 * 86_400

    /// `@every` followed by `<n>d`, `<n>h`, `<n>m`, `<n>s` parts in that order (at least one, total
    /// above zero), case-insensitive: `@every 1h30m`, `@every 45s`, `@every 2d`.
    static func intervalSeconds(_ expression: String) throws(ScheduleTimingError) -> Int {
        let text = expression.trimmingCharacters(in: .whitespaces).lowercased()
        guard text.hasPrefix("@every") else {
            throw ScheduleTimingError("Interval must look like '@every 1h30m' (units d, h, m, s), not '\(expression)'")
        }
        var rest = Substring(text.dropFirst("@every".count)).drop { $0 == " " }
        var total = 0
        var lastUnit = -1
        let units: [(Character, Int)] = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)]
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, digits.count <= 9, let count = Int(digits), let unit = rest.dropFirst(digits.count).first,
                let position = units.firstIndex(where: { $0.0 == unit }), position > lastUnit
            else {
                throw ScheduleTimingError("Interval must look like '@every 1h30m' (units d, h, m, s), not '\(expression)'")
            }
            total += count * units[position].1
            lastUnit = position
            rest = rest.dropFirst(digits.count + 1)
        }
        guard total > 0 else { throw ScheduleTimingError("Interval must be longer than zero: '\(expression)'") }
        guard total <= maximumIntervalSeconds else {
            throw ScheduleTimingError("Interval must be at most 3650 days (ten years): '\(expression)'")
        }
        return total
    }
}

/// Why a schedule's timing was refused.
public struct ScheduleTimingError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
