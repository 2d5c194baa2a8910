import CoreMetrics
import Foundation
import MetricsExport
import Telemetry
import Testing

@Suite("Metric families")
struct MetricFamilyTests {
    static let definition = MetricCatalog.httpRequests

    static func render(_ exporter: PrometheusExporter) -> String {
        String(decoding: exporter.render(), as: UTF8.self)
    }

    @Test("hostile label values cannot grow a family past its bound or break the text")
    func hostileLabels() {
        let exporter = PrometheusExporter()
        let requests = CounterFamily(Self.definition, factory: exporter.factory)
        requests.increment("GET\"\n{evil=\"1\"}", String(repeating: "r", count: 10_000), "\\")
        for index in 0..<(MetricFamily<Counter>.maximumSeries + 300) {
            requests.increment("GET", "/route/\(index)", "200")
        }
        let text = Self.render(exporter)
        let series = text.split(separator: "\n").filter { $0.hasPrefix("budpipeline_http_requests_total{") }
        #expect(series.count == MetricFamily<Counter>.maximumSeries + 1)
        #expect(text.contains(#"budpipeline_http_requests_total{method="other",route="other",status="other"} 301"#))
        // The quote and line break of the hostile value are escaped, its length cut.
        #expect(text.contains(#"method="GET\"\n{evil=\"1\"}""#))
        // No line of the text is longer than the bound on values allows.
        #expect(text.split(separator: "\n").allSatisfy { $0.utf8.count < 1000 })
    }

    @Test("durations from any stored dates are recorded without a trap")
    func hostileDurations() {
        let exporter = PrometheusExporter()
        let durations = DurationFamily(MetricCatalog.stepDuration, factory: exporter.factory)
        for seconds in [-1e300, -1, 0, 1e-12, 1e300, .infinity, -.infinity, .nan, Double.greatestFiniteMagnitude] {
            durations.record(seconds: seconds, "log", "completed")
        }
        durations.record(.seconds(Int64.max), "log", "completed")
        durations.record(.seconds(-5), "log", "completed")
        let text = Self.render(exporter)
        #expect(text.contains(#"budpipeline_step_duration_seconds_count{action="log",outcome="completed"} 11"#))
        // Negative and NaN times count as zero: the first bucket has them.
        #expect(text.contains(#"budpipeline_step_duration_seconds_bucket{action="log",outcome="completed",le="0.001"} 7"#), "\(text)")
    }

    @Test("a mirrored counter adds what its source grew by and starts again when the source did")
    func mirroredCounter() {
        let exporter = PrometheusExporter()
        let crashes = MirroredCounterFamily(MetricCatalog.pluginProcessCrashes, factory: exporter.factory)
        crashes.sync(to: 2, "greeter")
        crashes.sync(to: 2, "greeter")
        crashes.sync(to: 5, "greeter")
        crashes.sync(to: 1, "greeter")  // the plugin was reloaded: its count started again
        crashes.sync(to: 3, "greeter")
        #expect(Self.render(exporter).contains(#"budpipeline_plugin_process_crashes_total{plugin="greeter"} 7"#))
    }

    @Test("every catalog metric has a Prometheus name, help, and labels that fit its kind")
    func catalog() {
        var names = Set<String>()
        for definition in MetricCatalog.all {
            #expect(names.insert(definition.name).inserted, "\(definition.name) twice")
            #expect(definition.name.hasPrefix("budpipeline_"))
            #expect(definition.name.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "_" })
            #expect(!definition.help.isEmpty)
            #expect((definition.kind == .counter) == definition.name.hasSuffix("_total"), "\(definition.name)")
            #expect((definition.kind == .histogram) == !definition.buckets.isEmpty, "\(definition.name)")
            #expect(!definition.labels.contains("le") && Set(definition.labels).count == definition.labels.count)
        }
    }

    @Test("the catalog and docs/operations.md list the same metrics")
    func documented() throws {
        let docs = try String(contentsOfFile: Self.repository + "/docs/operations.md", encoding: .utf8)
        let missing = MetricCatalog.all.map(\.name).filter { !docs.contains("`\($0)`") }
        #expect(missing.isEmpty, "docs/operations.md does not list \(missing)")
    }

    @Test("the rendered text carries HELP and TYPE lines and the process metrics")
    func exposition() {
        let exporter = PrometheusExporter()
        CounterFamily(MetricCatalog.executionsStarted, factory: exporter.factory).increment()
        let text = Self.render(exporter)
        #expect(text.contains("# HELP budpipeline_executions_started_total \(MetricCatalog.executionsStarted.help)"))
        #expect(text.contains("# TYPE budpipeline_executions_started_total counter"))
        #expect(text.contains("budpipeline_executions_started_total 1"))
        for name in ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds"] {
            #expect(text.contains("\n\(name) "), "\(name) missing")
        }
    }

    static var repository: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }
}
