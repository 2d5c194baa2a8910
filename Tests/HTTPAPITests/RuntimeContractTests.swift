import BudJSON
import Foundation
import Testing
import _BudPipelineTestSupport

/// Answers that must hold when requests race: retries of one execution, completion events for one
/// step; and a schedule that could never fire. Over loopback HTTP, on SQLite and PostgreSQL.
@Suite("Runtime contracts under concurrency", .serialized)
struct RuntimeContractTests {
    /// Sends every request on a connection of its own, all before reading any answer, and returns
    /// the answers in order.
    private static func concurrently(_ requests: [String], port: Int) async throws -> [(status: Int, body: JSONValue)] {
        raiseDescriptorLimit()
        let connections = try requests.map { _ in try RawConnection(port: port) }
        for (connection, request) in zip(connections, requests) { connection.send(request) }
        var answers: [(status: Int, body: JSONValue)] = []
        for connection in connections {
            guard let response = await connection.response(timeout: .seconds(60)) else { throw ServerError("a request got no answer") }
            answers.append((response.status, (try? JSONValue(parsing: response.body)) ?? .null))
            connection.close()
        }
        return answers
    }

    private static func post(_ path: String, _ body: JSONValue, headers: [String: String] = [:]) -> String {
        let text = body.serializedString()
        let fields = headers.map { "\($0.key): \($0.value)\r\n" }.joined()
        return "POST \(path) HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: \(text.utf8.count)\r\n"
            + "\(fields)Connection: close\r\n\r\n\(text)"
    }

    @Test(
        "50 concurrent retries of one execution start one new execution; the others, and later ones, get it with 200",
        arguments: TestBackend.available)
    func concurrentRetries(backend: TestBackend) async throws {
        try await InProcessAPIServer.with(backend) { server in
            let failing: JSONValue = [
                "pipeline_definition": [
                    "name": "retry-race", "steps": [["id": "f", "name": "F", "action": "fail", "params": ["message": "boom"]]],
                ]
            ]
            let originalID = try #require(try await server.send("POST", "/executions/run", json: failing).json["execution_id"]?.stringValue)
            #expect(try await server.finished(originalID)["status"] == "FAILED")

            let retry = Self.post("/executions/\(originalID)/retry", [:])
            let answers = try await Self.concurrently(Array(repeating: retry, count: 50), port: server.port)
            #expect(answers.filter { $0.status == 201 }.count == 1, "\(answers.map(\.status))")
            #expect(answers.allSatisfy { $0.status == 201 || $0.status == 200 }, "\(answers.map(\.body))")
            let retryIDs = Set(answers.compactMap { $0.body["execution_id"]?.stringValue })
            #expect(retryIDs.count == 1)
            #expect(answers.allSatisfy { $0.body["retry_of"]?.stringValue == originalID })
            let listed = try await server.send("GET", "/executions?page_size=100").json
            #expect(listed["pagination"]?["total_count"] == 2, "the original and one retry: \(listed)")

            let retryID = try #require(retryIDs.first)
            let again = try await server.send("POST", "/executions/\(originalID)/retry")
            #expect(again.status == 200 && again.json["execution_id"]?.stringValue == retryID)
            #expect(try await server.finished(retryID)["status"] == "FAILED")
            let next = try await server.send("POST", "/executions/\(retryID)/retry")
            #expect(next.status == 201 && next.json["retry_of"]?.stringValue == retryID, "the retry itself can be retried")
        }
    }

    @Test(
        "of concurrent completion events for one awaiting step, exactly one is answered step_completed: true",
        arguments: TestBackend.available)
    func racingCompletionEvents(backend: TestBackend) async throws {
        try await InProcessAPIServer.with(backend, environment: WorkflowEventTests.environment) { server in
            let (request, executionID) = try await WorkflowEventTests.diamondAwaitingApproval(on: server)
            let events = (0..<12).map { index in
                Self.post(
                    "/workflow-events",
                    [
                        "id": .string("race-\(request)-\(index)"), "type": "approval", "workflow_id": .string("approval:\(request)"),
                        "decision": "approved", "approver": .string("approver-\(index)"),
                    ], headers: WorkflowEventTests.authorized)
            }
            let answers = try await Self.concurrently(events, port: server.port)
            #expect(answers.allSatisfy { $0.status == 200 && $0.body["status"] == "SUCCESS" }, "\(answers.map(\.body))")
            #expect(answers.filter { $0.body["step_completed"] == true }.count == 1, "\(answers.map(\.body))")
            let winner = try #require(answers.firstIndex { $0.body["step_completed"] == true })

            let execution = try await server.finished(executionID)
            #expect(execution["status"] == "COMPLETED")
            let steps = try await server.send("GET", "/executions/\(executionID)/steps").json["steps"]?.arrayValue ?? []
            let approver = steps.first { $0["step_id"] == "approve" }?["outputs"]?["approver"]?.stringValue
            #expect(approver == "approver-\(winner)", "the event answered step_completed is the one whose outputs were stored")
        }
    }

    @Test("a cron schedule that can never fire is refused at create and update", arguments: TestBackend.available)
    func neverFiringSchedule(backend: TestBackend) async throws {
        try await InProcessAPIServer.with(backend) { server in
            let pipelineID = try await TriggerAPITests.pipeline(on: server)
            for expression in ["0 0 31 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *"] {
                let refused = try await server.send(
                    "POST", "/schedules",
                    json: [
                        "workflow_id": .string(pipelineID), "name": "never",
                        "schedule": ["type": "cron", "expression": .string(expression)],
                    ])
                #expect(refused.status == 400 && refused.json["code"] == "INVALID_SCHEDULE", "\(expression): \(refused.text)")
                #expect(
                    refused.json["detail"]?.stringValue?.hasPrefix("Invalid schedule: Cron expression '\(expression)' never fires: ")
                        == true)
            }
            let created = try await server.send(
                "POST", "/schedules",
                json: ["workflow_id": .string(pipelineID), "name": "leap", "schedule": ["type": "cron", "expression": "0 0 29 2 *"]])
            #expect(created.status == 201 && created.json["next_run_at"]?.stringValue?.contains("-02-29T") == true, "\(created.text)")
            let id = try #require(created.json["id"]?.stringValue)
            let update = try await server.send("PUT", "/schedules/\(id)", json: ["schedule": ["type": "cron", "expression": "0 0 30 2 *"]])
            #expect(
                update.status == 400
                    && update.json["detail"] == "Invalid schedule: Cron expression '0 0 30 2 *' never fires: February has no day 30")
            #expect(try await server.send("GET", "/schedules/\(id)").json["schedule"]?["expression"] == "0 0 29 2 *", "nothing was changed")
        }
    }
}

extension WorkflowEventTests {
    /// Runs the diamond and waits until its `approve` step awaits the event of `request`.
    static func diamondAwaitingApproval(on server: some APIServing) async throws -> (request: String, executionID: String) {
        let request = String(UUID().uuidString.prefix(8).lowercased())
        let executionID = try await run(diamond(request: request), on: server)
        _ = try await awaiting("approve", of: executionID, on: server)
        return (request, executionID)
    }
}
