import ArgumentParser
import CoreMetrics
import Foundation
import MetricsExport
import Telemetry

/// `metrics`: what recording costs, per call of each kind the server makes, into the Prometheus
/// registry `budpipeline serve` uses; and what one execution of a 5-step chain records, put
/// together from those calls.
struct MetricsBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics",
        abstract: "Time metric recording (counters, histograms, labelled lookups) into the Prometheus registry.",
        discussion: """
            Each figure is the mean of `--iterations` calls on one thread, after a warm-up. The \
            per-execution estimate counts what a 5-step chain of plugin steps records: two HTTP \
            requests (the start and the stream), 6 transitions, 10 step changes (5 with a \
            duration), 5 plugin calls, about 20 database queue waits, an execution start and end.
            """
    )

    @Option(help: "Calls timed per figure.")
    var iterations = 1_000_000

    func run() throws {
        let exporter = PrometheusExporter()
        let factory = exporter.factory
        let counter = CounterFamily(MetricCatalog.transitions, factory: factory).counter()
        let histogram = DurationFamily(MetricCatalog.transitionWriteDuration, factory: factory).series()
        let labelled = CounterFamily(MetricCatalog.stepTransitions, factory: factory)
        let labelledDurations = DurationFamily(MetricCatalog.stepDuration, factory: factory)
        let gauge = GaugeFamily(MetricCatalog.httpRequestsInFlight, factory: factory).meter()

        let increment = time { counter.increment() }
        let record = time { histogram.record(.microseconds(300)) }
        let lookup = time { labelled.increment("noop", "completed") }
        let lookupRecord = time { labelledDurations.record(seconds: 0.002, "noop", "completed") }
        let meter = time {
            gauge.increment()
            gauge.decrement()
        }
        let clock = time { _ = DispatchTime.now().uptimeNanoseconds }
        print("metric recording into the Prometheus registry, \(iterations) calls each, one thread")
        print(String(format: "  counter increment (series held):            %6.1f ns", increment))
        print(String(format: "  histogram record (series held):             %6.1f ns", record))
        print(String(format: "  counter increment with a 2-label lookup:    %6.1f ns", lookup))
        print(String(format: "  histogram record with a 2-label lookup:     %6.1f ns", lookupRecord))
        print(String(format: "  gauge up and down (requests in flight):     %6.1f ns", meter))
        print(String(format: "  monotonic clock read (queue wait stamps):   %6.1f ns", clock))
        // Held series: transitions, write times, HTTP (cached per route), plugin calls; looked
        // up: execution end (once). Step changes use a cache lookup comparable to a labelled one.
        let perExecution =
            2 * (meter + lookup + lookupRecord)  // two requests
            + 6 * (increment + record)  // transitions
            + 10 * lookup + 5 * record  // step changes
            + 5 * (lookup + lookupRecord)  // plugin calls
            + 20 * (2 * clock + record)  // database queue waits
            + 2 * lookup + lookupRecord  // start, end, execution duration
        print(String(format: "  one 5-step chain execution records about %.1f µs", perExecution / 1000))
    }

    private func time(_ body: () -> Void) -> Double {
        meanNanoseconds(iterations: iterations, body)
    }
}
