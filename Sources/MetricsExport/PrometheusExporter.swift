public import CoreMetrics
import Foundation
import Prometheus
import Telemetry

#if canImport(Glibc)
    import Glibc
#endif

/// The process's metrics in one Prometheus registry, rendered in the text exposition format
/// (version 0.0.4) for `GET /metrics`.
///
/// Series are made through ``factory``, which gives each metric of ``MetricCatalog`` its help
/// text and buckets. Besides them the text carries the standard process metrics
/// (`process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_virtual_memory_bytes`,
/// `process_open_fds`, `process_max_fds`, `process_start_time_seconds`), read from `/proc` when
/// rendered.
public final class PrometheusExporter: Sendable {
    let registry = PrometheusCollectorRegistry()
    /// Makes the series of this exporter's registry.
    public let factory: any MetricsFactory
    private let startTime = Date().timeIntervalSince1970

    /// The content type of ``render()``'s text.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    public init() {
        factory = CatalogMetricsFactory(registry: registry)
    }

    /// Every series, then the process metrics.
    public func render() -> [UInt8] {
        var buffer = registry.emitToBuffer()
        buffer += Array(ProcessMetrics.text(startTime: startTime).utf8)
        return buffer
    }
}

/// A swift-metrics factory over a Prometheus registry that names each metric's help and buckets
/// from ``MetricCatalog``. Names outside the catalog get no help and the default buckets.
struct CatalogMetricsFactory: MetricsFactory {
    let registry: PrometheusCollectorRegistry

    /// Buckets for histograms outside the catalog.
    static let defaultBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    private func descriptor(_ name: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: MetricCatalog.byName[name]?.help ?? "")
    }

    private func buckets(_ name: String) -> [Double] {
        let buckets = MetricCatalog.byName[name]?.buckets ?? []
        return buckets.isEmpty ? Self.defaultBuckets : buckets
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else { return registry.makeGauge(descriptor: descriptor(label), labels: dimensions) }
        return registry.makeValueHistogram(descriptor: descriptor(label), labels: dimensions, buckets: buckets(label))
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        registry.makeDurationHistogram(
            descriptor: descriptor(label), labels: dimensions,
            buckets: buckets(label).map { .nanoseconds(Int64(($0 * 1_000_000_000).rounded())) })
    }

    func destroyCounter(_ handler: any CounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    func destroyRecorder(_ handler: any RecorderHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
        if let histogram = handler as? ValueHistogram { registry.unregisterValueHistogram(histogram) }
    }

    func destroyMeter(_ handler: any MeterHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
    }

    func destroyTimer(_ handler: any TimerHandler) {
        if let histogram = handler as? DurationHistogram { registry.unregisterDurationHistogram(histogram) }
    }
}

/// The standard process metrics, read from `/proc/self` (Linux); lines it cannot read are left out.
enum ProcessMetrics {
    static func text(startTime: Double) -> String {
        var lines: [String] = []
        func add(_ name: String, _ type: String, _ help: String, _ value: Double) {
            lines.append("# HELP \(name) \(help)")
            lines.append("# TYPE \(name) \(type)")
            lines.append("\(name) \(format(value))")
        }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
        if let fields = statFields(), fields.count > 21, ticks > 0 {
            // After the command's closing parenthesis: state is field 0, utime 11, stime 12,
            // vsize 20, rss 21 (fields 3, 14, 15, 23 and 24 of proc(5)).
            if let user = Double(fields[11]), let system = Double(fields[12]) {
                add("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", (user + system) / ticks)
            }
            if let virtual = Double(fields[20]) {
                add("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", virtual)
            }
            if let resident = Double(fields[21]), pageSize > 0 {
                add("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", resident * pageSize)
            }
        }
        if let open = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            add("process_open_fds", "gauge", "Number of open file descriptors.", Double(open.count))
        }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            add("process_max_fds", "gauge", "Maximum number of open file descriptors.", Double(limit.rlim_cur))
        }
        add("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", startTime)
        return lines.map { $0 + "\n" }.joined()
    }

    /// The fields of `/proc/self/stat` after the command name (which may hold spaces).
    private static func statFields() -> [Substring]? {
        guard let text = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        return text[text.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
    }

    private static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }
}
