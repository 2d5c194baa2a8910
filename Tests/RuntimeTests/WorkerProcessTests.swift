import BudJSON
import BudPipelineHost
import Foundation
import Logging
import PipelineEngine
import PipelineRuntime
import Storage
import Testing
import _BudPipelineTestSupport

/// Real `budpipeline worker` processes on one database: sharing work, crashing, restarting.
@Suite("Worker processes", .serialized)
struct WorkerProcessTests {
    /// Three plugin steps in a chain, each taking `sleepMs`.
    static func chain(sleepMs: Int) -> JSONValue {
        RuntimeTests.dag([
            RuntimeTests.step("a", "probe_echo", params: ["sleep_ms": .int(sleepMs)]),
            RuntimeTests.step("b", "probe_echo", params: ["sleep_ms": .int(sleepMs)], after: ["a"]),
            RuntimeTests.step("c", "probe_echo", params: ["sleep_ms": .int(sleepMs)], after: ["b"]),
        ])
    }

    /// Stores `count` executions of `dag` for any worker to pick up, without running them here.
    static func enqueue(_ count: Int, of dag: JSONValue, in database: TestDatabase) async throws -> [ExecutionID] {
        let directory = try await FixturePlugins.shared.directory(with: ["runtime_probe"])
        var logger = Logger(label: "test.enqueue")
        logger.logLevel = .error
        let plugins = await PluginHost.load(configuration: PluginHostConfiguration(pluginDirectories: [directory]), logger: logger)
        let runtime = ExecutionRuntime(store: database.store, plugins: plugins, configuration: RuntimeConfiguration(), logger: logger)
        var ids: [ExecutionID] = []
        for _ in 0..<count { ids.append(try await runtime.startExecution(ExecutionRequest(dag: dag), runHere: false).id) }
        await plugins.shutdown()
        return ids
    }

    static func startWorker(_ database: TestDatabase, probeLog: String, leaseSeconds: Int = 30) async throws -> BackgroundProcess {
        let directory = try await FixturePlugins.shared.directory(with: ["runtime_probe"])
        return try BackgroundProcess(
            Repository.executable, ["worker"],
            environment: [
                "DATABASE_URL": database.url, "BUDPIPELINE_PLUGIN_DIRS": directory, "BUDPIPELINE_PROBE_LOG": probeLog,
                "BUDPIPELINE_LEASE_SECONDS": "\(leaseSeconds)", "BUDPIPELINE_LEASE_SWEEP_MS": "200", "BUDPIPELINE_TIMER_POLL_MS": "100",
                "LOG_LEVEL": "notice",
            ])
    }

    /// Waits until every execution in `ids` has finished.
    static func waitForAll(_ ids: [ExecutionID], in store: PipelineStore, timeout: Duration) async throws -> [ExecutionStatus: Int] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let counts = try await store.executions.counts()
            let finished = counts.filter { $0.key.isFinished }.values.reduce(0, +)
            if finished >= ids.count || ContinuousClock.now > deadline { return counts }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    static func newProbeLog() -> String {
        NSTemporaryDirectory() + "bp-probe-workers-\(UUID().uuidString).log"
    }

    @Test(
        "two workers on one PostgreSQL share 200 executions and run each step attempt exactly once", .enabled(if: TestPostgres.isAvailable))
    func twoWorkersShareTheWork() async throws {
        try await TestDatabase.with(.postgres) { database in
            let probeLog = Self.newProbeLog()
            let first = try await Self.startWorker(database, probeLog: probeLog)
            let second = try await Self.startWorker(database, probeLog: probeLog)
            #expect(await first.waitForOutput("runtime ready"))
            #expect(await second.waitForOutput("runtime ready"))
            let ids = try await Self.enqueue(200, of: Self.chain(sleepMs: 2), in: database)
            let counts = try await Self.waitForAll(ids, in: database.store, timeout: .seconds(180))
            let firstStatus = await first.stop()
            let secondStatus = await second.stop()
            #expect(counts[.completed] == 200, "worker output:\n\(first.output)\n\(second.output)")
            #expect(firstStatus == 0, "\(first.output.suffix(4000))")
            #expect(secondStatus == 0, "\(second.output.suffix(4000))")

            let calls = ProbeLog.read(probeLog).filter { $0.call == "execute" }
            let expected = Set(ids.flatMap { id in ["a", "b", "c"].map { "\(id)/\($0)/0" } })
            #expect(calls.count == 600)
            #expect(Set(calls.map(\.detail)) == expected)
            let byWorker = Dictionary(grouping: calls, by: \.pid).mapValues(\.count)
            #expect(Set(byWorker.keys) == [first.pid, second.pid], "both workers ran steps: \(byWorker)")
        }
    }

