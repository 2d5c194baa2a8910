import BudJSON
import Foundation
import Testing
import _BudPipelineTestSupport

/// A step that kills the process — a plugin that segfaults or aborts, or a fault of the host's own —
/// must not kill it forever: after the crash limit (2) the step fails with a message that says so,
/// the execution follows its failure policy, other executions complete, and the server serves on.
/// Real `serve` processes (and a `worker` on PostgreSQL) over loopback, restarted as an operator's
/// supervisor would.
@Suite("Crash loops", .serialized)
struct CrashLoopTests {
    /// Processes sharing one database and one state folder, restarted whenever one dies.
    final class Cluster: @unchecked Sendable {
        // @unchecked: used by one test task at a time; the processes it holds are thread-safe.
        let database: TestDatabase
        let environment: [String: String]
        var server: APIServerProcess
        var worker: BackgroundProcess?
        var deaths: [String] = []

        init(_ backend: TestBackend, environment extra: [String: String] = [:]) async throws {
            database = try await TestDatabase.make(backend, migrated: false)
            let plugins = try await FixturePlugins.shared.directory(with: ["crash_probe", "runtime_probe"])
            environment = [
                "BUDPIPELINE_PLUGIN_DIRS": "\(plugins):\(Repository.productsDirectory)", "BUDPIPELINE_LEASE_SECONDS": "2",
                "BUDPIPELINE_LEASE_SWEEP_MS": "200", "BUDPIPELINE_TIMER_POLL_MS": "100",
                "BUDPIPELINE_STATE_DIR": NSTemporaryDirectory() + "bp-state-\(UUID().uuidString)",
                "SWIFT_BACKTRACE": "enable=no",
            ].merging(extra) { _, new in new }
            server = try await APIServerProcess.launch(database, environment: environment)
            if backend == .postgres { worker = try startWorker() }
        }

        private func startWorker() throws -> BackgroundProcess {
            try BackgroundProcess(
                Repository.executable, ["worker"],
                environment: environment.merging(["DATABASE_URL": database.url, "LOG_LEVEL": "notice"]) { _, new in new })
        }

        /// Restarts whatever died; true when something did.
        func restartTheDead() async throws -> Bool {
            var restarted = false
            if !server.process.isRunning {
                deaths.append("serve pid \(server.process.pid): \(server.process.output.suffix(4000))")
                server = try await APIServerProcess.launch(database, environment: environment)
                restarted = true
            }
            if let current = worker, !current.isRunning {
                deaths.append("worker pid \(current.pid): \(current.output.suffix(4000))")
                worker = try startWorker()
                restarted = true
            }
            return restarted
        }

        /// Sends a request to the server, restarting it first if it died (as a supervisor would).
        /// Only reads are sent again after a failure: a POST may have taken effect.
        func send(_ method: String, _ path: String, json: JSONValue? = nil) async throws -> APIServerProcess.Reply {
            var attempts = 0
            while true {
                attempts += 1
                _ = try await restartTheDead()
                do {
                    if let json { return try await server.send(method, path, json: json) }
                    return try await server.send(method, path)
                } catch {
                    guard attempts < 5, method == "GET" else { throw error }
                    try await Task.sleep(for: .milliseconds(200))
                }
            }
        }

        /// Polls the execution until it has finished, restarting processes as they die.
        func finished(_ executionID: String, within timeout: Duration = .seconds(120)) async throws -> JSONValue {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                if try await restartTheDead() { continue }
                if let reply = try? await server.send("GET", "/executions/\(executionID)"),
                    let status = reply.json["status"]?.stringValue, ["COMPLETED", "FAILED", "CANCELLED"].contains(status)
                {
                    return reply.json
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            throw ServerError("execution \(executionID) did not finish; deaths:\n\(deaths.joined(separator: "\n"))")
        }

        func steps(_ executionID: String) async throws -> [String: JSONValue] {
            let steps = try await send("GET", "/executions/\(executionID)/steps").json["steps"]?.arrayValue ?? []
            return Dictionary(steps.compactMap { step in step["step_id"]?.stringValue.map { ($0, step) } }) { first, _ in first }
        }

        func run(_ steps: [JSONValue], name: String) async throws -> String {
            let reply = try await send(
                "POST", "/executions/run", json: ["pipeline_definition": ["name": .string(name), "steps": .array(steps)]])
            guard reply.status == 201, let id = reply.json["execution_id"]?.stringValue else {
                throw ServerError("could not start \(name): \(reply.status) \(reply.text)")
            }
            return id
        }

        func close() async {
            await worker?.stop()
            await server.process.stop()
            await database.close()
        }

        /// Runs `body` with a new cluster, closed afterwards whatever `body` does.
        static func with(
            _ backend: TestBackend, environment: [String: String] = [:], _ body: (Cluster) async throws -> Void
        ) async throws {
            let cluster = try await Cluster(backend, environment: environment)
            do {
                try await body(cluster)
            } catch {
                await cluster.close()
                throw error
            }
            await cluster.close()
        }
    }

    /// A first step that lets the start request be answered before a crashing step runs.
    private static let pause = step("pause", "probe_echo", params: ["sleep_ms": 300])

