import ArgumentParser
import BudJSON
import BudPipelineHost
import Foundation
import Logging
import PipelineEngine
import PipelineRuntime
import ServiceLifecycle
import Storage
import StoragePostgres
import StorageSQLite

/// Step transitions per second through the whole runtime (engine, store, plugin pool), beside the
/// raw rate of an equivalent three-statement transaction on the same database in the same run.
struct RuntimeBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runtime",
        abstract: "Step transitions/s for one sequential chain and for many concurrent executions, on SQLite or PostgreSQL.",
        discussion: """
            A transition is one committed transaction of the runtime: the changed step rows, the \
            execution row (version + 1), progress events and outbox events together. For PostgreSQL \
            give --postgres-url (an admin URL; a fresh database is created) or set \
            BUDPIPELINE_TEST_POSTGRES_URL (scripts/benchmark-runtime.sh starts a server).
            """
    )

    @Option(help: "sqlite or postgres.")
    var backend: BenchmarkDatabase.Backend = .sqlite

    @Option(help: "PostgreSQL admin URL (default: BUDPIPELINE_TEST_POSTGRES_URL).")
    var postgresURL: String?

    @Option(help: "Steps of the sequential chain.")
    var chainSteps = 1000

    @Option(help: "Concurrent executions.")
    var executions = 50

    @Option(help: "Steps of each concurrent execution (a chain).")
    var stepsPerExecution = 40

    @Option(help: "Raw transactions to time (per mode).")
    var rawTransactions = 2000

    @Flag(help: "Record metrics into a Prometheus registry, as `budpipeline serve` does (BUDPIPELINE_METRICS).")
    var metrics = false

    func run() async throws {
        let bench = try await BenchmarkRuntime.start(
            backend, postgresURL: postgresURL, pluginFiles: [try PluginCallBenchmark.compileNoopPlugin()], label: "benchmark.runtime",
            metrics: metrics)
        let (runtime, store, database, location) = (bench.runtime, bench.store, bench.database, bench.location)

        print("runtime throughput on \(try await database.serverVersion()) (\(location)), metrics \(metrics ? "on" : "off")")
        let raw = try await RawTransactions(store: store, count: rawTransactions).run()
        print(
            String(
                format: "raw 3-statement transaction, one round trip per statement: %8.0f/s sequential, %8.0f/s with 50 clients",
                raw.sequential, raw.concurrent))

        let chain = try await measure(runtime, executions: 1, steps: chainSteps)
        print(chain.line("one sequential chain of \(chainSteps) noop steps"))
        print(String(format: "    = %.0f %% of the raw sequential rate", chain.transitionsPerSecond / raw.sequential * 100))
        let concurrent = try await measure(runtime, executions: executions, steps: stepsPerExecution)
        print(concurrent.line("\(executions) concurrent executions of \(stepsPerExecution) noop steps"))
        print(String(format: "    = %.0f %% of the raw rate with 50 clients", concurrent.transitionsPerSecond / raw.concurrent * 100))

        await bench.stop()
    }

    /// User and system CPU time of this process so far.
    static func processCPUSeconds() -> Double {
        var usage = rusage()
        guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return 0 }
        let user = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        let system = Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        return user + system
    }

    struct Result {
        /// CPU time of the whole process (runtime, database threads, SQLite's work, the plugin).
        let cpuSeconds: Double
        let transitions: Int
        let stepWrites: Int
        let steps: Int
        let seconds: Double
        let writeTime: Duration

        var transitionsPerSecond: Double { Double(transitions) / seconds }

        func line(_ label: String) -> String {
            String(
                format: "%@: %8.0f transitions/s (%d transactions, %d step rows, %.0f steps/s, %.2f s)", label, transitionsPerSecond,
                transitions, stepWrites, Double(steps) / seconds, seconds)
                + String(
                    format: "\n    mean write of a transition: %.0f µs; process CPU per transition: %.1f µs",
                    writeTime / .microseconds(1) / Double(max(1, transitions)), cpuSeconds * 1e6 / Double(max(1, transitions)))
        }
    }

    /// Runs `executions` chains of `steps` noop steps at once and times them from start to finish.
    private func measure(_ runtime: ExecutionRuntime, executions: Int, steps: Int) async throws -> Result {
        let dag: JSONValue = [
            "name": "bench",
            "steps": .array(
                (0..<steps).map { index in
                    var step: JSONObject = ["id": .string("s\(index)"), "name": .string("Step \(index)"), "action": "noop"]
                    if index > 0 { step["depends_on"] = [.string("s\(index - 1)")] }
                    return .object(step)
                }),
        ]
        let before = runtime.statisticsSnapshot
        let cpuBefore = Self.processCPUSeconds()
        let started = ContinuousClock.now
        let ids = try await withThrowingTaskGroup(of: ExecutionID.self) { group in
            for _ in 0..<executions { group.addTask { try await runtime.startExecution(ExecutionRequest(dag: dag)).id } }
            return try await group.reduce(into: [ExecutionID]()) { $0.append($1) }
        }
        for id in ids {
            let finished = try await runtime.waitUntilFinished(executionID: id, timeout: .seconds(600))
            guard finished.status == .completed else { throw ValidationError("execution \(id) ended \(finished.status.rawValue)") }
        }
        let elapsed = ContinuousClock.now - started
        let cpu = Self.processCPUSeconds() - cpuBefore
        let after = runtime.statisticsSnapshot
        return Result(
            cpuSeconds: cpu,
            transitions: after.transitions - before.transitions,
            stepWrites: after.stepWrites - before.stepWrites,
            steps: executions * steps,
            seconds: elapsed / .seconds(1),
            writeTime: after.writeTime - before.writeTime
        )
    }
}

