import ArgumentParser
import BudJSON
import BudPipelineHost
import Foundation
import Logging
import PipelineEngine
import Runtime
import ServiceLifecycle
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
        var logger = Logger(label: "benchmark.timers")
        logger.logLevel = .error
        let (database, location) = try await BenchmarkDatabase.open(backend, postgresURL: postgresURL)
        try await Migrator(database: database).migrate()
        let store = PipelineStore(database: database)
        let plugins = await PluginHost.load(configuration: PluginHostConfiguration(pluginDirectories: []), logger: logger)
        let runtime = ExecutionRuntime(store: store, plugins: plugins, configuration: RuntimeConfiguration(), logger: logger)
        let group = ServiceGroup(services: RuntimeServices.all(for: runtime), logger: logger)
        let services = Task { try await group.run() }

        let first = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 + 3).rounded(.up))
        let formatter = ISO8601DateFormatter()
        var started: [(id: String, wake: Date)] = []
        for index in 0..<executions {
            let wake = first.addingTimeInterval(Double(index % 2))
            let dag: JSONValue = [
                "name": "timer-benchmark",
                "steps": [
                    ["id": "wait", "name": "Wait", "action": "wait_until", "params": ["until_time": .string(formatter.string(from: wake))]]
                ],
            ]
            started.append((try await runtime.startExecution(ExecutionRequest(dag: dag, initiator: "benchmark")).id, wake))
        }
        var lags: [Double] = []
        for (id, wake) in started {
            let finished = try await runtime.waitUntilFinished(executionID: id, timeout: .seconds(60))
            guard finished.status == .completed, let ended = try await store.steps(executionID: id).first?.state.endedAt else {
                throw ValidationError("execution \(id) ended \(finished.status)")
            }
            lags.append(ended.timeIntervalSince(wake) * 1000)
        }
        lags.sort()
        func percentile(_ fraction: Double) -> Double {
            lags[min(lags.count - 1, max(0, Int((Double(lags.count) * fraction).rounded(.up)) - 1))]
        }
        print("timer lag on \(try await database.serverVersion()) (\(location))")
        print(
            String(
                format: "%d wait_until steps, %d due at each of two seconds: p50 %.1f ms  p99 %.1f ms  max %.1f ms", lags.count,
                executions / 2, percentile(0.5), percentile(0.99), percentile(1)))

        await group.triggerGracefulShutdown()
        _ = try? await services.value
        await plugins.shutdown()
        await database.close()
    }
}
