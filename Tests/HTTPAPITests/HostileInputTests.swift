import BudJSON
import Foundation
import Testing
import _BudPipelineTestSupport

/// Requests a hostile client sends, over loopback to a real server on each store: every one is
/// answered — a 4xx or 503 JSON error with a stable code, an answer saying what is wrong, or an
/// execution whose step FAILED with a clear reason — and the server's process is the same one
/// before and after, still serving.
@Suite("Hostile input", .serialized)
struct HostileInputTests {
    /// The server still runs, as the same process, and answers.
    private static func expectAlive(_ server: APIServerProcess, pid: Int32, after what: String) async throws {
        #expect(
            server.process.isRunning && server.process.pid == pid, "the server died after \(what):\n\(server.process.output.suffix(3000))")
        #expect(try await server.send("GET", "/health").status == 200, "after \(what)")
    }

    /// A 4xx (or 503) answer with a JSON body carrying a code and a message (or FastAPI's `detail`).
    private static func expectRefused(_ reply: APIServerProcess.Reply, _ what: String) {
        #expect((400..<500).contains(reply.status) || reply.status == 503, "\(what): \(reply.status) \(reply.text.prefix(300))")
        let hasCode = reply.json["code"]?.stringValue != nil && reply.json["message"]?.stringValue != nil
        #expect(hasCode || reply.json["detail"] != nil, "\(what): \(reply.text.prefix(300))")
    }

    private static func dag(_ steps: [JSONValue], settings: JSONObject = [:], parameters: [JSONValue] = []) -> JSONValue {
        ["name": "hostile", "settings": .object(settings), "parameters": .array(parameters), "steps": .array(steps)]
    }

    private static func step(_ id: String, _ action: String, _ params: JSONObject = [:], extra: JSONObject = [:]) -> JSONValue {
        let base: JSONObject = ["id": .string(id), "name": .string(id), "action": .string(action), "params": .object(params)]
        return .object(base.merging(extra))
    }

    private static func nested(_ opening: String, _ closing: String, depth: Int, inner: String = "1") -> String {
        String(repeating: opening, count: depth) + inner + String(repeating: closing, count: depth)
    }

    // MARK: Requests refused at the door

    @Test("requests that once stopped or broke the server are refused with a 4xx", arguments: TestBackend.available)
    func requests(backend: TestBackend) async throws {
        try await APIServerProcess.with(backend) { server in
            let pid = server.process.pid
            let deepTemplate = "{{ " + Self.nested("(", ")", depth: 12_000) + " }}"
            let deepDAG = Self.dag([Self.step("a", "log", ["message": .string(deepTemplate)])])

            let validated = try await server.send("POST", "/validate", json: ["dag": deepDAG])
            #expect(validated.status == 200 && validated.json["valid"] == false, "\(validated.text.prefix(300))")
            #expect(
                validated.json["errors"]?[0]?.stringValue?.contains("nests deeper than 64 levels") == true, "\(validated.text.prefix(300))")
            try await Self.expectAlive(server, pid: pid, after: "a template nested 12,000 deep")

            let cases: [(String, String, String, String)] = [
                (
                    "a pipeline with a template nested 12,000 deep", "POST", "/pipelines",
                    JSONValue.object(["dag": deepDAG]).serializedString()
                ),
                (
                    "an execution timeout of Int.max", "POST", "/executions/run",
                    JSONValue.object([
                        "pipeline_definition": Self.dag([Self.step("a", "log")], settings: ["timeout_seconds": .int(Int.max)])
                    ]).serializedString()
                ),
                (
                    "a step timeout of 10^13 seconds", "POST", "/executions/run",
                    JSONValue.object([
                        "pipeline_definition": Self.dag([Self.step("a", "log", extra: ["timeout_seconds": .int(10_000_000_000_000)])])
                    ]).serializedString()
                ),
                (
                    "a NaN backoff multiplier", "POST", "/executions/run",
                    JSONValue.object([
                        "pipeline_definition": Self.dag(
                            [Self.step("a", "log")], settings: ["retry_policy": ["backoff_multiplier": "nan", "max_attempts": 3]])
                    ]).serializedString()
                ),
                ("a date in year 0", "GET", "/executions?start_date=0000-01-01T00:00:00Z", ""),
                (
                    "a name of 200 characters and 400 code points", "POST", "/pipelines",
                    JSONValue.object(["dag": Self.dag([Self.step("a", "log")]), "name": .string(String(repeating: "e\u{301}", count: 200))])
                        .serializedString()
                ),
                (
                    "a DAG name of 200 characters and 400 code points", "POST", "/executions/run",
                    JSONValue.object([
                        "pipeline_definition": [
                            "name": .string(String(repeating: "🇫🇷", count: 130)), "steps": [Self.step("a", "log")],
                        ]
                    ]).serializedString()
                ),
                ("JSON nested 100,000 deep", "POST", "/pipelines", "{\"dag\": " + Self.nested("[", "]", depth: 100_000) + "}"),
                ("a NUL character", "POST", "/pipelines", #"{"dag": {"name": "a\u0000b", "steps": []}}"#),
                ("a body of 5 MiB", "POST", "/validate", "{\"dag\": {\"name\": \"" + String(repeating: "x", count: 5 << 20) + "\"}}"),
                ("malformed JSON", "POST", "/executions/run", "{\"pipeline_definition\": {"),
            ]
            for (what, method, path, body) in cases {
                let reply = try await server.send(method, path, body: body.isEmpty ? nil : body)
                Self.expectRefused(reply, what)
                try await Self.expectAlive(server, pid: pid, after: what)
            }

            // A schedule whose interval would overflow the date arithmetic.
            let pipeline = try await server.send("POST", "/pipelines", json: ["dag": Self.dag([Self.step("a", "log")]), "name": "sched"])
            let pipelineID = try #require(pipeline.json["id"]?.stringValue, "\(pipeline.text)")
            let schedule = try await server.send(
                "POST", "/schedules",
                json: [
                    "workflow_id": .string(pipelineID), "name": "far",
                    "schedule": ["type": "interval", "expression": "@every 999999999d"],
                ])
            Self.expectRefused(schedule, "an interval of 999,999,999 days")
            try await Self.expectAlive(server, pid: pid, after: "an interval of 999,999,999 days")

            // wait_until parameters with digits of another script once indexed past an array.
            let waitCheck = try await server.send(
                "POST", "/actions/validate", json: ["action_type": "wait_until", "params": ["until_time": "12:\u{0660}\u{0660}"]])
            #expect(waitCheck.status == 200 && waitCheck.json["valid"] == false, "\(waitCheck.text)")
            try await Self.expectAlive(server, pid: pid, after: "Arabic-Indic digits in until_time")
        }
    }

    // MARK: Templates and values that fail their step

    @Test("templates that once trapped or exhausted memory fail their step with the reason", arguments: TestBackend.available)
    func templates(backend: TestBackend) async throws {
        try await APIServerProcess.with(backend) { server in
            let pid = server.process.pid
            let failing: [(String, JSONObject, String)] = [
                ("a 200 MB string", ["message": "{{ 'a' * 200000000 }}"], "BUDPIPELINE_TEMPLATE_MAX_VALUE_BYTES"),
                ("a billion-element list", ["message": "{{ [1, 2] * 1000000000 }}"], "BUDPIPELINE_TEMPLATE_MAX_VALUE_BYTES"),
                ("Int.max + 1", ["message": "{{ 9223372036854775807 + 1 }}"], "integer overflow"),
                ("Int.min // -1", ["message": "{{ (-9223372036854775807 - 1) // -1 }}"], "integer overflow"),
                ("-Int.min", ["message": "{{ -(-9223372036854775807 - 1) }}"], "integer overflow"),
                ("2 ** 64", ["message": "{{ 2 ** 64 }}"], "integer overflow"),
                ("tojson with an indent of 10^9", ["message": "{{ [1] | tojson(1000000000) }}"], "BUDPIPELINE_TEMPLATE_MAX_VALUE_BYTES"),
                ("a replace that grows", ["message": "{{ ('a' * 600000) | replace('a', 'aa') }}"], "BUDPIPELINE_TEMPLATE_MAX_VALUE_BYTES"),
                (
                    "parameters over the stored limit",
                    ["message": "{{ 'x' * 900000 }}", "other": "{{ 'y' * 900000 }}"], "BUDPIPELINE_MAX_STEP_PARAMS_BYTES"
                ),
            ]
            for (what, params, reason) in failing {
                let run = try await server.send(
                    "POST", "/executions/run", json: ["pipeline_definition": Self.dag([Self.step("s", "log", params)])])
                let id = try #require(run.json["execution_id"]?.stringValue, "\(what): \(run.text.prefix(300))")
                let execution = try await server.finished(id)
                #expect(execution["status"] == "FAILED", "\(what): \(execution)")
                let steps = try await server.send("GET", "/executions/\(id)/steps").json["steps"]?.arrayValue ?? []
                let message = steps.first?["error_message"]?.stringValue ?? ""
                #expect(message.contains(reason), "\(what): \(message)")
                try await Self.expectAlive(server, pid: pid, after: what)
            }

            // Fine ones: Python's answers.
            let fine = try await server.send(
                "POST", "/executions/run",
                json: [
                    "pipeline_definition": Self.dag([
                        Self.step(
                            "s", "set_output",
                            [
                                "outputs": [
                                    "json": "{{ [1] | tojson(-4) }}", "mod": "{{ (-9223372036854775807 - 1) % -1 }}",
                                    "base": #"{{ "10" | int(0, 1) }}"#,
                                ]
                            ])
                    ])
                ])
            let fineID = try #require(fine.json["execution_id"]?.stringValue)
            let done = try await server.finished(fineID)
            #expect(done["status"] == "COMPLETED", "\(done)")
            #expect(done["final_outputs"]?["s"] == ["json": "[\n1\n]", "mod": 0, "base": 10], "\(done)")

            // A NaN wait and a retry count of 1e300 fail without trapping or retrying forever.
            let nanWait = try await server.send(
                "POST", "/executions/run",
                json: ["pipeline_definition": Self.dag([Self.step("w", "wait_until", ["duration_hours": "nan"])])])
            let nanID = try #require(nanWait.json["execution_id"]?.stringValue)
            #expect(try await server.finished(nanID)["status"] == "FAILED")
            let retries = try await server.send(
                "POST", "/executions/run",
                json: [
                    "pipeline_definition": Self.dag(
                        [
                            Self.step(
                                "f", "fail", [:], extra: ["on_failure": "retry", "retry": ["max_attempts": "{{ params.n }}"]])
                        ], parameters: [["name": "n"]]),
                    "params": ["n": 1e300],
                ])
            let retriesID = try #require(retries.json["execution_id"]?.stringValue, "\(retries.text)")
            #expect(try await server.finished(retriesID)["status"] == "FAILED")

            // A log line of 500 kB is written cut, with a marker.
            let long = try await server.send(
                "POST", "/executions/run",
                json: ["pipeline_definition": Self.dag([Self.step("l", "log", ["message": "{{ 'z' * 500000 }}"])])])
            let longID = try #require(long.json["execution_id"]?.stringValue)
            #expect(try await server.finished(longID)["status"] == "COMPLETED")
            try await Self.expectAlive(server, pid: pid, after: "templates")
        }
    }

    // MARK: Events

    @Test("events with extreme values are handled, not trapped on", arguments: TestBackend.available)
    func events(backend: TestBackend) async throws {
        try await APIServerProcess.with(backend, environment: WorkflowEventTests.environment) { server in
            let pid = server.process.pid
            let request = String(UUID().uuidString.prefix(8).lowercased())
            let executionID = try await WorkflowEventTests.run(WorkflowEventTests.diamond(request: request), on: server)
            _ = try await WorkflowEventTests.awaiting("approve", of: executionID, on: server)
            let headers = WorkflowEventTests.authorized
            let extremes: [JSONValue] = [
                ["type": "reminder", "workflow_id": .string("approval:\(request)"), "eta_minutes": .int(Int.max)],
                ["type": "reminder", "workflow_id": .string("approval:\(request)"), "eta_minutes": .int(153_722_867_280_912_930)],
                ["id": .string(String(repeating: "e\u{301}", count: 300)), "type": "x", "workflow_id": .string(UUID().uuidString)],
                [
                    "id": "deep", "type": "x", "workflow_id": .string(UUID().uuidString),
                    "data": .string(Self.nested("{\"a\": ", "}", depth: 600)),
                ],
            ]
            for event in extremes {
                let answer = try await server.send("POST", "/workflow-events", json: event, headers: headers)
                #expect(answer.status == 200 && ["SUCCESS", "DROP"].contains(answer.json["status"]?.stringValue ?? ""), "\(answer.text)")
                try await Self.expectAlive(server, pid: pid, after: "an event \(event.serializedString().prefix(80))")
            }
            let progress = try await server.send("GET", "/executions/\(executionID)/progress")
            #expect(progress.status == 200, "\(progress.text)")
            let deep = try await server.send(
                "POST", "/workflow-events", body: "{\"workflow_id\": \"x\", \"data\": " + Self.nested("[", "]", depth: 100_000) + "}",
                headers: headers)
            #expect(deep.status == 200 && deep.json["status"] == "DROP", "\(deep.text.prefix(300))")
            let approval: JSONValue = ["type": "approval", "workflow_id": .string("approval:\(request)"), "decision": "approved"]
            _ = try await server.send("POST", "/workflow-events", json: approval, headers: headers)
            #expect(try await server.finished(executionID)["status"] == "COMPLETED")
            try await Self.expectAlive(server, pid: pid, after: "events")
        }
    }

    // MARK: Storage faults

    /// Sets a running process's file size limit (util-linux's `prlimit`, part of every Debian).
    private static func limitFileSize(of pid: Int32, to limit: String) async throws -> Bool {
        try await ProcessRunner.run("/usr/bin/prlimit", ["--pid", String(pid), "--fsize=\(limit):unlimited"]).status == 0
    }

    @Test("a full disk answers 503 with a stable code; /ready says so and recovers with the disk")
    func fullDisk() async throws {
        try await APIServerProcess.with(.sqlite) { server in
            let pid = server.process.pid
            let before = try await server.send("POST", "/pipelines", json: ["dag": Self.dag([Self.step("a", "log")]), "name": "before"])
            #expect(before.status == 201)

            // No file of the server's may grow by a byte: a full disk, as the server sees it.
            #expect(try await Self.limitFileSize(of: pid, to: "1"))
            var refused: APIServerProcess.Reply?
            for attempt in 0..<20 {
                let reply = try await server.send(
                    "POST", "/pipelines", json: ["dag": Self.dag([Self.step("a", "log")]), "name": .string("full-\(attempt)")])
                if reply.status != 201 {
                    refused = reply
                    break
                }
            }
            let answer = try #require(refused, "no write failed with the file size limit")
            #expect(answer.status == 503 && answer.json["code"] == "STORAGE_UNAVAILABLE", "\(answer.text)")
            let notReady = try await server.send("GET", "/ready")
            #expect(notReady.status == 503 && notReady.json["database_writable"] == false, "\(notReady.text)")
            let health = try await server.send("GET", "/health")
            #expect(health.status == 200 && health.json["status"] == "degraded" && health.json["storage"]?["writable"] == false)
            #expect(try await server.send("GET", "/pipelines").status == 200, "reads still work")
            #expect(server.process.isRunning && server.process.pid == pid)

            #expect(try await Self.limitFileSize(of: pid, to: "unlimited"))
            let ready = try await server.send("GET", "/ready")
            #expect(ready.status == 200 && ready.json["database_writable"] == true, "\(ready.text)")
            let after = try await server.send("POST", "/pipelines", json: ["dag": Self.dag([Self.step("a", "log")]), "name": "after"])
            #expect(after.status == 201)
            #expect(try await server.send("GET", "/health").json["status"] == "healthy")
        }
    }
}
