import BudJSON
import Foundation
import Testing
import _BudPipelineTestSupport

/// What budapp and the public SDK send, exactly as they send it: the `/budpipeline` aliases of
/// schedules, webhooks and event triggers; 405 for a known path with another method; `id` beside
/// `execution_id`; the executions `status` filter in any case, and with `INTERRUPTED`, which
/// older clients still send and which matches nothing (docs/compatibility.md).
@Suite("Client contract polish")
struct ClientContractPolishTests {
    static func pipeline(on server: some APIServing, failing: Bool = false) async throws -> String {
        let step: JSONValue =
            failing
            ? ["id": "a", "name": "A", "action": "fail", "params": ["message": "no"]]
            : ["id": "a", "name": "A", "action": "log", "params": ["message": "hi"]]
        let reply = try await server.send(
            "POST", "/budpipeline", json: ["dag": ["name": .string("polish-\(UUID().uuidString.prefix(8))"), "steps": [step]]])
        return try #require(reply.json["id"]?.stringValue, "\(reply.text)")
    }

    @Test("budapp's UI bodies work under /budpipeline for schedules, webhooks and event triggers", arguments: TestBackend.available)
    func proxiedTriggers(backend: TestBackend) async throws {
        try await InProcessAPIServer.with(backend) { server in
            let pipeline = try await Self.pipeline(on: server)
            let schedule = try await server.send(
                "POST", "/budpipeline/schedules",
                json: [
                    "workflow_id": .string(pipeline), "name": "nightly",
                    "schedule": ["type": "cron", "timezone": "UTC", "expression": "0 3 * * *"], "params": [:], "enabled": true,
                    "description": "d",
                ])
            #expect(schedule.status == 201, "\(schedule.text)")
            let scheduleID = try #require(schedule.json["id"]?.stringValue)
            let listed = try await server.send("GET", "/budpipeline/schedules?workflow_id=\(pipeline)")
            #expect(listed.json["schedules"]?.arrayValue?.count == 1)
            for action in ["pause", "resume", "trigger"] {
                let reply = try await server.send("POST", "/budpipeline/schedules/\(scheduleID)/\(action)")
                #expect(reply.status == 200, "\(action): \(reply.text)")
            }
            #expect(try await server.send("PUT", "/budpipeline/schedules/\(scheduleID)", json: ["name": "renamed"]).status == 200)

            // The UI sends require_secret at the top level and event_type flat.
            let webhook = try await server.send(
                "POST", "/budpipeline/webhooks",
                json: ["workflow_id": .string(pipeline), "name": "hook", "require_secret": true, "params": [:]])
            #expect(webhook.status == 201 && webhook.json["secret"]?.stringValue != nil, "\(webhook.text)")
            let webhookID = try #require(webhook.json["id"]?.stringValue)
            #expect(try await server.send("GET", "/budpipeline/webhooks?workflow_id=\(pipeline)").json.arrayValue?.count == 1)
            #expect(try await server.send("POST", "/budpipeline/webhooks/\(webhookID)/rotate-secret").json["secret"]?.stringValue != nil)
            let trigger = try await server.send(
                "POST", "/budpipeline/event-triggers",
                json: ["workflow_id": .string(pipeline), "name": "t", "event_type": "model.onboarded", "filters": [:], "params": [:]])
            #expect(trigger.status == 201, "\(trigger.text)")
            let triggerID = try #require(trigger.json["id"]?.stringValue)
            #expect(try await server.send("GET", "/budpipeline/event-triggers?workflow_id=\(pipeline)").json.arrayValue?.count == 1)
            #expect(try await server.send("DELETE", "/budpipeline/event-triggers/\(triggerID)").status == 204)
            #expect(try await server.send("DELETE", "/budpipeline/webhooks/\(webhookID)").status == 204)
            #expect(try await server.send("DELETE", "/budpipeline/schedules/\(scheduleID)").status == 204)
        }
    }

    @Test("a known path with another method is 405 with Allow, as FastAPI answers; an unknown path stays 404")
    func methodNotAllowed() async throws {
        try await InProcessAPIServer.with(.sqlite) { server in
            let pipeline = try await Self.pipeline(on: server)
            // The SDK updates schedules with PATCH.
            let patch = try await server.send("PATCH", "/budpipeline/schedules/\(UUID().uuidString)", json: ["name": "x"])
            #expect(patch.status == 405 && patch.json["detail"] == "Method Not Allowed" && patch.json["code"] == "METHOD_NOT_ALLOWED")
            let allow = try await Self.allowHeader("PATCH", "/budpipeline/schedules/\(UUID().uuidString)", server)
            #expect(allow == "DELETE, GET, PUT")
            #expect(try await Self.allowHeader("DELETE", "/pipelines", server) == "GET, POST")
            #expect(try await Self.allowHeader("GET", "/budpipeline/\(pipeline)/execute", server) == "POST")
            #expect(try await Self.allowHeader("POST", "/budpipeline/\(pipeline)", server) == "DELETE, GET, PUT")
            let missing = try await server.send("GET", "/no/such/route")
            #expect(missing.status == 404 && missing.json["code"] == "ROUTE_NOT_FOUND")
        }
    }

    /// The `Allow` header of the answer to `method path`, which must be a 405.
    static func allowHeader(_ method: String, _ path: String, _ server: some APIServing) async throws -> String? {
        let connection = try RawConnection(port: server.port)
        connection.send("\(method) \(path) HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n")
        guard let response = await connection.response(timeout: .seconds(10)), response.status == 405 else { return nil }
        let line = response.head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("allow:") }
        return line.map { $0.dropFirst("allow:".count).trimmingCharacters(in: .whitespaces) }
    }

    @Test(
        "start and retry answers carry id beside execution_id; the status filter takes any case and INTERRUPTED",
        arguments: TestBackend.available)
    func executionAnswers(backend: TestBackend) async throws {
        try await InProcessAPIServer.with(backend) { server in
            let pipeline = try await Self.pipeline(on: server, failing: true)
            let started = try await server.send("POST", "/budpipeline/\(pipeline)/execute", json: [:])
            #expect(started.status == 201)
            let id = try #require(started.json["id"]?.stringValue)
            #expect(started.json["execution_id"]?.stringValue == id)
            #expect(try await server.finished(id)["status"] == "FAILED")
            let retried = try await server.send("POST", "/executions/\(id)/retry")
            #expect(
                retried.status == 201 && retried.json["id"] == retried.json["execution_id"] && retried.json["retry_of"]?.stringValue == id)
            let retryID = try #require(retried.json["id"]?.stringValue)
            _ = try await server.finished(retryID)

            for status in ["failed", "Failed", "FAILED"] {
                let page = try await server.send("GET", "/executions?status=\(status)&workflow_id=\(pipeline)")
                #expect(page.status == 200 && page.json["pagination"]?["total_count"] == 2, "\(status): \(page.text)")
            }
            let interrupted = try await server.send("GET", "/executions?status=INTERRUPTED")
            #expect(interrupted.status == 200 && interrupted.json["executions"] == [])
            let lower = try await server.send("GET", "/budpipeline/executions?status=interrupted")
            #expect(lower.status == 200)
            let bogus = try await server.send("GET", "/executions?status=bogus")
            #expect(bogus.status == 422)
        }
    }
}
