import BudJSON
import Foundation
import Testing
import _BudPipelineTestSupport

/// Plugins that break the protocol without crashing: their faults stay with their step.
@Suite("Plugin protocol faults", .serialized)
struct PluginFaultTests {
    private static func environment() async throws -> [String: String] {
        let plugins = try await FixturePlugins.shared.directory(with: ["crash_probe"])
        return ["BUDPIPELINE_PLUGIN_DIRS": "\(plugins):\(Repository.productsDirectory)", "APP_API_TOKEN": WorkflowEventTests.token]
    }

    private static func run(_ action: String, on server: APIServerProcess) async throws -> String {
        let dag: JSONValue = ["name": .string(action), "steps": [["id": "only", "name": "Only", "action": .string(action)]]]
        let reply = try await server.send("POST", "/executions/run", json: ["pipeline_definition": dag])
        return try #require(reply.json["execution_id"]?.stringValue, "\(reply.text)")
    }

    @Test("a call handle used after its call returned is refused and logged with the plugin's name", arguments: TestBackend.available)
    func lateWrites(backend: TestBackend) async throws {
        try await APIServerProcess.with(backend, environment: try await Self.environment()) { server in
            let pid = server.process.pid
            let executionID = try await Self.run("crash_late_write", on: server)
            let execution = try await server.finished(executionID)
            #expect(execution["status"] == "COMPLETED")
            let steps = try await server.send("GET", "/executions/\(executionID)/steps").json["steps"]?.arrayValue ?? []
            #expect(steps.first?["outputs"] == ["on_time": true], "the late write changed nothing")
            let deadline = ContinuousClock.now + .seconds(10)
            while !server.process.output.contains("a plugin used a call handle after its call had returned"), ContinuousClock.now < deadline
            {
                try await Task.sleep(for: .milliseconds(50))
            }
            let output = server.process.output
            #expect(output.contains("a plugin used a call handle after its call had returned"), "\(output.suffix(2000))")
            #expect(output.contains("plugin=crash_probe"), "\(output.suffix(2000))")
            #expect(server.process.isRunning && server.process.pid == pid)
            // Several late writes in a row are each refused; the server goes on.
            for _ in 0..<5 { _ = try await server.finished(try await Self.run("crash_late_write", on: server)) }
            try await Task.sleep(for: .milliseconds(400))
            #expect(try await server.send("GET", "/health").status == 200)
            #expect(server.process.isRunning && server.process.pid == pid)
        }
    }

    @Test("an on_event that answers with a broken document fails its step with the plugin's fault", arguments: TestBackend.available)
    func brokenEventAnswer(backend: TestBackend) async throws {
        try await APIServerProcess.with(backend, environment: try await Self.environment()) { server in
            let executionID = try await Self.run("crash_bad_event", on: server)
            _ = try await WorkflowEventTests.awaiting("only", of: executionID, on: server)
            let event: JSONValue = ["id": .string(UUID().uuidString), "workflow_id": .string("bad-\(executionID)/only/0"), "type": "done"]
            let answer = try await server.send("POST", "/workflow-events", json: event, headers: WorkflowEventTests.authorized)
            #expect(answer.json["status"] == "SUCCESS" && answer.json["routed"] == true && answer.json["step_completed"] == true)
            let execution = try await server.finished(executionID)
            #expect(execution["status"] == "FAILED")
            let steps = try await server.send("GET", "/executions/\(executionID)/steps").json["steps"]?.arrayValue ?? []
            let message = steps.first?["error_message"]?.stringValue ?? ""
            #expect(message.contains("plugin 'crash_probe' action 'crash_bad_event' on_event"), "\(message)")
        }
    }
}
