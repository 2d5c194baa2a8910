import BudJSON
import Foundation
import Testing
import _BudPipelineTestSupport

/// Schedules, webhooks and event triggers over loopback HTTP, in the shapes the admin UI sends and
/// reads (docs/compatibility.md), on SQLite and on PostgreSQL. Events that fire event triggers
/// through `/workflow-events` are tested in ActingUserTests.
@Suite("HTTP API triggers", .serialized)
struct TriggerAPITests {
    static func pipeline(on server: some APIServing) async throws -> String {
        let dag: JSONValue = [
            "name": .string("trig-\(UUID().uuidString.prefix(8))"),
            "parameters": [["name": "msg", "type": "string", "default": "hello"]],
            "steps": [["id": "a", "name": "Say", "action": "log", "params": ["message": "{{ params.msg }}"]]],
        ]
        let created = try await server.send("POST", "/pipelines", json: ["dag": dag])
        return try #require(created.json["id"]?.stringValue)
    }

    @Test("schedules are created, listed, paused, resumed, updated, triggered and deleted", arguments: TestBackend.available)
    func schedules(backend: TestBackend) async throws {
        try await InProcessAPIServer.with(backend) { server in
            let pipelineID = try await Self.pipeline(on: server)
            let created = try await server.send(
                "POST", "/schedules",
                json: [
                    "workflow_id": .string(pipelineID), "name": "nightly", "description": "d", "params": [:], "enabled": true,
                    "schedule": ["type": "cron", "expression": "0 3 * * *", "timezone": "UTC"],
                ])
            #expect(created.status == 201)
            let schedule = created.json
            let id = try #require(schedule["id"]?.stringValue)
            #expect(schedule["workflow_id"]?.stringValue == pipelineID && schedule["schedule"]?["type"] == "cron")
            #expect(schedule["schedule"]?["expression"] == "0 3 * * *")
            #expect(schedule["enabled"] == true && schedule["status"] == "active" && schedule["run_count"] == 0)
            #expect(schedule["created_at"]?.stringValue != nil && schedule["updated_at"]?.stringValue != nil)
            let nextRun = try #require(schedule["next_run_at"]?.stringValue)
            #expect(nextRun.contains("T03:00:00") && nextRun > ISO8601DateFormatter().string(from: Date()))

            let listed = try await server.send("GET", "/schedules?workflow_id=\(pipelineID)").json
            #expect(listed["schedules"]?.arrayValue?.contains { $0["id"]?.stringValue == id } == true)
            #expect((listed["total"]?.intValue ?? 0) >= 1)

            let paused = try await server.send("POST", "/schedules/\(id)/pause")
            #expect(paused.status == 200 && paused.json["enabled"] == false && paused.json["status"] == "paused")
            let resumed = try await server.send("POST", "/schedules/\(id)/resume")
            #expect(resumed.status == 200 && resumed.json["enabled"] == true && resumed.json["status"] == "active")
            let renamed = try await server.send("PUT", "/schedules/\(id)", json: ["name": "n2"])
            #expect(renamed.status == 200 && renamed.json["name"] == "n2")
            let zoned = try await server.send(
                "PUT", "/schedules/\(id)", json: ["schedule": ["type": "cron", "expression": "0 3 * * *", "timezone": "Asia/Kolkata"]])
            #expect(zoned.json["next_run_at"]?.stringValue?.contains("T21:30:00") == true)

            let triggered = try await server.send("POST", "/schedules/\(id)/trigger")
            #expect(triggered.status == 200 && triggered.json["workflow_id"]?.stringValue == pipelineID)
            #expect(triggered.json["status"]?.stringValue != nil)
            let executionID = try #require(triggered.json["execution_id"]?.stringValue)
            let execution = try await server.finished(executionID)
            #expect(execution["status"] == "COMPLETED")
            let trigger = execution["pipeline_definition"]?["params"]?["_trigger"]
            #expect(trigger?["type"] == "scheduled" && trigger?["schedule_id"]?.stringValue == id && trigger?["manual"] == true)
            #expect(try await server.send("GET", "/schedules/\(id)").json["run_count"] == 0)

            let nextRuns = try await server.send("GET", "/schedules/\(id)/next-runs?count=3").json
            #expect(nextRuns["next_runs"]?.arrayValue?.count == 3)

            #expect(try await server.send("DELETE", "/schedules/\(id)").status == 204)
            let gone = try await server.send("GET", "/schedules/\(id)")
            #expect(gone.status == 404 && gone.json["detail"] == "Schedule not found")

            let invalid = try await server.send(
                "POST", "/schedules",
                json: ["workflow_id": .string(pipelineID), "name": "bad", "schedule": ["type": "cron", "expression": "61 * * * *"]])
            #expect(invalid.status == 400 && invalid.json["detail"]?.stringValue?.hasPrefix("Invalid schedule") == true)
            let missingExpression = try await server.send(
                "POST", "/schedules", json: ["workflow_id": .string(pipelineID), "name": "bad", "schedule": ["type": "interval"]])
            #expect(missingExpression.status == 400 && missingExpression.json["detail"] == "Invalid schedule: Interval expression required")
            let pastOneTime = try await server.send(
                "POST", "/schedules",
                json: [
                    "workflow_id": .string(pipelineID), "name": "bad", "schedule": ["type": "one_time", "run_at": "2001-01-01T00:00:00Z"],
                ])
            #expect(pastOneTime.status == 400 && pastOneTime.json["code"] == "INVALID_SCHEDULE")
            let badZone = try await server.send(
                "POST", "/schedules",
                json: [
                    "workflow_id": .string(pipelineID), "name": "bad",
                    "schedule": ["type": "cron", "expression": "@daily", "timezone": "Mars/Olympus"],
                ])
            #expect(badZone.status == 400)
            let unknownPipeline = try await server.send(
                "POST", "/schedules",
                json: ["workflow_id": .string(UUID().uuidString), "name": "x", "schedule": ["type": "manual"]])
            #expect(unknownPipeline.status == 404 && unknownPipeline.json["code"] == "PIPELINE_NOT_FOUND")
            let wrongType = try await server.send(
                "POST", "/schedules", json: ["workflow_id": .string(pipelineID), "name": 5, "schedule": ["type": "weekly"]])
            #expect(wrongType.status == 422 && wrongType.json["code"] == "REQUEST_INVALID")
            #expect(wrongType.json["detail"]?.arrayValue?.count == 2)
            #expect(try await server.send("POST", "/schedules/\(UUID().uuidString)/pause").status == 404)
        }
    }

