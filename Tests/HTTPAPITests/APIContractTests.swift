import BudJSON
import Foundation
import Testing
import _BudPipelineTestSupport

/// The wire behaviours budapp, its UI and the SDK rely on that need no pub/sub
/// (docs/compatibility.md), against the HTTP API served in process over loopback HTTP, on SQLite and
/// on PostgreSQL.
@Suite("HTTP API contract", .serialized)
struct APIContractTests {
    static let d1Object: JSONObject = [
        "name": "acc-d1", "description": "acceptance dag",
        "parameters": [["name": "msg", "type": "string", "default": "hello"]],
        "steps": [
            ["id": "a", "name": "Say", "action": "log", "params": ["message": "{{ params.msg }}"]],
            [
                "id": "b", "name": "Upper", "action": "transform", "depends_on": ["a"],
                "params": ["input": "{{ params.msg }}", "operation": "uppercase"],
            ],
        ],
        "outputs": ["result": "{{ steps.b.outputs.result }}"],
    ]
    static var d1: JSONValue { .object(d1Object) }

    static func newUser() -> String { UUID().uuidString.lowercased() }

    @Test("health and validation", arguments: TestBackend.available)
    func healthAndValidation(backend: TestBackend) async throws {
        try await InProcessAPIServer.with(backend) { server in
            let health = try await server.send("GET", "/health")
            #expect(health.status == 200)
            #expect(health.json["status"] == "healthy" && health.json["service"] == "budpipeline")
            #expect(try await server.send("GET", "/ready").status == 200)

            let valid = try await server.send("POST", "/validate", json: ["dag": Self.d1]).json
            #expect(valid["valid"] == true && valid["errors"] == [] && valid["step_count"] == 2 && valid["has_cycles"] == false)
            let cyclic: JSONValue = [
                "name": "c",
                "steps": [
                    ["id": "x", "name": "X", "action": "log", "depends_on": ["y"]],
                    ["id": "y", "name": "Y", "action": "log", "depends_on": ["x"]],
                ],
            ]
            let cycle = try await server.send("POST", "/validate", json: ["dag": cyclic]).json
            #expect(cycle["valid"] == false && cycle["has_cycles"] == true && cycle["step_count"] == 0)
            #expect(cycle["errors"]?.arrayValue?.contains { $0.stringValue?.contains("Cyclic dependency") == true } == true)
            let empty = try await server.send("POST", "/validate", json: ["dag": [:]])
            #expect(empty.status == 200 && empty.json["valid"] == false && empty.json["errors"]?.arrayValue?.isEmpty == false)
        }
    }

