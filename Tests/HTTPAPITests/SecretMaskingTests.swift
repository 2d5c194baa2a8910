import BudJSON
import DaprSidecar
import Foundation
import Testing
import _BudPipelineTestSupport

/// Secret-bearing keys in stored params and outputs are masked in every answer that shows them,
/// in the live stream and in published notifications, over loopback HTTP against a real
/// `budpipeline serve`; the execution itself runs with the real values.
@Suite("Secret masking", .serialized)
struct SecretMaskingTests {
    static let token = "masking-test-token"
    static let marker = JSONValue.string(SecretKeys.redactionMarker)
    /// What clients send, as the issue has it, plus `ssn`, secret by `BUDPIPELINE_SECRET_KEYS`.
    static let params: JSONObject = ["password": "p", "nested": ["api_key": "k"], "max_tokens": 5, "ssn": "078-05-1120"]
    static let maskedParams: JSONValue = ["password": marker, "nested": ["api_key": marker], "max_tokens": 5, "ssn": marker]

    /// The DAG parameters `params` fill.
    static let parameters: JSONValue = [
        ["name": "password", "type": "string"], ["name": "nested", "type": "object"], ["name": "max_tokens", "type": "integer"],
        ["name": "ssn", "type": "string"],
    ]

    /// A slow first step (the sidecar takes a second to answer), so that a stream opened after the
    /// start sees the events; then a step whose outputs carry the params, secret and not.
    static let dag: JSONValue = [
        "name": "masking", "parameters": parameters,
        "steps": [
            ["id": "slow", "name": "Slow", "action": "cluster_health", "params": ["cluster_id": "c-1", "checks": ["nodes"]]],
            [
                "id": "echo", "name": "Echo", "action": "set_output", "depends_on": ["slow"],
                "params": [
                    "outputs": [
                        "password": "{{ params.password }}", "nested": "{{ params.nested }}", "max_tokens": "{{ params.max_tokens }}",
                        "echoed": "{{ params.password }}", "token_count": 12, "Authorization": "Bearer abc",
                    ]
                ],
            ],
        ],
        "outputs": ["db_password": "{{ params.password }}", "max_tokens": "{{ params.max_tokens }}"],
    ]

    static let maskedStepOutputs: JSONValue = [
        "password": marker, "nested": ["api_key": marker], "max_tokens": 5, "echoed": "p", "token_count": 12,
        "Authorization": marker,
    ]

    static func withServer(_ backend: TestBackend, _ body: (APIServerProcess, DaprSidecar) async throws -> Void) async throws {
        let sidecar = DaprSidecar(appToken: token)
        sidecar.handleInvocations(of: "budcluster") { _ in
            try? await Task.sleep(for: .seconds(1))
            return (200, ["data": ["nodes": ["healthy": true]]])
        }
        try await sidecar.start()
        let environment = [
            "APP_API_TOKEN": token, "DAPR_HTTP_ENDPOINT": try #require(sidecar.endpoint), "BUDPIPELINE_SECRET_KEYS": "ssn",
        ]
        do {
            try await APIServerProcess.with(backend, environment: environment) { server in
                sidecar.appURL = server.baseURL
                try await body(server, sidecar)
            }
        } catch {
            await sidecar.stop()
            throw error
        }
        await sidecar.stop()
    }

    /// The `(event, data)` pairs of a server-sent-events body.
    static func events(_ text: String) -> [(name: String, data: JSONValue)] {
        text.components(separatedBy: "\n\n").compactMap { block in
            let lines = block.split(separator: "\n")
            guard let name = lines.first(where: { $0.hasPrefix("event: ") })?.dropFirst(7),
                let data = lines.first(where: { $0.hasPrefix("data: ") }).flatMap({ try? JSONValue(parsing: String($0.dropFirst(6))) })
            else { return nil }
            return (String(name), data)
        }
    }