    @Test("schedules fire on time, each occurrence once, and stop at max_runs", arguments: TestBackend.available)
    func schedulesFire(backend: TestBackend) async throws {
        try await InProcessAPIServer.with(backend) { server in
            let pipelineID = try await Self.pipeline(on: server)
            let created = try await server.send(
                "POST", "/schedules",
                json: [
                    "workflow_id": .string(pipelineID), "name": "every-second", "params": ["msg": "tick"], "max_runs": 2,
                    "schedule": ["type": "interval", "expression": "@every 1s"],
                ])
            let id = try #require(created.json["id"]?.stringValue)
            let deadline = ContinuousClock.now + .seconds(10)
            var schedule = created.json
            while ContinuousClock.now < deadline, schedule["status"] != "completed" {
                try await Task.sleep(for: .milliseconds(100))
                schedule = try await server.send("GET", "/schedules/\(id)").json
            }
            #expect(schedule["status"] == "completed" && schedule["run_count"] == 2 && schedule["enabled"] == false)
            #expect(schedule["next_run_at"] == .null && schedule["last_execution_status"] == "running")
            let lastID = try #require(schedule["last_execution_id"]?.stringValue)
            let last = try await server.finished(lastID)
            #expect(last["pipeline_definition"]?["params"]?["msg"] == "tick")
            #expect(last["pipeline_definition"]?["params"]?["_trigger"]?["schedule_id"]?.stringValue == id)
            try await Task.sleep(for: .milliseconds(1500))
            let runs = try await server.send("GET", "/executions?workflow_id=\(pipelineID)").json
            #expect(runs["pagination"]?["total_count"] == 2)
        }
    }

