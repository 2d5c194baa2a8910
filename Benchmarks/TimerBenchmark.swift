import ArgumentParser
import BudJSON
import Foundation
import PipelineEngine
import PipelineRuntime
import Storage

/// Timer lag: how late `wait_until` steps wake, many due at once.
struct TimerBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "timers",
        abstract: "Timer lag: how late wait_until steps wake (many at the same second), on SQLite or PostgreSQL.",
        discussion: """
            Starts --executions executions of one wait_until step, half due at one whole second and \
            half at the next, and reports how long after its due time each step ended (the timer \
            fired, the step settled and the execution completed in one transition).
            """
    )

    @Option(help: "sqlite or postgres.")
    var backend: BenchmarkDatabase.Backend = .sqlite

    @Option(help: "PostgreSQL admin URL (default: BUDPIPELINE_TEST_POSTGRES_URL).")
    var postgresURL: String?

    @Option(help: "Executions, one timer each.")
    var executions = 200

    func run() async throws {
        let bench = try await BenchmarkRuntime.start(backend, postgresURL: postgresURL, label: "benchmark.timers")
        let first = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 + 3).rounded(.up))
        let formatter = ISO8601DateFormatter()
        var started: [(id: ExecutionID, wake: Date)] = []
        for index in 0..<executions {
            let wake = first.addingTimeInterval(Double(index % 2))
            let dag: JSONValue = [
                "name": "timer-benchmark",
                "steps": [
                    ["id": "wait", "name": "Wait", "action": "wait_until", "params": ["until_time": .string(formatter.string(from: wake))]]
                ],
            ]
            started.append((try await bench.runtime.startExecution(ExecutionRequest(dag: dag, initiator: "benchmark")).id, wake))
        }
        var lags: [Double] = []
        for (id, wake) in started {
            let finished = try await bench.runtime.waitUntilFinished(executionID: id, timeout: .seconds(60))
            guard finished.status == .completed, let ended = try await bench.store.executions.steps(executionID: id).first?.state.endedAt
            else {
                throw ValidationError("execution \(id) ended \(finished.status)")
            }
            lags.append(ended.timeIntervalSince(wake) * 1000)
        }
        lags.sort()
        print("timer lag on \(try await bench.describe())")
        print(
            String(
                format: "%d wait_until steps, %d due at each of two seconds: p50 %.1f ms  p99 %.1f ms  max %.1f ms", lags.count,
                executions / 2, lags.percentile(0.5), lags.percentile(0.99), lags.percentile(1)))
        await bench.stop()
    }
}
