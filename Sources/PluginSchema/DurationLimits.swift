/// The bounds every duration in the product keeps: timeouts, waits, backoffs and time estimates.
///
/// Durations come from pipelines, settings, plugins and events; dates computed from them are
/// stored and compared. Bounding them where they enter keeps that arithmetic and the stored dates
/// valid: values given as limits (a timeout, a backoff) are refused beyond the bound, estimates
/// (an ETA) are clamped to it. See docs/operations.md, "Limits".
public enum DurationLimits {
    /// One year, in seconds: the longest timeout, wait or backoff.
    public static let maximumSeconds = 31_536_000

    /// `seconds` within `0...maximumSeconds`; `nil` for a value that is not a number.
    public static func clamp(_ seconds: Double) -> Double? {
        guard !seconds.isNaN else { return nil }
        return min(max(seconds, 0), Double(maximumSeconds))
    }

    /// `seconds` within `0...maximumSeconds`.
    public static func clamp(_ seconds: Int) -> Int {
        min(max(seconds, 0), maximumSeconds)
    }

    /// `seconds` rounded to whole seconds within `-maximumSeconds...maximumSeconds` (0 for NaN):
    /// for messages and outputs computed from stored dates.
    public static func wholeSeconds(_ seconds: Double) -> Int {
        guard !seconds.isNaN else { return 0 }
        return Int(min(max(seconds.rounded(), -Double(maximumSeconds)), Double(maximumSeconds)))
    }

    /// Whether `seconds` is a finite number within `minimum...maximumSeconds`.
    public static func allows(_ seconds: Double, minimum: Double = 0) -> Bool {
        seconds.isFinite && seconds >= minimum && seconds <= Double(maximumSeconds)
    }
}