    private static func step(_ id: String, _ action: String, params: JSONObject = [:], after: [String] = [], onFailure: String = "fail")
        -> JSONValue
    {
        [
            "id": .string(id), "name": .string(id), "action": .string(action), "params": .object(params),
            "depends_on": .array(after.map(JSONValue.string)), "on_failure": .string(onFailure),
        ]
    }

    @Test("a plugin that segfaults is failed after two deaths; other executions complete", arguments: TestBackend.available)
    func segfaultingPlugin(backend: TestBackend) async throws {
        try await Cluster.with(backend) { cluster in
            let innocent = try await cluster.run(
                [Self.step("slow", "probe_echo", params: ["sleep_ms": 1500]), Self.step("next", "probe_echo", after: ["slow"])],
                name: "innocent")
            let crashing = try await cluster.run(
                [
                    Self.pause, Self.step("boom", "crash_segv", after: ["pause"], onFailure: "continue"),
                    Self.step("after", "log", after: ["boom"]),
                ], name: "crashing")

            let execution = try await cluster.finished(crashing)
            #expect(execution["status"] == "COMPLETED", "on_failure: continue lets it complete: \(execution)")
            #expect(cluster.deaths.count == 2, "exactly the crash limit of deaths: \(cluster.deaths)")
            let steps = try await cluster.steps(crashing)
            #expect(steps["boom"]?["status"] == "FAILED")
            #expect(
                steps["boom"]?["error_message"]
                    == "the server process died while running this step 2 times; it was not run again (plugin crash_probe, action crash_segv)"
            )
            #expect(steps["after"]?["status"] == "COMPLETED")

            #expect(try await cluster.finished(innocent)["status"] == "COMPLETED", "the step in flight during the crashes was not blamed")
            let later = try await cluster.run([Self.step("fine", "probe_echo")], name: "later")
            #expect(try await cluster.finished(later)["status"] == "COMPLETED")
            #expect(try await cluster.send("GET", "/health").status == 200)
            #expect(cluster.deaths.count == 2, "no death after the step failed: \(cluster.deaths)")
        }
    }

    @Test("a plugin that aborts fails the execution by its policy after two deaths")
    func abortingPlugin() async throws {
        try await Cluster.with(.sqlite) { cluster in
            let crashing = try await cluster.run(
                [Self.pause, Self.step("boom", "crash_abort", after: ["pause"]), Self.step("never", "log", after: ["boom"])],
                name: "aborting")
            let execution = try await cluster.finished(crashing)
            #expect(execution["status"] == "FAILED")
            #expect(cluster.deaths.count == 2, "\(cluster.deaths)")
            let steps = try await cluster.steps(crashing)
            #expect(
                steps["boom"]?["error_message"]?.stringValue?.hasPrefix("the server process died while running this step 2 times") == true)
            #expect(steps["never"]?["status"] == "SKIPPED")
        }
    }

    @Test("a fault of the host's own while applying a step's result is contained the same way", arguments: TestBackend.available)
    func hostFault(backend: TestBackend) async throws {
        try await Cluster.with(backend, environment: ["BUDPIPELINE_TEST_FAULT": "transition:poison"]) { cluster in
            let crashing = try await cluster.run(
                [Self.step("poison", "probe_echo", params: ["sleep_ms": 300]), Self.step("never", "log", after: ["poison"])],
                name: "poisoned")
            let execution = try await cluster.finished(crashing)
            #expect(execution["status"] == "FAILED", "\(execution)")
            #expect(cluster.deaths.count == 2, "\(cluster.deaths)")
            let steps = try await cluster.steps(crashing)
            #expect(
                steps["poison"]?["error_message"]?.stringValue?.hasPrefix("the server process died while running this step 2 times")
                    == true,
                "\(steps)")
            let other = try await cluster.run([Self.step("fine", "probe_echo")], name: "other")
            #expect(try await cluster.finished(other)["status"] == "COMPLETED")
        }
    }

    @Test("when even failing the step kills the process, the execution is stopped without the engine")
    func hostFaultOnEveryInput() async throws {
        try await Cluster.with(.sqlite, environment: ["BUDPIPELINE_TEST_FAULT": "transition-any:poison"]) { cluster in
            // After a pause: an input for the poisoned step (its first progress) may otherwise come
            // before the start request is answered, and kill the process with the answer unsent.
            let crashing = try await cluster.run(
                [Self.pause, Self.step("poison", "probe_echo", params: ["sleep_ms": 300], after: ["pause"])], name: "poisoned for good")
            let execution = try await cluster.finished(crashing)
            #expect(execution["status"] == "FAILED")
            #expect(cluster.deaths.count == 3, "two deaths, then one more failing the step: \(cluster.deaths)")
            let error = execution["error_info"]?["message"]?.stringValue ?? ""
            #expect(error.contains("the server process died while running step 'poison' 3 times"), "\(execution)")
            let other = try await cluster.run([Self.step("fine", "probe_echo")], name: "other")
            #expect(try await cluster.finished(other)["status"] == "COMPLETED")
        }
    }
}