    @Test("pipelines are created, scoped to their owner, updated and deleted", arguments: TestBackend.available)
    func pipelines(backend: TestBackend) async throws {
        try await InProcessAPIServer.with(backend) { server in
            let (u1, u2) = (Self.newUser(), Self.newUser())
            let created = try await server.send(
                "POST", "/pipelines", json: ["dag": Self.d1, "name": "acc-p", "user_id": .string(u1), "system_owned": false, "icon": "🚀"])
            #expect(created.status == 201)
            let pipeline = created.json
            let id = try #require(pipeline["id"]?.stringValue)
            #expect(pipeline["name"] == "acc-p" && pipeline["status"] == "active" && pipeline["step_count"] == 2)
            #expect(pipeline["icon"] == "🚀" && pipeline["user_id"] == .string(u1) && pipeline["execution_count"] == 0)
            #expect(pipeline["version"] != nil && pipeline["created_at"]?.stringValue != nil)

            let duplicate = try await server.send("POST", "/pipelines", json: ["dag": Self.d1, "name": "acc-p", "user_id": .string(u1)])
            #expect(duplicate.status == 409 && duplicate.json["detail"]?["error"] == "Duplicate pipeline name")
            #expect(duplicate.json["code"] == "DUPLICATE_PIPELINE_NAME")
            var broken = Self.d1Object
            broken["steps"] = [["id": "a", "name": "A", "action": "log", "depends_on": ["nope"]]]
            let invalid = try await server.send("POST", "/pipelines", json: ["dag": .object(broken), "user_id": .string(u1)])
            #expect(invalid.status == 400 && invalid.json["detail"]?["error"] == "Validation failed")
            #expect(invalid.json["detail"]?["errors"]?.arrayValue?.isEmpty == false)
            #expect(try await server.send("POST", "/pipelines", json: ["name": "no dag"]).status == 422)
            let draft = try await server.send(
                "POST", "/pipelines", json: ["dag": ["name": "acc-draft", "steps": []], "user_id": .string(u1)])
            #expect(draft.status == 201 && draft.json["status"] == "draft" && draft.json["step_count"] == 0)
            var withEdges = Self.d1Object
            withEdges["name"] = "acc-edges"
            withEdges["edges"] = [["from": "a", "to": "b"]]
            #expect(try await server.send("POST", "/pipelines", json: ["dag": .object(withEdges)]).status == 201)

            let system = try await server.send(
                "POST", "/pipelines", json: ["dag": Self.d1, "name": "sys", "user_id": .string(u2), "system_owned": true])
            let systemID = try #require(system.json["id"]?.stringValue)
            func ids(_ query: String, user: String?) async throws -> [String] {
                let reply = try await server.send("GET", "/pipelines\(query)", headers: user.map { ["X-User-ID": $0] } ?? [:])
                return reply.json.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
            }
            let own = try await ids("?include_system=false", user: u1)
            #expect(own.contains(id) && !own.contains(systemID))
            #expect(try await ids("?include_system=true", user: u1).contains(systemID))
            #expect(try await !ids("?include_system=false", user: u2).contains(id))
            let everything = try await ids("", user: nil)
            #expect(everything.contains(id) && everything.contains(systemID))
            let hidden = try await server.send("GET", "/pipelines/\(id)", headers: ["X-User-ID": u2])
            #expect(hidden.status == 404 && hidden.json["detail"]?.stringValue != nil)
            let visible = try await server.send("GET", "/pipelines/\(id)", headers: ["X-User-ID": u1])
            #expect(visible.status == 200 && visible.json["dag"]?["parameters"]?.arrayValue != nil)

            var d1v2 = Self.d1Object
            d1v2["description"] = "v2"
            d1v2["steps"] = .array(
                (Self.d1Object["steps"]?.arrayValue ?? []) + [
                    ["id": "c", "name": "Log2", "action": "log", "depends_on": ["b"], "params": [:]]
                ])
            let update: JSONValue = ["dag": .object(d1v2), "name": "acc-p-v2"]
            let updated = try await server.send("PUT", "/pipelines/\(id)", json: update, headers: ["X-User-ID": u1])
            #expect(updated.status == 200 && updated.json["name"] == "acc-p-v2" && updated.json["step_count"] == 3)
            #expect(updated.json["description"] == "v2" && updated.json["version"] == "2")
            #expect(try await server.send("PUT", "/pipelines/\(id)", json: update, headers: ["X-User-ID": u2]).status == 404)

            #expect(try await server.send("DELETE", "/pipelines/\(id)", headers: ["X-User-ID": u2]).status == 404)
            let deleted = try await server.send("DELETE", "/pipelines/\(id)", headers: ["X-User-ID": u1])
            #expect(deleted.status == 204 && deleted.text.isEmpty)
            #expect(try await server.send("GET", "/pipelines/\(id)", headers: ["X-User-ID": u1]).status == 404)
        }
    }

