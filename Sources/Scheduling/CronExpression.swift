public import Foundation

/// A five-field cron expression (minute, hour, day of month, month, day of week). The fields are
/// wall-clock time in the zone ``next(after:in:)`` is given: a schedule's own time zone, UTC for
/// the retention schedule (`PIPELINE_CLEANUP_SCHEDULE`) and whenever no zone is given.
///
/// Each field takes `*`, a number, a range `a-b`, a step `*/n`, `a/n` or `a-b/n`, or a comma list
/// of those. Day of week runs 0–7, where 0 and 7 are Sunday. When both day fields are restricted a
/// day matches either (as in Vixie cron and croniter). Presets: `@every_minute`, `@hourly`,
/// `@daily`, `@midnight`, `@weekly`, `@monthly`, `@yearly`, `@annually`.
public struct CronExpression: Sendable, Equatable, CustomStringConvertible {
    /// The text it was parsed from.
    public let source: String
    private let minutes: Set<Int>
    private let hours: Set<Int>
    private let daysOfMonth: Set<Int>
    private let months: Set<Int>
    private let daysOfWeek: Set<Int>
    private let dayOfMonthRestricted: Bool
    private let dayOfWeekRestricted: Bool

    public static let presets: [String: String] = [
        "@every_minute": "* * * * *", "@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
        "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *",
    ]

