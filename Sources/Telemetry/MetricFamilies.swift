public import CoreMetrics
import Synchronization

/// The series of one metric, one per combination of label values, made on first use and kept.
///
/// Guarantees, whatever the label values (they may come from requests, stored rows or plugins):
/// - Every series has exactly the definition's label names, in its order.
/// - A value is cut to ``maximumValueLength`` bytes' worth of characters.
/// - A family holds at most ``maximumSeries`` series; values that would make another are recorded
///   in one series whose every label is `other`, so memory and the scraped text stay bounded.
public final class MetricFamily<Handle: Sendable>: Sendable {
    public let definition: MetricDefinition
    private let make: @Sendable ([(String, String)]) -> Handle
    private let series = Mutex<[[String]: Handle]>([:])

    /// Series kept before new label values go to the `other` series.
    public static var maximumSeries: Int { 500 }
    /// Characters of a label value kept.
    public static var maximumValueLength: Int { 120 }

    init(_ definition: MetricDefinition, make: @escaping @Sendable (_ dimensions: [(String, String)]) -> Handle) {
        self.definition = definition
        self.make = make
    }

    /// The series for `values`, one per label of the definition (missing ones are empty, extra
    /// ones ignored).
    public func series(_ values: [String]) -> Handle {
        var key = [String]()
        key.reserveCapacity(definition.labels.count)
        for index in definition.labels.indices {
            key.append(index < values.count ? String(values[index].prefix(Self.maximumValueLength)) : "")
        }
        return series.withLock { series in
            if let existing = series[key] { return existing }
            if series.count >= Self.maximumSeries {
                key = Array(repeating: "other", count: definition.labels.count)
                if let overflow = series[key] { return overflow }
            }
            let handle = make(Array(zip(definition.labels, key)))
            series[key] = handle
            return handle
        }
    }
}

/// Counts events.
public struct CounterFamily: Sendable {
    let family: MetricFamily<Counter>

    public init(_ definition: MetricDefinition, factory: any MetricsFactory) {
        family = MetricFamily(definition) { Counter(label: definition.name, dimensions: $0, factory: factory) }
    }

    /// Adds `amount` (when positive) to the series of `values`.
    public func increment(by amount: Int = 1, _ values: String...) {
        guard amount > 0 else { return }
        family.series(values).increment(by: amount)
    }

    /// The series of `values`, for a caller that records into it often (no lookup each time).
    public func counter(_ values: String...) -> Counter {
        family.series(values)
    }
}

/// Records durations into a histogram.
public struct DurationFamily: Sendable {
    let family: MetricFamily<Timer>

    public init(_ definition: MetricDefinition, factory: any MetricsFactory) {
        family = MetricFamily(definition) { Timer(label: definition.name, dimensions: $0, factory: factory) }
    }

    /// Records `duration` in the series of `values`; a negative one counts as zero.
    public func record(_ duration: Duration, _ values: String...) {
        family.series(values).recordNanoseconds(Self.nanoseconds(duration))
    }

    /// Records `seconds` in the series of `values`: a negative or NaN value counts as zero, one
    /// beyond a century as a century (times computed from stored dates may be anything).
    public func record(seconds: Double, _ values: String...) {
        family.series(values).recordNanoseconds(Self.nanoseconds(seconds: seconds))
    }

    /// The series of `values`, for a caller that records into it often (no lookup each time).
    public func series(_ values: String...) -> DurationSeries {
        DurationSeries(timer: family.series(values))
    }

    static func nanoseconds(seconds: Double) -> Int64 {
        let bounded = seconds.isNaN ? 0 : min(max(seconds, 0), centurySeconds)
        return Int64(bounded * 1_000_000_000)
    }

    static let centurySeconds: Double = 100 * 365 * 86_400

    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0 else { return 0 }
        guard Double(seconds) < centurySeconds else { return Int64(centurySeconds) * 1_000_000_000 }
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

/// One series of a ``DurationFamily``, with the same bounds on what it records.
public struct DurationSeries: Sendable {
    let timer: Timer

    public func record(_ duration: Duration) {
        timer.recordNanoseconds(DurationFamily.nanoseconds(duration))
    }

    public func record(seconds: Double) {
        timer.recordNanoseconds(DurationFamily.nanoseconds(seconds: seconds))
    }
}

/// A value that goes up and down, set when measured.
public struct GaugeFamily: Sendable {
    let family: MetricFamily<Meter>

    public init(_ definition: MetricDefinition, factory: any MetricsFactory) {
        family = MetricFamily(definition) { Meter(label: definition.name, dimensions: $0, factory: factory) }
    }

    /// Sets the series of `values` to `value` (NaN as 0).
    public func set(_ value: Double, _ values: String...) {
        family.series(values).set(value.isNaN ? 0 : value)
    }

    public func increment(_ values: String...) { family.series(values).increment() }
    public func decrement(_ values: String...) { family.series(values).decrement() }

    /// The series of `values`, for a caller that records into it often (no lookup each time).
    public func meter(_ values: String...) -> Meter {
        family.series(values)
    }
}

/// A counter whose total is kept elsewhere (a plugin process's crash count): each ``sync(to:_:)``
/// adds what the total grew by since the last one. A total that went down (its owner was
/// replaced) is taken as the new starting point.
public final class MirroredCounterFamily: Sendable {
    private let counters: CounterFamily
    private let lastSeen = Mutex<[[String]: Int]>([:])

    public init(_ definition: MetricDefinition, factory: any MetricsFactory) {
        counters = CounterFamily(definition, factory: factory)
    }

    public func sync(to total: Int, _ values: String...) {
        let growth = lastSeen.withLock { lastSeen -> Int in
            guard lastSeen[values] != nil || lastSeen.count < MetricFamily<Counter>.maximumSeries else { return 0 }
            let previous = lastSeen[values] ?? 0
            lastSeen[values] = total
            return total > previous ? total - previous : 0
        }
        guard growth > 0 else { return }
        counters.family.series(values).increment(by: growth)
    }
}