    @Test("a saved pipeline runs to completion; progress, listing and not-found answers", arguments: TestBackend.available)
    func executions(backend: TestBackend) async throws {
        try await InProcessAPIServer.with(backend) { server in
            let user = Self.newUser()
            let pipeline = try await server.send("POST", "/pipelines", json: ["dag": Self.d1, "name": "run-me"]).json
            let pipelineID = try #require(pipeline["id"]?.stringValue)
            let started = try await server.send(
                "POST", "/executions",
                json: [
                    "workflow_id": .string(pipelineID), "params": ["msg": "hi there"], "user_id": .string(user), "initiator": .string(user),
                    "subscriber_ids": .string(user), "context": ["ignored": true],
                ])
            #expect(started.status == 201)
            #expect(started.json["detail"] == nil && started.json["workflow_id"] == .string(pipelineID))
            #expect(["running", "completed"].contains(started.json["status"]?.stringValue ?? ""))
            #expect(started.json["error"] == .null && started.json["outputs"]?.objectValue != nil)
            let executionID = try #require(started.json["execution_id"]?.stringValue)

            let execution = try await server.finished(executionID)
            #expect(execution["status"] == "COMPLETED")
            #expect(execution["final_outputs"] == ["result": "HI THERE"])
            #expect(execution["progress_percentage"]?.stringValue.flatMap(Double.init) == 100)
            #expect(execution["pipeline_definition"]?["workflow_id"] == .string(pipelineID))
            #expect(execution["pipeline_definition"]?["params"]?["msg"] == "hi there")
            #expect(execution["initiator"] == .string(user) && execution["end_time"]?.stringValue != nil)
            let counted = try await server.send("GET", "/pipelines/\(pipelineID)").json
            #expect((counted["execution_count"]?.intValue ?? 0) >= 1)

            let progress = try await server.send("GET", "/executions/\(executionID)/progress").json
            #expect(progress["execution"]?["id"] == .string(executionID))
            let steps = progress["steps"]?.arrayValue ?? []
            #expect(steps.map { $0["step_id"] } == ["a", "b"] && steps.allSatisfy { $0["status"] == "COMPLETED" })
            #expect(steps.last?["outputs"]?["result"] == "HI THERE" && steps.allSatisfy { $0["error_message"] == .null })
            #expect(progress["recent_events"]?.arrayValue != nil)
            let aggregated = progress["aggregated_progress"]
            #expect(aggregated?["completed_steps"] == 2 && aggregated?["total_steps"] == 2 && aggregated?["current_step"] == .null)
            #expect(try await server.send("GET", "/executions/\(executionID)/steps").json["steps"]?.arrayValue?.count == 2)
            let events = try await server.send("GET", "/executions/\(executionID)/events?event_type=step_completed").json
            #expect(events["total_count"] == 2 && events["events"]?.arrayValue?.count == 2)

            let listed = try await server.send("GET", "/executions?workflow_id=\(pipelineID)&page=1&page_size=20").json
            #expect(listed["executions"]?.arrayValue?.contains { $0["id"] == .string(executionID) } == true)
            #expect(listed["pagination"] == ["page": 1, "page_size": 20, "total_count": 1, "total_pages": 1])
            let completed = try await server.send("GET", "/executions?workflow_id=\(pipelineID)&status=COMPLETED").json
            #expect(completed["executions"]?.arrayValue?.count == 1)
            #expect(try await server.send("GET", "/executions?page_size=1").json["executions"]?.arrayValue?.count ?? 2 <= 1)
            #expect(try await server.send("GET", "/budpipeline/executions/\(executionID)").status == 200)
            #expect(try await server.send("GET", "/api/v1/executions/\(executionID)").status == 200)

            let missing = UUID().uuidString.lowercased()
            let notFound = try await server.send("GET", "/executions/\(missing)")
            #expect(notFound.status == 404 && notFound.json["detail"]?["error"]?["code"] == "NOT_FOUND")
            #expect(notFound.json["detail"]?["message"]?.stringValue != nil)
            #expect(try await server.send("GET", "/executions/\(missing)/progress").status == 404)
            #expect(try await server.send("GET", "/executions/not-a-uuid").status == 422)
            let unknownPipeline = try await server.send("POST", "/executions", json: ["workflow_id": .string(missing)])
            #expect(unknownPipeline.status == 404 && unknownPipeline.json["detail"] != nil)
            #expect(try await server.send("GET", "/pipelines/\(missing)").status == 404)
            let finishedCancel = try await server.send("POST", "/executions/\(executionID)/cancel")
            #expect(finishedCancel.status == 409 && finishedCancel.json["code"] == "EXECUTION_FINISHED")
        }
    }

