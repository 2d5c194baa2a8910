import BudJSON
import Foundation
import PipelineRuntime
import Testing
import _BudPipelineTestSupport

/// `POST /workflow-events` against the HTTP API served in process (`InProcessAPIServer`) with the bundled Greeter plugin,
/// whose `await_approval` action waits for `approval:<request_id>`: the delivery forms, correlation
/// and answers the bud services and Dapr rely on (docs/compatibility.md, "Events in"). The domain
/// actions are exercised end to end in DomainPluginTests.
@Suite("Workflow events", .serialized)
struct WorkflowEventTests {
    static let token = "test-app-token"
    static let environment = ["APP_API_TOKEN": token]
    static var authorized: [String: String] { ["dapr-api-token": token] }

    /// A diamond: `approve` awaits an event while `side` completes; `join` needs both.
    static func diamond(request: String) -> JSONValue {
        [
            "name": .string("approval-\(request)"),
            "steps": [
                ["id": "approve", "name": "Approve", "action": "await_approval", "params": ["request_id": .string(request)]],
                ["id": "side", "name": "Side", "action": "log", "params": ["message": "meanwhile"]],
                [
                    "id": "join", "name": "Join", "action": "log", "depends_on": ["approve", "side"],
                    "params": ["message": "approved by {{ steps.approve.outputs.approver }}"],
                ],
            ],
        ]
    }

    static func run(_ dag: JSONValue, on server: some APIServing) async throws -> String {
        let started = try await server.send("POST", "/executions/run", json: ["pipeline_definition": dag])
        #expect(started.status == 201)
        return try #require(started.json["execution_id"]?.stringValue)
    }

    /// Waits until the step awaits its event.
    static func awaiting(_ stepID: String, of executionID: String, on server: some APIServing) async throws -> JSONValue {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            let steps = try await server.send("GET", "/executions/\(executionID)/steps").json["steps"]?.arrayValue ?? []
            if let step = steps.first(where: { $0["step_id"]?.stringValue == stepID }), step["awaiting_event"] == true { return step }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ServerError("step \(stepID) of \(executionID) never awaited its event")
    }

