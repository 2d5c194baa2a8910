import BudJSON
import Foundation
import Testing
import _BudPipelineTestSupport

/// Several `serve` processes on one PostgreSQL database: live streams see every process's
/// events, and the work of a process that dies is taken over at once (see docs/operations.md,
/// "Scaling out").
@Suite("Scale-out on PostgreSQL", .enabled(if: TestPostgres.isAvailable))
struct ScaleOutTests {
    /// Two servers over one fresh database; both are stopped (and the database dropped) after `body`.
    private static func withTwoServers(
        environment: [String: String] = WorkflowEventTests.environment, _ body: (APIServerProcess, APIServerProcess) async throws -> Void
    ) async throws {
        let database = try await TestDatabase.make(.postgres, migrated: false)
        var servers: [APIServerProcess] = []
        do {
            servers.append(try await APIServerProcess.launch(database, environment: environment))
            servers.append(try await APIServerProcess.launch(database, environment: environment))
            try await body(servers[0], servers[1])
        } catch {
            for server in servers { await server.process.stop() }
            await database.close()
            throw error
        }
        for server in servers { await server.process.stop() }
        await database.close()
    }

    @Test("a stream on one process receives, live, the events of an execution another process runs")
    func streamAcrossProcesses() async throws {
        try await Self.withTwoServers { streaming, running in
            let request = String(UUID().uuidString.prefix(8).lowercased())
            let executionID = try await WorkflowEventTests.run(WorkflowEventTests.diamond(request: request), on: running)
            _ = try await WorkflowEventTests.awaiting("approve", of: executionID, on: running)

            let stream = try RawConnection(port: streaming.port)
            defer { stream.close() }
            stream.send(
                "GET /executions/\(executionID)/stream HTTP/1.1\r\nHost: test\r\ndapr-api-token: \(WorkflowEventTests.token)\r\n\r\n")
            #expect(await stream.wait(timeout: .seconds(20)) { text, _ in text.contains("event: snapshot") })
            // The stream's watch reaches the other process through the database within milliseconds.
            try await Task.sleep(for: .milliseconds(300))

            let event: JSONValue = [
                "id": .string("scale-\(request)"), "type": "approval", "workflow_id": .string("approval:\(request)"),
                "decision": "approved", "approver": "ana",
            ]
            let delivered = ContinuousClock.now
            let answer = try await running.send("POST", "/workflow-events", json: event, headers: WorkflowEventTests.authorized)
            #expect(answer.json["step_completed"] == true)
            #expect(await stream.wait(timeout: .seconds(20)) { text, _ in text.contains("event: workflow_completed") })
            let took = ContinuousClock.now - delivered
            // Live, not the keep-alive's fallback: under the 5 s tick, each step's events, one snapshot.
            #expect(took < .seconds(4), "the events took \(took)")
            // (Chunked: "\r\n" is one Character, so the names are cut out by their prefix.)
            let names = stream.text.components(separatedBy: "event: ").dropFirst().map { String($0.prefix { !$0.isNewline }) }
            #expect(names.filter { $0 == "snapshot" }.count == 1, "\(names)")
            #expect(names.contains("step_completed") && names.last == "workflow_completed", "\(names)")
            #expect(stream.text.contains("\"approver\":\"ana\""))
        }
    }

    @Test("the running step of a process killed with SIGKILL is taken over at once, not when its claim runs out")
    func takeoverAfterKill() async throws {
        let plugins = try await FixturePlugins.shared.directory(with: ["slow"])
        let environment = WorkflowEventTests.environment.merging([
            "BUDPIPELINE_PLUGIN_DIRS": "\(plugins):\(Repository.productsDirectory)", "BUDPIPELINE_LEASE_SECONDS": "60",
            "SWIFT_BACKTRACE": "enable=no",
        ]) { _, new in new }
        try await Self.withTwoServers(environment: environment) { survivor, doomed in
            let dag: JSONValue = [
                "name": "nap", "steps": [["id": "nap", "name": "Nap", "action": "sleep_ms", "params": ["ms": 1500]]],
            ]
            let executionID = try await WorkflowEventTests.run(dag, on: doomed)
            let deadline = ContinuousClock.now + .seconds(20)
            var running = false
            while !running, ContinuousClock.now < deadline {
                let steps = try await doomed.send("GET", "/executions/\(executionID)/steps").json["steps"]?.arrayValue ?? []
                running = steps.first?["status"] == "RUNNING"
                if !running { try await Task.sleep(for: .milliseconds(20)) }
            }
            try #require(running)
            await doomed.process.kill()
            let killed = ContinuousClock.now

            let execution = try await survivor.finished(executionID)
            let took = ContinuousClock.now - killed
            #expect(execution["status"] == "COMPLETED")
            // The claim would have held for 60 s; the step ran again (1.5 s) soon after the kill.
            #expect(took < .seconds(15), "taken over after \(took)")
            #expect(survivor.process.output.contains("its work is taken over"), "\(survivor.process.output.suffix(3000))")
        }
    }
}