    @Test("a failing step fails the execution; ephemeral runs", arguments: TestBackend.available)
    func failuresAndEphemeralRuns(backend: TestBackend) async throws {
        try await InProcessAPIServer.with(backend) { server in
            let failing: JSONValue = [
                "name": "acc-fail",
                "steps": [
                    ["id": "f", "name": "F", "action": "fail", "params": ["message": "boom"]],
                    ["id": "g", "name": "G", "action": "log", "depends_on": ["f"]],
                ],
            ]
            let pipelineID = try #require(try await server.send("POST", "/pipelines", json: ["dag": failing]).json["id"]?.stringValue)
            let started = try await server.send("POST", "/executions", json: ["workflow_id": .string(pipelineID)]).json
            let executionID = try #require(started["execution_id"]?.stringValue)
            let execution = try await server.finished(executionID)
            #expect(execution["status"] == "FAILED")
            #expect(execution["error_info"]?.serializedString().contains("boom") == true)
            #expect(execution["error_info"]?["message"]?.stringValue?.contains("boom") == true)
            let steps = try await server.send("GET", "/executions/\(executionID)/progress").json["steps"]?.arrayValue ?? []
            #expect(steps.first?["status"] == "FAILED" && steps.first?["error_message"] == "boom")
            #expect(steps.last?["status"] == "SKIPPED")

            var ephemeral = Self.d1Object
            ephemeral["outputs"] = [:]
            ephemeral["parameters"] = []
            ephemeral["steps"] = [["id": "a", "name": "Say", "action": "log", "params": ["message": "literal"]]]
            let user = Self.newUser()
            let run = try await server.send(
                "POST", "/executions/run",
                json: [
                    "pipeline_definition": .object(ephemeral), "params": ["user_id": .string(user)], "user_id": .string(user),
                    "initiator": .string(user), "subscriber_ids": .string(user), "payload_type": "guardrail_simulation",
                    "notification_workflow_id": .string(Self.newUser()),
                ])
            #expect(run.status == 201 && run.json["workflow_id"] == "ephemeral" && run.json["workflow_name"] == "acc-d1")
            let runID = try #require(run.json["execution_id"]?.stringValue)
            #expect(try await server.finished(runID)["status"] == "COMPLETED")
            let invalid = try await server.send(
                "POST", "/executions/run", json: ["pipeline_definition": ["name": "x", "steps": [["id": "a", "name": "A"]]]])
            #expect(invalid.status == 400 && invalid.json["detail"]?["error"] == "Invalid pipeline definition")
            #expect(invalid.json["detail"]?["errors"]?.arrayValue?.isEmpty == false)
            let badTopic = try await server.send(
                "POST", "/executions/run", json: ["pipeline_definition": .object(ephemeral), "callback_topics": ["no spaces allowed"]])
            #expect(badTopic.status == 422 && badTopic.json["code"] == "REQUEST_INVALID")
        }
    }

