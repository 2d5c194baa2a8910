import BudJSON
import Foundation
import Testing
import _BudPipelineTestSupport

/// `serve` with `BUDPIPELINE_PLUGIN_ISOLATION=process`: a plugin that segfaults or aborts fails
/// its step with a reason naming the plugin and the signal, the server's pid never changes, the
/// plugin's process starts again, and after repeated crashes the plugin is quarantined — visible
/// in `/health` and `/ready` — while every other plugin serves on.
@Suite("Isolated plugins in the server", .serialized)
struct IsolatedPluginServerTests {
    /// Steps that run one after the other (each depends on the one before), so that each crash
    /// is a process of its own.
    static func dag(_ steps: [(id: String, action: String)]) -> JSONValue {
        [
            "name": "isolated",
            "steps": .array(
                steps.enumerated().map { index, step in
                    [
                        "id": .string(step.id), "name": .string(step.id), "action": .string(step.action), "on_failure": "continue",
                        "params": step.action == "greet" ? ["name": "Ada"] : [:],
                        "depends_on": index == 0 ? [] : [.string(steps[index - 1].id)],
                    ]
                }),
        ]
    }

    @Test("crashes fail only their steps; repeated crashes quarantine the plugin", arguments: TestBackend.available)
    func crashesAreContained(backend: TestBackend) async throws {
        let plugins = try await FixturePlugins.shared.directory(with: ["crash_probe", "env_probe"])
        let environment = [
            "BUDPIPELINE_PLUGIN_DIRS": "\(plugins):\(Repository.productsDirectory)", "BUDPIPELINE_PLUGIN_ISOLATION": "process",
            "BUDPIPELINE_PLUGIN_QUARANTINE_CRASHES": "3", "SWIFT_BACKTRACE": "enable=no",
        ]
        try await APIServerProcess.with(backend, environment: environment) { server in
            let pid = server.process.pid
            let health = try await server.send("GET", "/health").json
            #expect(health["plugins"]?["abi"] == "1.0", "\(health)")
            #expect((health["plugins"]?["processes"]?.arrayValue ?? []).count >= 3, "\(health)")

            let started = try await server.send(
                "POST", "/executions/run",
                json: ["pipeline_definition": Self.dag([("segv", "crash_segv"), ("abort", "crash_abort"), ("greet", "greet")])])
            let id = try #require(started.json["execution_id"]?.stringValue, "\(started.text)")
            _ = try await server.finished(id)
            let steps = try await server.send("GET", "/executions/\(id)/steps").json["steps"]?.arrayValue ?? []
            let byID = Dictionary(uniqueKeysWithValues: steps.compactMap { step in step["step_id"]?.stringValue.map { ($0, step) } })
            for (step, signal) in [("segv", "SIGSEGV"), ("abort", "SIGABRT")] {
                let message = byID[step]?["error_message"]?.stringValue ?? ""
                #expect(byID[step]?["status"] == "FAILED", "\(step): \(String(describing: byID[step]))")
                #expect(message.contains("plugin 'crash_probe'") && message.contains(signal), "\(step): \(message)")
            }
            #expect(byID["greet"]?["status"] == "COMPLETED")
            #expect(server.process.isRunning && server.process.pid == pid)

            // A third crash quarantines crash_probe: /health degraded, /ready 503, others fine.
            let third = try await server.send("POST", "/executions/run", json: ["pipeline_definition": Self.dag([("segv", "crash_segv")])])
            _ = try await server.finished(try #require(third.json["execution_id"]?.stringValue))
            let degraded = try await server.send("GET", "/health").json
            #expect(degraded["status"] == "degraded" && degraded["plugins"]?["unhealthy"] == ["crash_probe"], "\(degraded)")
            let crashProbe = (degraded["plugins"]?["processes"]?.arrayValue ?? []).first { $0["plugin"] == "crash_probe" }
            #expect(crashProbe?["quarantined"]?.stringValue?.contains("ended 3 times") == true, "\(String(describing: crashProbe))")
            #expect(try await server.send("GET", "/ready").status == 503)
            let refused = try await server.send(
                "POST", "/executions/run", json: ["pipeline_definition": Self.dag([("late", "crash_late_write"), ("env", "env_read")])])
            let refusedID = try #require(refused.json["execution_id"]?.stringValue)
            _ = try await server.finished(refusedID)
            let after = try await server.send("GET", "/executions/\(refusedID)/steps").json["steps"]?.arrayValue ?? []
            let late = after.first { $0["step_id"] == "late" }
            let env = after.first { $0["step_id"] == "env" }
            #expect(late?["error_message"]?.stringValue?.contains("quarantined") == true, "\(String(describing: late))")
            #expect(env?["status"] == "COMPLETED" && env?["outputs"]?["database_url"] == false, "\(String(describing: env))")
            #expect(server.process.isRunning && server.process.pid == pid)
        }
    }
}
