import BudJSON
import DaprSidecar
import Foundation
import Storage
import Testing
import _BudPipelineTestSupport

/// Outbound events through the test Dapr sidecar: the notification envelope, order per
/// execution, a sidecar that is down for a while, and a host killed with SIGKILL.
@Suite("Publishing", .serialized)
struct PublishingTests {
    static let token = "publish-test-token"
    static let allowedTopLevelKeys: Set<String> = [
        "notification_type", "name", "subscriber_ids", "actor", "topic_keys", "payload", "source", "source_topic", "correlation_id",
    ]

    static func environment(_ sidecar: DaprSidecar, _ extra: [String: String] = [:]) throws -> [String: String] {
        [
            "APP_API_TOKEN": token, "DAPR_HTTP_ENDPOINT": try #require(sidecar.endpoint), "NOTIFY_SERVICE_TOPIC": "notificationMessages",
            "BUDPIPELINE_PUBLISH_MAX_BACKOFF_SECONDS": "1",
        ].merging(extra) { _, new in new }
    }

    /// Waits until `topic` holds a `results` notification for `workflowID` and returns the topic's
    /// notifications for it, in arrival order.
    static func notifications(
        on sidecar: DaprSidecar, topic: String, workflowID: String, timeout: Duration = .seconds(30)
    ) async throws -> [DaprSidecar.Publication] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let mine = sidecar.publications(to: topic).filter { $0.body["payload"]?["workflow_id"]?.stringValue == workflowID }
            if mine.contains(where: { $0.body["payload"]?["event"] == "results" }) { return mine }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ServerError("no results notification for \(workflowID) on \(topic) within \(timeout)")
    }

    static func events(_ publications: [DaprSidecar.Publication]) -> [String] {
        publications.map {
            "\($0.body["payload"]?["event"]?.stringValue ?? "?")/\($0.body["payload"]?["content"]?["status"]?.stringValue ?? "?")"
        }
    }

    @Test("notifications use the envelope budapp and budnotify accept, reach both topics, in order", arguments: TestBackend.available)
    func notificationEnvelope(backend: TestBackend) async throws {
        let sidecar = DaprSidecar(appToken: Self.token)
        try await sidecar.start()
        defer { Task { await sidecar.stop() } }
        try await APIServerProcess.with(backend, environment: try Self.environment(sidecar)) { server in
            let user = UUID().uuidString.lowercased()
            let workflow = "W-\(UUID().uuidString.prefix(8))"
            let pipeline = try await server.send(
                "POST", "/pipelines", json: ["dag": APIContractTests.d1, "name": .string("pub-\(workflow)")])
            let pipelineID = try #require(pipeline.json["id"]?.stringValue)
            let started = try await server.send(
                "POST", "/executions",
                json: [
                    "workflow_id": .string(pipelineID), "params": [:], "callback_topics": ["budAppMessages"],
                    "subscriber_ids": .string(user),
                    "payload_type": "guardrail_deployment", "notification_workflow_id": .string(workflow),
                ])
            let executionID = try #require(started.json["execution_id"]?.stringValue)
            _ = try await server.finished(executionID)

            let app = try await Self.notifications(on: sidecar, topic: "budAppMessages", workflowID: workflow)
            #expect(Self.events(app) == ["a/STARTED", "a/COMPLETED", "b/STARTED", "b/COMPLETED", "results/COMPLETED"])
            for publication in app {
                let body = publication.body
                let keys = Set((body.objectValue ?? [:]).keys)
                #expect(keys.isSubset(of: Self.allowedTopLevelKeys))
                #expect(body["notification_type"] == "event" && body["name"] == "bud-notification")
                #expect(body["subscriber_ids"]?.stringValue == user && body["source"] == "budpipeline")
                #expect(body["source_topic"] == "budAppMessages")
                let payload = body["payload"]
                #expect(payload?["category"] == "internal" && payload?["type"] == "guardrail_deployment")
                #expect(payload?["source"] == "budpipeline")
                #expect(payload?["content"]?["title"]?.stringValue?.isEmpty == false)
                #expect(payload?["content"]?["message"]?.stringValue?.isEmpty == false)
                #expect(publication.contentType == "application/cloudevents+json" && publication.pubsub == "pubsub")
                #expect(publication.metadata["cloudevent.source"] == "budpipeline" && publication.metadata["cloudevent.id"] != nil)
                let traceID = executionID.replacingOccurrences(of: "-", with: "")
                #expect(publication.metadata["cloudevent.traceparent"]?.hasPrefix("00-\(traceID)-") == true)
            }
            let results = try #require(app.last?.body["payload"]?["content"]?["result"])
            #expect(results["success"] == true)
            #expect(results["outputs"]?["b"]?["result"] == "HELLO", "the per-step outputs map")

            let notify = try await Self.notifications(on: sidecar, topic: "notificationMessages", workflowID: workflow)
            #expect(Self.events(notify) == Self.events(app))

            // Without subscriber_ids nothing goes to the notification topic.
            let quiet = try await server.send(
                "POST", "/executions", json: ["workflow_id": .string(pipelineID), "callback_topics": ["budAppMessages"]])
            let quietID = try #require(quiet.json["execution_id"]?.stringValue)
            _ = try await server.finished(quietID)
            _ = try await Self.notifications(on: sidecar, topic: "budAppMessages", workflowID: quietID)
            #expect(
                sidecar.publications(to: "notificationMessages").allSatisfy { $0.body["payload"]?["workflow_id"]?.stringValue != quietID })
        }
    }

    @Test("plugins call services through the sidecar: a notification step reaches budnotify")
    func pluginServiceCalls() async throws {
        let sidecar = DaprSidecar(appToken: Self.token)
        sidecar.handleInvocations(of: "budnotify") { _ in (200, ["acknowledged": true]) }
        try await sidecar.start()
        try await APIServerProcess.with(.sqlite, environment: try Self.environment(sidecar)) { server in
            let dag: JSONValue = [
                "name": "notify",
                "steps": [["id": "tell", "name": "Tell", "action": "notification", "params": ["channel": "email", "message": "done"]]],
            ]
            let started = try await server.send(
                "POST", "/executions/run", json: ["pipeline_definition": dag, "user_id": "0a0b0c0d-7777-4777-8777-000000000007"])
            let executionID = try #require(started.json["execution_id"]?.stringValue)
            let execution = try await server.finished(executionID)
            #expect(execution["status"] == "COMPLETED")
            #expect(execution["final_outputs"]?["tell"]?["sent"] == true)
            let call = try #require(sidecar.invocations.first { $0.app == "budnotify" })
            #expect(
                call.body["subscriber_ids"] == ["0a0b0c0d-7777-4777-8777-000000000007"]
                    && call.body["payload"]?["workflow_id"]?.stringValue == executionID)
            #expect(call.traceparent?.contains(executionID.replacingOccurrences(of: "-", with: "")) == true)
        }
        await sidecar.stop()
    }

    @Test("the publisher outlasts a sidecar that is down, then delivers everything in order")
    func sidecarDown() async throws {
        let sidecar = DaprSidecar(appToken: Self.token)
        let port = try await sidecar.start()
        let environment = try Self.environment(sidecar, ["BUDPIPELINE_PUBLISH_MAX_ATTEMPTS": "1000"])
        try await APIServerProcess.with(.sqlite, environment: environment) { server in
            await sidecar.stop()
            var executions: [String] = []
            for _ in 0..<3 {
                let started = try await server.send(
                    "POST", "/executions/run", json: ["pipeline_definition": APIContractTests.d1, "callback_topics": ["budAppMessages"]])
                executions.append(try #require(started.json["execution_id"]?.stringValue))
            }
            for id in executions { _ = try await server.finished(id) }
            // Each execution's oldest event has failed a few times against the dead sidecar (a
            // refused connection fails after the client's one-second connect limit); the events
            // behind it wait.
            try await eventually {
                let rows = try await server.database.database.read(
                    "SELECT count(*) AS heads FROM outbox WHERE status = 'PENDING' AND attempts >= 3")
                return try rows.first?.int("heads") == executions.count
            }
            #expect(sidecar.publications.isEmpty)
            try await sidecar.start(port: port)
            for id in executions {
                let delivered = try await Self.notifications(on: sidecar, topic: "budAppMessages", workflowID: id)
                #expect(Self.events(delivered) == ["a/STARTED", "a/COMPLETED", "b/STARTED", "b/COMPLETED", "results/COMPLETED"])
            }
        }
        await sidecar.stop()
    }

    @Test("a host killed with SIGKILL loses no event: Dapr redelivers the inbound one, the outbox keeps the outbound")
    func killedHost() async throws {
        let sidecar = DaprSidecar(appToken: Self.token)
        try await sidecar.start()
        let database = try await TestDatabase.make(.sqlite, migrated: false)
        let environment = try Self.environment(sidecar)
        let first = try await APIServerProcess.launch(database, environment: environment)
        let request = String(UUID().uuidString.prefix(8).lowercased())
        let started = try await first.send(
            "POST", "/executions/run",
            json: ["pipeline_definition": WorkflowEventTests.diamond(request: request), "callback_topics": ["budAppMessages"]])
        let executionID = try #require(started.json["execution_id"]?.stringValue)
        _ = try await WorkflowEventTests.awaiting("approve", of: executionID, on: first)
        await first.process.kill()

        // The event arrives while the host is down; the sidecar keeps redelivering it.
        sidecar.appURL = first.baseURL
        let event: JSONValue = [
            "specversion": "1.0", "id": .string("kill-\(request)"), "type": "approval", "workflow_id": .string("approval:\(request)"),
            "decision": "approved", "approver": "kim",
        ]
        let delivery = Task { await sidecar.deliver(event, attempts: 150, pause: .milliseconds(100)) }
        try await Task.sleep(for: .milliseconds(500))
        let port = try #require(Int(first.baseURL.split(separator: ":").last ?? ""))
        let second = try await APIServerProcess.launch(database, environment: environment, port: port)
        let outcome = await delivery.value
        guard case .delivered(let answer) = outcome else {
            Issue.record("the event was not delivered: \(outcome)")
            await second.process.stop()
            await database.close()
            return
        }
        #expect(answer["routed"] == true && answer["step_completed"] == true)
        let execution = try await second.finished(executionID)
        #expect(execution["status"] == "COMPLETED")
        #expect(execution["final_outputs"]?["approve"]?["approver"] == "kim")
        let published = Self.events(try await Self.notifications(on: sidecar, topic: "budAppMessages", workflowID: executionID))
        // Publishing is at least once: a host killed between publishing an event and recording it
        // publishes it again after the restart. Nothing is lost and the order holds.
        let approve = published.filter { $0.hasPrefix("approve/") }.reduce(into: [String]()) { kept, event in
            if kept.last != event { kept.append(event) }
        }
        #expect(approve == ["approve/STARTED", "approve/COMPLETED"], "\(published)")
        #expect(published.last == "results/COMPLETED")
        await second.process.stop()
        await database.close()
        await sidecar.stop()
    }
}
