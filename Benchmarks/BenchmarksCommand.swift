import ArgumentParser

/// `budpipeline-benchmarks`: prints the figures recorded in docs/performance.md.
///
/// Run in release mode: `swift run -c release budpipeline-benchmarks <benchmark>`.
@main
struct BenchmarksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "budpipeline-benchmarks",
        abstract: "Measure BudPipeline's hot paths.",
        subcommands: [
            PluginCallBenchmark.self, JSONBenchmark.self, EngineBenchmark.self, RuntimeBenchmark.self, EventBenchmark.self,
            TimerBenchmark.self,
            HTTPLoadBenchmark.self, EndToEndBenchmark.self, MetricsBenchmark.self, TracingBenchmark.self, GraphBenchmark.self,
        ]
    )
}