    @Test("webhooks are created with a secret, triggered, rotated and deleted", arguments: TestBackend.available)
    func webhooks(backend: TestBackend) async throws {
        try await InProcessAPIServer.with(backend) { server in
            let pipelineID = try await Self.pipeline(on: server)
            let created = try await server.send(
                "POST", "/webhooks",
                json: [
                    "workflow_id": .string(pipelineID), "name": "hook", "require_secret": true, "params": ["msg": "from hook"],
                    "config": ["headers_to_include": ["X-Source"]],
                ])
            #expect(created.status == 201)
            let id = try #require(created.json["id"]?.stringValue)
            let secret = try #require(created.json["secret"]?.stringValue)
            #expect(secret.count == 43)
            #expect(created.json["endpoint_url"]?.stringValue?.hasSuffix("/trigger/\(id)") == true)
            #expect(created.json["config"]?["require_secret"] == true && created.json["enabled"] == true)
            #expect(created.json["trigger_count"] == 0)

            let listed = try await server.send("GET", "/webhooks?workflow_id=\(pipelineID)").json.arrayValue ?? []
            let listedHook = try #require(listed.first { $0["id"]?.stringValue == id })
            #expect(listedHook["secret"] == .null)

            #expect(try await server.send("POST", "/trigger/\(id)").status == 401)
            #expect(try await server.send("POST", "/trigger/\(id)", headers: ["X-Webhook-Secret": "wrong"]).status == 401)
            let fired = try await server.send(
                "POST", "/trigger/\(id)", json: ["params": ["extra": 1]], headers: ["X-Webhook-Secret": secret, "X-Source": "ci"])
            #expect(fired.status == 200 && fired.json["workflow_id"]?.stringValue == pipelineID && fired.json["status"]?.stringValue != nil)
            let executionID = try #require(fired.json["execution_id"]?.stringValue)
            let params = try await server.finished(executionID)["pipeline_definition"]?["params"]
            #expect(params?["msg"] == "from hook" && params?["extra"] == 1 && params?["header_x_source"] == "ci")
            #expect(params?["_trigger"]?["type"] == "webhook" && params?["_trigger"]?["webhook_id"]?.stringValue == id)

            let after = try await server.send("GET", "/webhooks?workflow_id=\(pipelineID)").json.arrayValue?.first
            #expect(after?["trigger_count"] == 1 && after?["last_triggered_at"]?.stringValue != nil)

            let rotated = try await server.send("POST", "/webhooks/\(id)/rotate-secret")
            let newSecret = try #require(rotated.json["secret"]?.stringValue)
            #expect(rotated.status == 200 && newSecret != secret)
            #expect(try await server.send("POST", "/trigger/\(id)", headers: ["X-Webhook-Secret": secret]).status == 401)
            #expect(try await server.send("POST", "/trigger/\(id)", headers: ["X-Webhook-Secret": newSecret]).status == 200)

            let restricted = try await server.send("PUT", "/webhooks/\(id)", json: ["config": ["allowed_ips": ["10.9.9.9"]]])
            #expect(restricted.status == 200 && restricted.json["config"]?["allowed_ips"] == ["10.9.9.9"])
            let refused = try await server.send("POST", "/trigger/\(id)", headers: ["X-Webhook-Secret": newSecret])
            #expect(refused.status == 403 && refused.json["code"] == "IP_NOT_ALLOWED")
            _ = try await server.send("PUT", "/webhooks/\(id)", json: ["config": ["allowed_ips": ["127.0.0.1"]], "enabled": false])
            let disabled = try await server.send("POST", "/trigger/\(id)", headers: ["X-Webhook-Secret": newSecret])
            #expect(disabled.status == 403 && disabled.json["code"] == "WEBHOOK_DISABLED")
            _ = try await server.send("PUT", "/webhooks/\(id)", json: ["enabled": true])
            #expect(try await server.send("POST", "/trigger/\(id)", headers: ["X-Webhook-Secret": newSecret]).status == 200)

            let open = try await server.send(
                "POST", "/webhooks", json: ["workflow_id": .string(pipelineID), "name": "open", "config": ["require_secret": false]])
            #expect(open.json["secret"] == .null && open.json["config"]?["require_secret"] == false)
            let openID = try #require(open.json["id"]?.stringValue)
            #expect(try await server.send("POST", "/trigger/\(openID)").status == 200)

            #expect(try await server.send("DELETE", "/webhooks/\(id)").status == 204)
            #expect(try await server.send("POST", "/trigger/\(id)", headers: ["X-Webhook-Secret": newSecret]).status == 404)
            #expect(try await server.send("DELETE", "/webhooks/\(id)").status == 404)
        }
    }