    public init(_ text: String) throws(CronParseError) {
        source = text
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw CronParseError("Empty expression") }
        var expression = trimmed
        if trimmed.hasPrefix("@") {
            guard let preset = Self.presets[trimmed.lowercased()] else {
                throw CronParseError("Unknown preset '\(trimmed)' (known: \(Self.presets.keys.sorted().joined(separator: ", ")))")
            }
            expression = preset
        }
        let fields = expression.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard fields.count >= 5 else { throw CronParseError("Too few fields (expected 5)") }
        guard fields.count <= 5 else { throw CronParseError("Too many fields (expected 5)") }
        minutes = try Self.parseField(fields[0], .minute)
        hours = try Self.parseField(fields[1], .hour)
        daysOfMonth = try Self.parseField(fields[2], .dayOfMonth)
        months = try Self.parseField(fields[3], .month)
        daysOfWeek = Set(try Self.parseField(fields[4], .dayOfWeek).map { $0 % 7 })
        dayOfMonthRestricted = fields[2] != "*"
        dayOfWeekRestricted = fields[4] != "*"
    }

    public var description: String { source }

    /// Why the expression can never fire, or `nil` when it fires at some time.
    ///
    /// Minutes, hours and months always leave some value, and a restricted day of week matches
    /// in every month (each month has every weekday), so only one case never fires: a restricted
    /// day of month, an unrestricted day of week, and none of the allowed days in any allowed
    /// month — 30 or 31 February, 31 April. 29 February fires in leap years. Decided from the
    /// fields alone (the longest allowed month against the smallest allowed day), no search.
    public var neverFiresReason: String? {
        guard dayOfMonthRestricted, !dayOfWeekRestricted, let firstDay = daysOfMonth.min() else { return nil }
        // 2000 is a leap year: February's longest.
        let longestMonth = months.map { Self.daysIn(year: 2000, month: $0) }.max() ?? 0
        guard firstDay > longestMonth else { return nil }
        let days = Self.list(daysOfMonth.sorted().map(String.init), "or")
        let monthNames = Self.list(months.sorted().map { Self.monthNames[$0 - 1] }, "and")
        return "\(monthNames) \(months.count == 1 ? "has" : "have") no day \(days)"
    }

    private static let monthNames = [
        "January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December",
    ]

    /// `a`, `a or b`, `a, b or c` (with `conjunction` "or").
    private static func list(_ items: [String], _ conjunction: String) -> String {
        guard let last = items.last else { return "" }
        return items.count == 1 ? last : items.dropLast().joined(separator: ", ") + " \(conjunction) " + last
    }

    /// The first matching minute strictly after `date`, reading the fields as wall-clock time in
    /// `timeZone` (UTC by default), or `nil` when none comes within eight years (a day that never
    /// exists, such as 30 February). A wall-clock time that a daylight-saving change skips fires
    /// when the clock resumes; one that occurs twice fires once.
    public func next(after date: Date, in timeZone: TimeZone = .gmt) -> Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        var cursor = date
        // A match that maps back to `date` or earlier (the repeated hour of a change back) is
        // passed over; two changes never fall within a few hours.
        for _ in 0..<4 {
            guard let found = nextWallClockMatch(after: cursor, calendar: calendar) else { return nil }
            if found > date { return found }
            cursor = cursor.addingTimeInterval(3600)
        }
        return nil
    }

    private func nextWallClockMatch(after date: Date, calendar: Calendar) -> Date? {
        let start = Date(timeIntervalSince1970: (date.timeIntervalSince1970 / 60).rounded(.down) * 60 + 60)
        var parts = calendar.dateComponents([.year, .month, .day, .hour, .minute], from: start)
        guard var year = parts.year, var month = parts.month, var day = parts.day, var hour = parts.hour, var minute = parts.minute
        else { return nil }
        let lastYear = year + 8
        while year <= lastYear {
            guard months.contains(month) else {
                (year, month, day, hour, minute) = month == 12 ? (year + 1, 1, 1, 0, 0) : (year, month + 1, 1, 0, 0)
                continue
            }
            let daysInMonth = Self.daysIn(year: year, month: month)
            guard day <= daysInMonth else {
                (year, month, day, hour, minute) = month == 12 ? (year + 1, 1, 1, 0, 0) : (year, month + 1, 1, 0, 0)
                continue
            }
            guard dayMatches(year: year, month: month, day: day) else {
                (day, hour, minute) = (day + 1, 0, 0)
                continue
            }
            guard let nextHour = hours.filter({ $0 >= hour }).min() else {
                (day, hour, minute) = (day + 1, 0, 0)
                continue
            }
            if nextHour != hour { (hour, minute) = (nextHour, 0) }
            guard let nextMinute = minutes.filter({ $0 >= minute }).min() else {
                (hour, minute) = (hour + 1, 0)
                if hour > 23 { (day, hour) = (day + 1, 0) }
                continue
            }
            parts = DateComponents(year: year, month: month, day: day, hour: hour, minute: nextMinute)
            return calendar.date(from: parts)
        }
        return nil
    }

    /// The next `count` matching times after `date`.
    public func nextTimes(after date: Date, count: Int, in timeZone: TimeZone = .gmt) -> [Date] {
        var times: [Date] = []
        var cursor = date
        while times.count < count, let next = next(after: cursor, in: timeZone) {
            times.append(next)
            cursor = next
        }
        return times
    }

    private func dayMatches(year: Int, month: Int, day: Int) -> Bool {
        let weekday = Self.weekday(year: year, month: month, day: day)
        switch (dayOfMonthRestricted, dayOfWeekRestricted) {
        case (true, true): return daysOfMonth.contains(day) || daysOfWeek.contains(weekday)
        case (true, false): return daysOfMonth.contains(day)
        case (false, true): return daysOfWeek.contains(weekday)
        case (false, false): return true
        }
    }

    // MARK: Parsing

    private enum Field {
        case minute, hour, dayOfMonth, month, dayOfWeek

        var name: String {
            switch self {
            case .minute: "minute"
            case .hour: "hour"
            case .dayOfMonth: "day of month"
            case .month: "month"
            case .dayOfWeek: "day of week"
            }
        }

        var range: ClosedRange<Int> {
            switch self {
            case .minute: 0...59
            case .hour: 0...23
            case .dayOfMonth: 1...31
            case .month: 1...12
            case .dayOfWeek: 0...7
            }
        }
    }

    private static func parseField(_ text: String, _ field: Field) throws(CronParseError) -> Set<Int> {
        var values: Set<Int> = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            values.formUnion(try parseItem(String(item), field))
        }
        return values
    }

    private static func parseItem(_ item: String, _ field: Field) throws(CronParseError) -> Set<Int> {
        guard !item.isEmpty else { throw CronParseError("Invalid value for \(field.name)") }
        let parts = item.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count <= 2 else { throw CronParseError("Invalid step value for \(field.name)") }
        var step = 1
        if parts.count == 2 {
            guard let parsed = Int(parts[1]), parsed >= 1 else { throw CronParseError("Invalid step value for \(field.name)") }
            step = parsed
        }
        let range: ClosedRange<Int>
        if parts[0] == "*" {
            range = field.range
        } else if let dash = parts[0].firstIndex(of: "-") {
            let low = try number(String(parts[0][..<dash]), field)
            let high = try number(String(parts[0][parts[0].index(after: dash)...]), field)
            guard low <= high else {
                throw CronParseError("Range out of bounds for \(field.name): \(low)-\(high) (start after end)")
            }
            range = low...high
        } else {
            let value = try number(parts[0], field)
            range = parts.count == 2 ? value...field.range.upperBound : value...value
        }
        return Set(stride(from: range.lowerBound, through: range.upperBound, by: step))
    }

    private static func number(_ text: String, _ field: Field) throws(CronParseError) -> Int {
        guard !text.isEmpty, text.allSatisfy(\.isASCIIDigit), let value = Int(text) else {
            throw CronParseError("Invalid value for \(field.name)")
        }
        guard field.range.contains(value) else {
            throw CronParseError("Value \(value) out of range for \(field.name) (\(field.range.lowerBound)-\(field.range.upperBound))")
        }
        return value
    }

    // MARK: Calendar

    private static func daysIn(year: Int, month: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// 0 = Sunday … 6 = Saturday (Sakamoto's method).
    private static func weekday(year: Int, month: Int, day: Int) -> Int {
        let offsets = [0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4]
        let y = month < 3 ? year - 1 : year
        return (y + y / 4 - y / 100 + y / 400 + offsets[month - 1] + day) % 7
    }
}

/// Why a cron expression was refused.
public struct CronParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