    @Test("retry-from-failed: a new execution keeps completed steps and runs the rest", arguments: TestBackend.available)
    func retryFromFailed(backend: TestBackend) async throws {
        try await InProcessAPIServer.with(backend) { server in
            let dag: JSONValue = [
                "name": "acc-retry",
                "steps": [
                    ["id": "a", "name": "A", "action": "set_output", "params": ["outputs": ["token": "kept"]]],
                    ["id": "f", "name": "F", "action": "fail", "params": ["message": "boom"], "depends_on": ["a"]],
                    ["id": "g", "name": "G", "action": "log", "depends_on": ["f"]],
                ],
            ]
            let pipelineID = try #require(try await server.send("POST", "/pipelines", json: ["dag": dag]).json["id"]?.stringValue)
            let started = try await server.send("POST", "/executions", json: ["workflow_id": .string(pipelineID)]).json
            let originalID = try #require(started["execution_id"]?.stringValue)
            #expect(try await server.finished(originalID)["status"] == "FAILED")
            let originalSteps = try await server.send("GET", "/executions/\(originalID)/steps").json["steps"]?.arrayValue ?? []

            let retried = try await server.send("POST", "/executions/\(originalID)/retry")
            #expect(retried.status == 201 && retried.json["status"] == "running" && retried.json["retry_of"]?.stringValue == originalID)
            #expect(retried.json["workflow_id"]?.stringValue == pipelineID)
            let retryID = try #require(retried.json["execution_id"]?.stringValue)
            #expect(retryID != originalID)
            let retry = try await server.finished(retryID)
            #expect(retry["status"] == "FAILED" && retry["retry_of"]?.stringValue == originalID)
            let steps = try await server.send("GET", "/executions/\(retryID)/steps").json["steps"]?.arrayValue ?? []
            try #require(steps.map { $0["status"]?.stringValue } == ["COMPLETED", "FAILED", "SKIPPED"] && originalSteps.count == 3)
            // The completed step was carried over, not run again: same outputs, same start time.
            #expect(steps.first?["outputs"] == originalSteps.first?["outputs"])
            #expect(steps.first?["start_time"] == originalSteps.first?["start_time"])
            #expect(steps[1]["start_time"] != originalSteps[1]["start_time"])
            let original = try await server.send("GET", "/executions/\(originalID)").json
            #expect(original["status"] == "FAILED" && original["retry_of"] == .null)

            let withInitiator = try await server.send("POST", "/executions/\(retryID)/retry", json: ["initiator": "operator"])
            #expect(withInitiator.status == 201)
            let secondID = try #require(withInitiator.json["execution_id"]?.stringValue)
            #expect(try await server.finished(secondID)["initiator"] == "operator")

            let succeeding = try #require(
                try await server.send(
                    "POST", "/executions/run",
                    json: ["pipeline_definition": ["name": "ok", "steps": [["id": "a", "name": "A", "action": "log"]]]]
                )
                .json["execution_id"]?.stringValue)
            #expect(try await server.finished(succeeding)["status"] == "COMPLETED")
            let notRetryable = try await server.send("POST", "/executions/\(succeeding)/retry")
            #expect(notRetryable.status == 409 && notRetryable.json["code"] == "EXECUTION_NOT_RETRYABLE")
            let missing = try await server.send("POST", "/executions/\(Self.newUser())/retry")
            #expect(missing.status == 404 && missing.json["detail"]?["error"]?["code"] == "NOT_FOUND")
            let notUUID = try await server.send("POST", "/executions/nope/retry")
            #expect(notUUID.status == 422)
            let badBody = try await server.send("POST", "/executions/\(originalID)/retry", json: ["initiator": 5])
            #expect(badBody.status == 422 && badBody.json["code"] == "REQUEST_INVALID")
        }
    }

    @Test("the actions catalogue and parameter validation", arguments: TestBackend.available)
    func actions(backend: TestBackend) async throws {
        try await InProcessAPIServer.with(backend) { server in
            let catalogue = try await server.send("GET", "/actions").json
            let actions = catalogue["actions"]?.arrayValue ?? []
            #expect(catalogue["total"] == .int(actions.count))
            let types = Set(actions.compactMap { $0["type"]?.stringValue })
            #expect(
                types.isSuperset(of: [
                    "log", "transform", "fail", "set_output", "aggregate", "conditional", "wait_until", "model_add", "simulation_run",
                    "deployment_create",
                ]))
            #expect(actions.first { $0["type"] == "model_add" }?["executionMode"] == "event_driven")
            let modelAdd = try await server.send("POST", "/actions/validate", json: ["action_type": "model_add", "params": [:]]).json
            #expect(modelAdd["valid"] == false && modelAdd["errors"]?.arrayValue?.contains("Missing required parameter: model_uri") == true)
            #expect(
                actions.allSatisfy { action in
                    ["type", "name", "category", "params", "outputs", "executionMode", "idempotent"].allSatisfy { action[$0] != nil }
                })
            #expect(
                catalogue["categories"]?.arrayValue?.allSatisfy { $0["name"] != nil && $0["icon"] != nil && $0["actions"] != nil } == true)
            #expect(try await server.send("GET", "/actions/log").json["type"] == "log")
            #expect(try await server.send("GET", "/actions/nope").status == 404)
            // `greet` comes from the Greeter plugin, loaded with dlopen by the server.
            #expect(types.contains("greet"))
            let missing = try await server.send("POST", "/actions/validate", json: ["action_type": "greet", "params": [:]]).json
            #expect(missing["valid"] == false)
            #expect(missing["errors"]?.arrayValue?.contains("Missing required parameter: name") == true)
            let camel = try await server.send("POST", "/actions/validate", json: ["actionType": "greet", "params": [:]]).json
            #expect(camel == missing)
            let complete = try await server.send("POST", "/actions/validate", json: ["action_type": "greet", "params": ["name": "Ada"]])
                .json
            #expect(complete == ["valid": true, "errors": []])
            #expect(try await server.send("POST", "/actions/validate", json: ["action_type": "", "params": [:]]).status == 404)
        }
    }

    @Test("bad input always gets a JSON 4xx with a stable code", arguments: TestBackend.available)
    func badInput(backend: TestBackend) async throws {
        try await InProcessAPIServer.with(backend, environment: ["BUDPIPELINE_MAX_BODY_BYTES": "4096"]) { server in
            let malformed = try await server.send("POST", "/pipelines", body: "{\"dag\"")
            #expect(malformed.status == 422 && malformed.json["code"] == "REQUEST_INVALID")
            let wrongType = try await server.send("POST", "/pipelines", json: ["dag": 5])
            #expect(wrongType.status == 422 && wrongType.json["detail"]?[0]?["loc"] == ["body", "dag"])
            let notObject = try await server.send("POST", "/validate", body: "[1, 2]")
            #expect(notObject.status == 422)
            // PostgreSQL text cannot hold NUL: refused, never stored truncated.
            let nul = try await server.send(
                "POST", "/pipelines", body: #"{"dag": {"name": "a\u0000b", "steps": [{"id": "a", "name": "A", "action": "log"}]}}"#)
            #expect(nul.status == 422 && nul.json["detail"]?[0]?["type"] == "string_nul")
            let nulQuery = try await server.send("GET", "/executions?initiator=a%00b")
            #expect(nulQuery.status == 422)
            #expect(try await server.send("GET", "/pipelines").json.arrayValue?.isEmpty == true)
            let large = try await server.send("POST", "/validate", json: ["dag": ["name": .string(String(repeating: "x", count: 8192))]])
            #expect(large.status == 413 && large.json["code"] == "BODY_TOO_LARGE")
            for query in ["page_size=0", "page_size=101", "page=0", "page=x", "status=bogus", "workflow_id=nope", "start_date=yesterday"] {
                let reply = try await server.send("GET", "/executions?\(query)")
                #expect(reply.status == 422, "\(query)")
                #expect(reply.json["code"] == "REQUEST_INVALID", "\(query)")
            }
            #expect(try await server.send("GET", "/executions/\(UUID().uuidString)/events?event_type=bogus").status == 422)
            let route = try await server.send("GET", "/no/such/route")
            #expect(route.status == 404 && route.json["code"] == "ROUTE_NOT_FOUND")
            let stored = try await server.send("GET", "/pipelines").json
            #expect(stored == [])
        }
    }
}