    @Test("event triggers, nested in config or flat as the UI sends them, go through their lifecycle", arguments: TestBackend.available)
    func eventTriggers(backend: TestBackend) async throws {
        try await InProcessAPIServer.with(backend) { server in
            let pipelineID = try await Self.pipeline(on: server)
            let created = try await server.send(
                "POST", "/event-triggers",
                json: [
                    "workflow_id": .string(pipelineID), "name": "t",
                    "config": ["event_type": "model.onboarded", "filters": ["payload.model_id": "m-1"]], "params": [:],
                ])
            #expect(created.status == 201 && created.json["config"]?["event_type"] == "model.onboarded")
            #expect(created.json["trigger_count"] == 0)
            let id = try #require(created.json["id"]?.stringValue)
            let flat = try await server.send(
                "POST", "/event-triggers",
                json: ["workflow_id": .string(pipelineID), "name": "flat", "event_type": "cluster.healthy", "filters": [:]])
            #expect(flat.status == 201 && flat.json["config"]?["event_type"] == "cluster.healthy")

            let listed = try await server.send("GET", "/event-triggers?workflow_id=\(pipelineID)").json.arrayValue ?? []
            #expect(listed.contains { $0["id"]?.stringValue == id } && listed.count == 2)
            let types = try await server.send("GET", "/event-triggers/event-types").json.arrayValue ?? []
            #expect(types.count == 8 && types.allSatisfy { $0["source"]?.stringValue != nil })

            let bogus = try await server.send(
                "POST", "/event-triggers", json: ["workflow_id": .string(pipelineID), "name": "b", "config": ["event_type": "bogus.type"]])
            #expect(bogus.status == 400 && bogus.json["code"] == "UNSUPPORTED_EVENT_TYPE")
            let updated = try await server.send("PUT", "/event-triggers/\(id)", json: ["config": ["event_type": "model.deleted"]])
            #expect(updated.status == 200 && updated.json["config"]?["event_type"] == "model.deleted")
            #expect(updated.json["config"]?["filters"]?["payload.model_id"] == "m-1")
            #expect(try await server.send("PUT", "/event-triggers/\(id)", json: ["event_type": "nope"]).status == 400)

            #expect(try await server.send("DELETE", "/event-triggers/\(id)").status == 204)
            let gone = try await server.send("GET", "/event-triggers/\(id)")
            #expect(gone.status == 404 && gone.json["detail"] == "Event trigger not found")
        }
    }

    @Test("concurrent updates of one record: one wins, the others get 409", arguments: TestBackend.available)
    func concurrentUpdates(backend: TestBackend) async throws {
        try await InProcessAPIServer.with(backend) { server in
            let pipelineID = try await Self.pipeline(on: server)
            let current = try await server.send("GET", "/pipelines/\(pipelineID)").json
            let dag = try #require(current["dag"])
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<8 {
                    group.addTask {
                        try await server.send("PUT", "/pipelines/\(pipelineID)", json: ["dag": dag, "name": .string("renamed-\(index)")])
                            .status
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.allSatisfy { $0 == 200 || $0 == 409 })
            #expect(statuses.contains(200))
            let final = try await server.send("GET", "/pipelines/\(pipelineID)").json
            let version = try #require(final["version"]?.stringValue.flatMap { Int($0) })
            #expect(version == 1 + statuses.count { $0 == 200 })

            // A client that read version 1 and writes after others changed it gets 409.
            let stale = try await server.send("PUT", "/pipelines/\(pipelineID)", json: ["dag": dag, "name": "stale", "version": 1])
            #expect(stale.status == 409 && stale.json["code"] == "CONCURRENT_MODIFICATION")
            #expect(try await server.send("GET", "/pipelines/\(pipelineID)").json["name"] == final["name"])
            let fresh = try await server.send(
                "PUT", "/pipelines/\(pipelineID)", json: ["dag": dag, "name": "fresh", "version": .string(String(version))])
            #expect(fresh.status == 200 && fresh.json["version"] == .string(String(version + 1)))

            let schedule = try await server.send(
                "POST", "/schedules", json: ["workflow_id": .string(pipelineID), "name": "s", "schedule": ["type": "manual"]]
            ).json
            let scheduleID = try #require(schedule["id"]?.stringValue)
            _ = try await server.send("POST", "/schedules/\(scheduleID)/pause")
            let staleSchedule = try await server.send("PUT", "/schedules/\(scheduleID)", json: ["name": "late", "version": 1])
            #expect(staleSchedule.status == 409 && staleSchedule.json["code"] == "CONCURRENT_MODIFICATION")
        }
    }
}