    @Test(
        "after kill -9 and a restart every execution finishes; only interrupted steps run again, with the same key",
        arguments: TestBackend.available)
    func crashAndRestart(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { database in
            let ids = try await Self.enqueue(60, of: Self.chain(sleepMs: 60), in: database)
            let probeLog = Self.newProbeLog()
            let crashing = try await Self.startWorker(database, probeLog: probeLog, leaseSeconds: 2)
            let deadline = ContinuousClock.now + .seconds(60)
            while ProbeLog.read(probeLog).count < 40, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            await crashing.kill()

            // A COMMIT the killed worker sent just before it died can still land on PostgreSQL's
            // side a moment later: the states count once two readings agree.
            var runningAtKill: Set<String> = []
            var completedAtKill: Set<String> = []
            for _ in 0..<50 {
                var running: Set<String> = []
                var completed: Set<String> = []
                for id in ids {
                    for step in try await database.store.executions.steps(executionID: id) {
                        let key = "\(id)/\(step.state.stepID)/\(step.state.attempt)"
                        if step.state.status == .running { running.insert(key) }
                        if step.state.status == .completed { completed.insert(key) }
                    }
                }
                if running == runningAtKill, completed == completedAtKill { break }
                (runningAtKill, completedAtKill) = (running, completed)
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(!runningAtKill.isEmpty, "the kill came while steps were running")
            #expect(!completedAtKill.isEmpty)

            let restarted = try await Self.startWorker(database, probeLog: probeLog, leaseSeconds: 2)
            let counts = try await Self.waitForAll(ids, in: database.store, timeout: .seconds(120))
            await restarted.stop()
            #expect(counts[.completed] == ids.count, "worker output:\n\(restarted.output)")

            let calls = ProbeLog.read(probeLog).filter { $0.call == "execute" }
            let perKey = Dictionary(grouping: calls, by: \.detail).mapValues(\.count)
            let expected = Set(ids.flatMap { id in ["a", "b", "c"].map { "\(id)/\($0)/0" } })
            #expect(Set(perKey.keys) == expected)
            for key in completedAtKill { #expect(perKey[key] == 1, "completed step \(key) ran again") }
            let repeated = Set(perKey.filter { $0.value > 1 }.keys)
            #expect(repeated.isSubset(of: runningAtKill), "only interrupted steps run again: \(repeated.subtracting(runningAtKill))")
            let afterRestart = Set(calls.filter { $0.pid == restarted.pid }.map(\.detail))
            #expect(runningAtKill.isSubset(of: afterRestart), "every interrupted step ran again after the restart")
            #expect(calls.filter { $0.pid == restarted.pid }.count == Set(calls.filter { $0.pid == restarted.pid }.map(\.detail)).count)
        }
    }

    @Test("a worker stops gracefully on SIGTERM", arguments: TestBackend.available)
    func gracefulStop(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { database in
            let worker = try await Self.startWorker(database, probeLog: Self.newProbeLog())
            try await Task.sleep(for: .milliseconds(500))
            let started = ContinuousClock.now
            let status = await worker.stop(timeout: .seconds(15))
            #expect(status == 0, "output: \(worker.output)")
            #expect(ContinuousClock.now - started < .seconds(12), "stopped by its own grace, not killed at 15 s")
        }
    }

    @Test("a worker refuses a database with pending migrations unless asked to migrate")
    func workerChecksSchema() async throws {
        try await TestDatabase.with(.sqlite, migrated: false) { database in
            let refused = try await ProcessRunner.run(
                Repository.executable, ["worker"], environment: ["DATABASE_URL": database.url], timeout: .seconds(30))
            #expect(refused.status == 1)
            #expect(refused.standardError.contains("pending migrations"))
            #expect(refused.standardError.split(separator: "\n").count == 1)
        }
    }
}
