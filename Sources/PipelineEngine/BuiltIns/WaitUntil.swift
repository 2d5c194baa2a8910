public import BudJSON
public import Foundation
import PluginSchema

/// The `wait_until` action: works out when to wake up. The engine sets a timer for that moment;
/// no thread sleeps.
public enum WaitUntil {
    static let minimumHours = 0.0167
    static let maximumHours = 168.0

    /// When the step should wake, or why the parameters do not say.
    public static func wakeTime(_ params: JSONObject, now: Date) -> Result<Date, WaitUntilError> {
        let zoneName = params["timezone"].flatMap { $0.isNull ? nil : PythonFormat.str($0) } ?? "UTC"
        guard let zone = TimeZone(identifier: zoneName) else { return .failure(WaitUntilError("Invalid timezone: '\(zoneName)'")) }
        if let duration = params["duration_hours"], !duration.isNull {
            guard let hours = duration.doubleValue ?? duration.stringValue.flatMap({ Double($0) }), duration.boolValue == nil,
                hours.isFinite
            else {
                return .failure(WaitUntilError("Invalid duration_hours value: \(PythonFormat.str(duration))"))
            }
            if hours < minimumHours { return .failure(WaitUntilError("duration_hours must be at least 0.0167 (1 minute)")) }
            if hours > maximumHours { return .failure(WaitUntilError("duration_hours cannot exceed 168 (1 week)")) }
            return .success(now.addingTimeInterval(hours * 3600))
        }
        guard let until = params["until_time"], !until.isNull, let text = until.stringValue, !text.isEmpty else {
            return .failure(WaitUntilError("Either duration_hours or until_time must be specified"))
        }
        let wake: Date
        if let clock = clockTime(text) {
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = zone
            var parts = calendar.dateComponents([.year, .month, .day], from: now)
            (parts.hour, parts.minute, parts.second) = clock
            guard let today = calendar.date(from: parts) else { return .failure(WaitUntilError("Unrecognized time format: \(text)")) }
            wake = today > now ? today : calendar.date(byAdding: .day, value: 1, to: today) ?? today
        } else if let date = isoDate(text, zone: zone) {
            wake = date
        } else {
            return .failure(WaitUntilError("Unrecognized time format: \(text)"))
        }
        if wake <= now { return .failure(WaitUntilError("until_time must be in the future. Got: \(text)")) }
        if wake.timeIntervalSince(now) > maximumHours * 3600 {
            return .failure(WaitUntilError("until_time cannot be more than 168 hours in the future"))
        }
        return .success(wake)
    }

    /// Parameter checks for `POST /actions/validate`.
    static func validate(_ params: JSONObject) -> [String] {
        let hasDuration = params["duration_hours"].map { !$0.isNull } ?? false
        let hasUntil = params["until_time"].map { !$0.isNull && $0 != .string("") } ?? false
        if hasDuration && hasUntil { return ["Specify either duration_hours or until_time, not both"] }
        let zoneName = params["timezone"].flatMap(\.stringValue) ?? "UTC"
        if TimeZone(identifier: zoneName) == nil { return ["Invalid timezone: '\(zoneName)'"] }
        if !hasDuration && !hasUntil { return ["Either duration_hours or until_time must be specified"] }
        if hasUntil, let text = params["until_time"]?.stringValue, !Template.containsSyntax(text),
            clockTime(text) == nil, isoDate(text, zone: .gmt) == nil
        {
            return ["Unrecognized time format: \(text)"]
        }
        return []
    }

    /// The outputs while waiting.
    static func waitingOutputs(wake: Date, now: Date) -> JSONObject {
        [
            "waited": false, "scheduled_wake_time": .string(isoString(wake)), "actual_wake_time": .null,
            "wait_duration_seconds": .int(DurationLimits.wholeSeconds(wake.timeIntervalSince(now))),
        ]
    }

    /// The outputs after waking, from the waiting outputs.
    static func wokenOutputs(_ waiting: JSONObject, now: Date) -> JSONObject {
        var outputs = waiting
        outputs["waited"] = true
        outputs["actual_wake_time"] = .string(isoString(now))
        return outputs
    }

    /// `HH:MM` or `HH:MM:SS`.
    private static func clockTime(_ text: String) -> (Int?, Int?, Int?)? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        let numbers = parts.compactMap { part in part.count == 2 && part.allSatisfy { $0.isASCII && $0.isNumber } ? Int(part) : nil }
        guard (2...3).contains(parts.count), numbers.count == parts.count else { return nil }
        guard numbers[0] < 24, numbers[1] < 60, numbers.count == 2 || numbers[2] < 60 else { return nil }
        return (numbers[0], numbers[1], numbers.count == 3 ? numbers[2] : 0)
    }

    /// ISO 8601: `YYYY-MM-DD`, with `THH:MM[:SS[.fff]]` and `Z` or `±HH:MM`; without an offset the
    /// time is read in `zone`.
    static func isoDate(_ text: String, zone: TimeZone) -> Date? {
        let pattern = #/^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?(Z|[+-]\d{2}:?\d{2})?$/#
        // `\d` matches every script's digits; only ASCII ones are dates.
        guard text.allSatisfy(\.isASCII), let match = try? pattern.wholeMatch(in: text) else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        if let offset = match.8 {
            let digits = offset.filter(\.isNumber)
            let seconds = offset == "Z" ? 0 : (Int(digits.prefix(2)) ?? 0) * 3600 + (Int(digits.suffix(2)) ?? 0) * 60
            calendar.timeZone = TimeZone(secondsFromGMT: offset.hasPrefix("-") ? -seconds : seconds) ?? zone
        }
        var components = DateComponents(year: Int(match.1), month: Int(match.2), day: Int(match.3))
        components.hour = match.4.flatMap { Int($0) } ?? 0
        components.minute = match.5.flatMap { Int($0) } ?? 0
        components.second = match.6.flatMap { Int($0) } ?? 0
        guard let month = components.month, (1...12).contains(month), let day = components.day, (1...31).contains(day),
            let date = calendar.date(from: components), calendar.component(.day, from: date) == day
        else { return nil }
        let fraction = match.7.map { Double("0." + $0) ?? 0 } ?? 0
        return date.addingTimeInterval(fraction)
    }

    /// Python's `datetime.isoformat()` of an aware UTC time: `2026-01-02T03:04:05+00:00`.
    static func isoString(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = .gmt
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .nanosecond], from: date)
        func pad(_ value: Int?, _ width: Int = 2) -> String {
            let text = String(value ?? 0)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        var result =
            "\(pad(parts.year, 4))-\(pad(parts.month))-\(pad(parts.day))T\(pad(parts.hour)):\(pad(parts.minute)):\(pad(parts.second))"
        let microseconds = (parts.nanosecond ?? 0) / 1000
        if microseconds > 0 { result += "." + pad(microseconds, 6) }
        return result + "+00:00"
    }
}

/// Why `wait_until` cannot compute a wake-up time.
public struct WaitUntilError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