    @Test("deliveries need the app token; unrelated and malformed events are answered for Dapr", arguments: TestBackend.available)
    func authorizationAndUnrelatedEvents(backend: TestBackend) async throws {
        try await InProcessAPIServer.with(backend) { server in
            let unconfigured = try await server.send("POST", "/workflow-events", json: ["type": "x"], headers: Self.authorized)
            #expect(unconfigured.status == 403 && unconfigured.json["detail"] == "Forbidden - Internal auth not configured")
        }
        try await InProcessAPIServer.with(backend, environment: Self.environment) { server in
            let missing = try await server.send("POST", "/workflow-events", json: ["type": "x"], authenticated: false)
            #expect(missing.status == 403 && missing.json["detail"]?.stringValue?.contains("Forbidden") == true)
            let wrong = try await server.send("POST", "/workflow-events", json: ["type": "x"], headers: ["dapr-api-token": "nope"])
            #expect(wrong.status == 403 && wrong.json["detail"] == "Forbidden - Invalid internal token")

            let unrelated: JSONValue = [
                "payload": ["workflow_id": .string(UUID().uuidString), "event": "results", "content": ["status": "COMPLETED"]]
            ]
            let notRouted = try await server.send("POST", "/workflow-events", json: unrelated, headers: Self.authorized)
            #expect(notRouted.status == 200 && notRouted.json["status"] == "SUCCESS" && notRouted.json["routed"] == false)
            let noID = try await server.send("POST", "/workflow-events", json: ["type": "ping"], headers: Self.authorized)
            #expect(noID.status == 200 && noID.json["routed"] == false && noID.json["triggers"] == [])

            let notJSON = try await server.send("POST", "/workflow-events", body: "{not json", headers: Self.authorized)
            #expect(notJSON.status == 200 && notJSON.json["status"] == "DROP")
            let badData = try await server.send("POST", "/workflow-events", json: ["id": "e", "data": [1, 2]], headers: Self.authorized)
            #expect(badData.status == 200 && badData.json["status"] == "DROP")

            let subscriptions = try await server.send("GET", "/dapr/subscribe").json
            #expect(
                subscriptions == [
                    [
                        "pubsubname": "pubsub", "topic": "budpipelineEvents", "route": "/workflow-events",
                        "deadLetterTopic": "poisonMessages",
                    ]
                ])
        }
    }

    @Test("a flat CloudEvent completes the awaiting branch of a diamond; a redelivery does nothing", arguments: TestBackend.available)
    func flatEventCompletesStep(backend: TestBackend) async throws {
        try await InProcessAPIServer.with(backend, environment: Self.environment) { server in
            let request = UUID().uuidString.prefix(8).lowercased()
            let executionID = try await Self.run(Self.diamond(request: String(request)), on: server)
            let step = try await Self.awaiting("approve", of: executionID, on: server)
            #expect(step["status"] == "RUNNING")
            let event: JSONValue = [
                "specversion": "1.0", "id": .string("evt-\(request)"), "source": "approvals", "type": "approval",
                "workflow_id": .string("approval:\(request)"), "decision": "approved", "approver": "ann",
            ]
            let answer = try await server.send("POST", "/workflow-events", json: event, headers: Self.authorized)
            #expect(answer.status == 200)
            #expect(answer.json["status"] == "SUCCESS" && answer.json["routed"] == true && answer.json["step_completed"] == true)

            let execution = try await server.finished(executionID)
            #expect(execution["status"] == "COMPLETED")
            let steps = try await server.send("GET", "/executions/\(executionID)/steps").json["steps"]?.arrayValue ?? []
            let approve = steps.first { $0["step_id"] == "approve" }
            #expect(approve?["status"] == "COMPLETED" && approve?["awaiting_event"] == false)
            #expect(approve?["outputs"]?["approver"] == "ann" && approve?["outputs"]?["status"] == "approved")
            #expect(steps.first { $0["step_id"] == "join" }?["outputs"]?["message"] == "approved by ann")

            let again = try await server.send("POST", "/workflow-events", json: event, headers: Self.authorized)
            #expect(again.json["status"] == "SUCCESS" && again.json["duplicate"] == true && again.json["routed"] == false)
        }
    }

    @Test("an event that comes before its step waits is parked, then completes the step once it waits", arguments: TestBackend.available)
    func earlyEventIsParked(backend: TestBackend) async throws {
        try await InProcessAPIServer.with(backend, environment: Self.environment) { server in
            let request = String(UUID().uuidString.prefix(8).lowercased())
            let event: JSONValue = [
                "id": .string("early-\(request)"), "type": "approval", "workflow_id": .string("approval:\(request)"),
                "decision": "approved", "approver": "early-bird",
            ]
            let answer = try await server.send("POST", "/workflow-events", json: event, headers: Self.authorized)
            #expect(answer.json["status"] == "SUCCESS" && answer.json["routed"] == false && answer.json["parked"] == true)
            let executionID = try await Self.run(Self.diamond(request: request), on: server)
            let execution = try await server.finished(executionID)
            #expect(execution["status"] == "COMPLETED", "\(execution)")
            #expect(execution["final_outputs"]?["approve"]?["approver"] == "early-bird")
            let again = try await server.send("POST", "/workflow-events", json: event, headers: Self.authorized)
            #expect(again.json["duplicate"] == true, "the parked event's id was remembered when it arrived")
        }
    }

    /// The body of a chunked HTTP/1.1 response in `text` (what arrived so far).
    static func dechunked(_ text: String) -> String {
        let bytes = Array(text.utf8)
        let separator = Array("\r\n\r\n".utf8)
        guard let start = bytes.indices.first(where: { bytes[$0...].starts(with: separator) }) else { return "" }
        var index = start + separator.count
        var body: [UInt8] = []
        while let lineEnd = bytes[index...].indices.first(where: { bytes[$0...].starts(with: [13, 10]) }),
            let size = Int(String(decoding: bytes[index..<lineEnd], as: UTF8.self), radix: 16), size > 0,
            lineEnd + 2 + size <= bytes.count
        {
            body += bytes[(lineEnd + 2)..<(lineEnd + 2 + size)]
            index = lineEnd + 2 + size + 2
            guard index <= bytes.count else { break }
        }
        return String(decoding: body, as: UTF8.self)
    }

    @Test("the execution stream sends a snapshot, then each event live, and ends with the execution", arguments: TestBackend.available)
    func liveStream(backend: TestBackend) async throws {
        try await InProcessAPIServer.with(backend, environment: Self.environment) { server in
            let request = String(UUID().uuidString.prefix(8).lowercased())
            let executionID = try await Self.run(Self.diamond(request: request), on: server)
            _ = try await Self.awaiting("approve", of: executionID, on: server)
            let stream = try RawConnection(port: server.port)
            defer { stream.close() }
            stream.send(
                "GET /executions/\(executionID)/stream HTTP/1.1\r\nHost: test\r\ndapr-api-token: \(Self.token)\r\nConnection: close\r\n\r\n"
            )
            // The event is sent once the stream has sent its snapshot: an event committed before
            // the stream read the execution is in the snapshot, not sent after it.
            #expect(await stream.wait(timeout: .seconds(30)) { text, closed in closed || text.contains("event: snapshot") })
            let event: JSONValue = [
                "id": .string("stream-\(request)"), "type": "approval", "workflow_id": .string("approval:\(request)"),
                "decision": "approved",
            ]
            #expect(try await server.send("POST", "/workflow-events", json: event, headers: Self.authorized).json["step_completed"] == true)
            #expect(await stream.wait(timeout: .seconds(30)) { text, closed in closed || text.contains("event: workflow_completed") })
            #expect(stream.text.hasPrefix("HTTP/1.1 200"))
            let events = Self.dechunked(stream.text).components(separatedBy: "\n\n").filter { $0.contains("event: ") }.map { block in
                let lines = block.split(separator: "\n")
                let name = lines.first { $0.hasPrefix("event: ") }.map { String($0.dropFirst(7)) } ?? ""
                let data = lines.first { $0.hasPrefix("data: ") }.flatMap { try? JSONValue(parsing: String($0.dropFirst(6))) }
                return (name, data)
            }
            #expect(events.first?.0 == "snapshot" && events.first?.1?["status"] == "RUNNING")
            let names = events.map(\.0)
            #expect(names.contains("step_completed") && names.last == "workflow_completed")
            let completedStep = events.first { $0.0 == "step_completed" && $0.1?["step_id"] == "approve" }
            #expect(completedStep?.1?["execution_id"]?.stringValue == executionID)
            #expect(try await server.send("GET", "/executions/\(UUID().uuidString)/stream").status == 404)
        }
    }

    @Test(
        "wrapped and metadata-carried ids; a failure event fails the execution; progress does not complete",
        arguments: TestBackend.available)
    func wrappedFailureAndProgress(backend: TestBackend) async throws {
        try await InProcessAPIServer.with(backend, environment: Self.environment) { server in
            let request = String(UUID().uuidString.prefix(8).lowercased())
            let executionID = try await Self.run(Self.diamond(request: request), on: server)
            _ = try await Self.awaiting("approve", of: executionID, on: server)

            // An ETA reminder, the id in notification_metadata: routed, the step keeps waiting.
            let reminder: JSONValue = [
                "id": .string("rem-\(request)"), "type": "reminder", "eta_minutes": 5,
                "notification_metadata": ["workflow_id": .string("approval:\(request)")],
            ]
            let progress = try await server.send("POST", "/workflow-events", json: reminder, headers: Self.authorized)
            #expect(progress.json["routed"] == true && progress.json["step_completed"] == false)
            let waiting = try await Self.awaiting("approve", of: executionID, on: server)
            #expect(waiting["eta_seconds"] == 300 && waiting["status"] == "RUNNING")
            let aggregated = try await server.send("GET", "/executions/\(executionID)/progress?detail=summary").json["aggregated_progress"]
            let left = try #require(aggregated?["eta_seconds"]?.intValue)
            #expect((300...302).contains(left), "approve's 300 s, then join (expected to take as long as side did)")

            // Wrapped in a Dapr `data` envelope, the id in payload.workflow_id; a rejection fails the step.
            let wrapped: JSONValue = [
                "id": .string("rej-\(request)"), "specversion": "1.0", "type": "com.dapr.event.sent", "source": "approvals",
                "data": [
                    "type": "approval", "payload": ["workflow_id": .string("approval:\(request)")], "decision": "rejected",
                    "comment": "disk full",
                ],
            ]
            let rejected = try await server.send("POST", "/workflow-events", json: wrapped, headers: Self.authorized)
            #expect(rejected.json["routed"] == true && rejected.json["step_completed"] == true)
            let execution = try await server.finished(executionID)
            #expect(execution["status"] == "FAILED")
            let steps = try await server.send("GET", "/executions/\(executionID)/steps").json["steps"]?.arrayValue ?? []
            let approve = steps.first { $0["step_id"] == "approve" }
            #expect(approve?["status"] == "FAILED")
            #expect(approve?["error_message"]?.stringValue?.contains("disk full") == true)
        }
    }
}