    @Test("executions, steps, progress, the stream and published results mask exactly the secret keys", arguments: TestBackend.available)
    func executionAnswers(backend: TestBackend) async throws {
        try await Self.withServer(backend) { server, sidecar in
            let started = try await server.send(
                "POST", "/executions/run",
                json: ["pipeline_definition": Self.dag, "params": .object(Self.params), "callback_topics": ["budAppMessages"]])
            #expect(started.status == 201, "\(started.text)")
            #expect(started.json["params"] == Self.maskedParams)
            let id = try #require(started.json["execution_id"]?.stringValue)
            let stream = try await server.send("GET", "/executions/\(id)/stream")

            let execution = try await server.finished(id)
            #expect(execution["status"] == "COMPLETED", "\(execution)")
            #expect(execution["pipeline_definition"]?["params"] == Self.maskedParams)
            #expect(execution["final_outputs"] == ["db_password": Self.marker, "max_tokens": 5])
            #expect(execution["pipeline_definition"]?["dag"]?["steps"]?[1]?["params"]?["outputs"]?["password"] == Self.marker)

            let listed = try await server.send("GET", "/executions").json["executions"]?.arrayValue ?? []
            #expect(listed.first { $0["id"]?.stringValue == id }?["pipeline_definition"]?["params"] == Self.maskedParams)

            let steps = try await DomainPluginTests.steps(of: id, on: server)
            #expect(steps["echo"]?["outputs"] == Self.maskedStepOutputs, "\(steps)")
            let progress = try await server.send("GET", "/executions/\(id)/progress").json
            #expect(progress["execution"]?["pipeline_definition"]?["params"] == Self.maskedParams)
            #expect(progress["steps"]?.arrayValue?.first { $0["step_id"] == "echo" }?["outputs"] == Self.maskedStepOutputs)

            // The live stream: the snapshot and the events.
            let events = Self.events(stream.text)
            #expect(events.first?.name == "snapshot" && events.first?.data["pipeline_definition"]?["params"] == Self.maskedParams)
            let echoCompleted = events.first { $0.name == "step_completed" && $0.data["step_id"] == "echo" }
            #expect(echoCompleted?.data["outputs"] == Self.maskedStepOutputs, "\(events.map(\.name))")
            let completed = events.first { $0.name == "workflow_completed" }
            #expect(completed?.data["outputs"] == ["db_password": Self.marker, "max_tokens": 5])
            #expect(completed?.data["step_outputs"]?["echo"] == Self.maskedStepOutputs)
            #expect(!stream.text.contains("078-05-1120") && !stream.text.contains("Bearer abc"))

            // Published to the callback topic: budapp reads `outputs[step].success`/`recommendations`,
            // which masking leaves alone.
            let published = try await PublishingTests.notifications(on: sidecar, topic: "budAppMessages", workflowID: id)
            let results = try #require(published.first { $0.body["payload"]?["event"] == "results" })
            #expect(results.body["payload"]?["content"]?["result"]?["outputs"]?["echo"] == Self.maskedStepOutputs)
            #expect(results.body["payload"]?["content"]?["result"]?["success"] == true)
        }
    }

    @Test(
        "schedules, webhooks and event triggers mask their params; written back as shown, the secrets stay",
        arguments: TestBackend.available)
    func triggerAnswers(backend: TestBackend) async throws {
        try await Self.withServer(backend) { server, _ in
            let pipeline: JSONValue = [
                "name": "masking-trigger", "parameters": Self.parameters,
                "steps": [
                    ["id": "echo", "name": "Echo", "action": "set_output", "params": ["outputs": ["seen": "{{ params.password }}"]]]
                ],
            ]
            let pipelineID = try #require(try await server.send("POST", "/pipelines", json: ["dag": pipeline]).json["id"]?.stringValue)
            let kinds: [(path: String, body: JSONObject)] = [
                ("/schedules", ["name": "s", "schedule": ["type": "cron", "expression": "0 3 * * *"]]),
                ("/webhooks", ["name": "w", "config": ["require_secret": false]]),
                ("/event-triggers", ["name": "t", "config": ["event_type": "model.onboarded"]]),
            ]
            for (path, body) in kinds {
                let created = try await server.send(
                    "POST", path, json: .object(body.merging(["workflow_id": .string(pipelineID), "params": .object(Self.params)])))
                #expect(created.status == 201, "\(path): \(created.text)")
                #expect(created.json["params"] == Self.maskedParams, "\(path)")
                let id = try #require(created.json["id"]?.stringValue)
                let read = try await server.send("GET", "\(path)/\(id)")
                #expect(read.json["params"] == Self.maskedParams, "\(path)")
                // A client writes back what it was shown, changing one value.
                var shown = try #require(read.json["params"]?.objectValue)
                shown["max_tokens"] = 6
                let updated = try await server.send("PUT", "\(path)/\(id)", json: ["params": .object(shown)])
                #expect(updated.status == 200 && updated.json["params"]?["max_tokens"] == 6, "\(path): \(updated.text)")
                #expect(updated.json["params"]?["password"] == Self.marker)
            }
            // The webhook still runs with the real password, not the marker it was written back with.
            let hooks = try await server.send("GET", "/webhooks?workflow_id=\(pipelineID)").json.arrayValue ?? []
            let hookID = try #require(hooks.first?["id"]?.stringValue)
            let fired = try await server.send("POST", "/trigger/\(hookID)")
            let executionID = try #require(fired.json["execution_id"]?.stringValue)
            _ = try await server.finished(executionID)
            let steps = try await DomainPluginTests.steps(of: executionID, on: server)
            #expect(steps["echo"]?["outputs"]?["seen"] == "p")
        }
    }
}