/// The baseline: BEGIN; UPDATE the execution row; UPDATE a step row; INSERT an outbox row; COMMIT —
/// each statement waiting for its answer, as a client without pipelining does.
struct RawTransactions {
    let store: PipelineStore
    let count: Int

    func run() async throws -> (sequential: Double, concurrent: Double) {
        var ids: [String] = []
        for _ in 0..<50 {
            let id = ExecutionID.generate()
            let now = Date()
            let record = ExecutionRecord(
                id: id, pipelineID: nil, definitionSnapshot: ["dag": [:]], initiator: "bench", createdAt: now, updatedAt: now)
            let step = StepRecord(
                id: UUID().uuidString.lowercased(), executionID: id, state: StepState(stepID: "s", name: "S", action: "noop", sequence: 1),
                createdAt: now, updatedAt: now)
            try await store.executions.insert(NewExecution(record: record, steps: [step]))
            ids.append(id.rawValue)
        }
        let database = store.database
        let transaction: @Sendable (String) async throws -> Void = { id in
            try await database.transaction { session in
                let now = SQLValue.date(Date())
                try session.execute("UPDATE pipeline_execution SET version = version + 1, updated_at = $2 WHERE id = $1", .text(id), now)
                try session.execute(
                    "UPDATE step_execution SET progress_percentage = 50, updated_at = $2 WHERE execution_id = $1 AND step_id = 's'",
                    .text(id), now)
                try session.execute(
                    "INSERT INTO outbox (execution_id, event_type, payload, available_at, created_at) VALUES ($1, 'bench', $2, $3, $3)",
                    .text(id), .json(["n": 1]), now)
            }
        }
        for _ in 0..<50 { try await transaction(ids[0]) }
        var started = ContinuousClock.now
        for _ in 0..<count { try await transaction(ids[0]) }
        let sequential = Double(count) / seconds(since: started)
        started = ContinuousClock.now
        let perClient = max(1, count / 50)
        let clientIDs = ids
        try await withThrowingTaskGroup(of: Void.self) { group in
            for id in clientIDs {
                group.addTask { for _ in 0..<perClient { try await transaction(id) } }
            }
            try await group.waitForAll()
        }
        let concurrent = Double(perClient * 50) / seconds(since: started)
        return (sequential, concurrent)
    }

    private func seconds(since start: ContinuousClock.Instant) -> Double {
        (ContinuousClock.now - start) / .seconds(1)
    }
}
