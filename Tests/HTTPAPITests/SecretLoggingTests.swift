import BudJSON
import DaprSidecar
import Foundation
import Testing
import _BudPipelineTestSupport

/// No token or password reaches the log, at any level: a server at `LOG_LEVEL=trace` with every
/// secret it knows set goes through start-up, inbound events, plugin service calls, a refused
/// call, publishing, a webhook with a secret and shutdown, and its whole output is searched.
@Suite("Secrets stay out of the log", .serialized)
struct SecretLoggingTests {
    static let appToken = "app-token-9f3c1d"
    static let daprToken = "dapr-token-27be44"
    static let databasePassword = "db-password-5a81e0"
    static let paramPassword = "param-password-c07d2b"

    /// `url` with `databasePassword` as its user's password and as a `password` parameter.
    static func withPassword(_ url: String) -> String {
        guard var components = URLComponents(string: url) else { return url }
        let items = components.queryItems ?? []
        components.password = databasePassword
        components.queryItems = items + [URLQueryItem(name: "password", value: databasePassword)]
        return components.string ?? url
    }

    @Test("tokens, passwords and webhook secrets appear nowhere in a trace-level log", arguments: TestBackend.available)
    func nothingSecretIsLogged(backend: TestBackend) async throws {
        let sidecar = DaprSidecar(appToken: Self.appToken)
        sidecar.handleInvocations(of: "budcluster") { _ in (200, ["data": ["nodes": ["healthy": true]]]) }
        try await sidecar.start()
        let database = try await TestDatabase.make(backend, migrated: false)
        var environment = [
            "LOG_LEVEL": "trace", "APP_API_TOKEN": Self.appToken, "DAPR_API_TOKEN": Self.daprToken,
            "DAPR_HTTP_ENDPOINT": try #require(sidecar.endpoint), "SYSTEM_USER_ID": "u-1",
        ]
        if backend == .postgres { environment["DATABASE_URL"] = Self.withPassword(database.url) }
        let server: APIServerProcess
        do {
            server = try await APIServerProcess.launch(database, environment: environment)
        } catch {
            await database.close()
            await sidecar.stop()
            throw error
        }
        sidecar.appURL = server.baseURL
        var webhookSecret = ""
        do {
            let dag: JSONValue = [
                "name": "logged",
                "steps": [
                    ["id": "health", "name": "Health", "action": "cluster_health", "params": ["cluster_id": "c-1", "checks": ["nodes"]]],
                    [
                        "id": "refused", "name": "Refused", "action": "model_delete", "on_failure": "continue",
                        "params": ["model_id": "../../../secrets/kubernetes/db?x="],
                    ],
                    ["id": "say", "name": "Say", "action": "log", "params": ["message": "hello"]],
                ],
            ]
            let started = try await server.send(
                "POST", "/executions/run",
                json: [
                    "pipeline_definition": dag,
                    "params": ["password": .string(Self.paramPassword), "api_key": .string(Self.paramPassword)],
                    "callback_topics": ["budAppMessages"],
                ])
            let executionID = try #require(started.json["execution_id"]?.stringValue)
            _ = try await server.finished(executionID)
            _ = try await PublishingTests.notifications(on: sidecar, topic: "budAppMessages", workflowID: executionID)
            // Inbound events with the right and a wrong token.
            let event: JSONValue = ["type": "notification", "payload": ["workflow_id": "none", "event": "results"]]
            if case .gaveUp(let reason) = await sidecar.deliver(event) { Issue.record("the event was not delivered: \(reason)") }
            let wrong = try await server.send(
                "POST", "/workflow-events", json: event, headers: ["dapr-api-token": Self.appToken + "-wrong"])
            #expect(wrong.status == 403)
            // A webhook with a secret, triggered with it.
            let hooked: JSONValue = [
                "name": "hooked", "steps": [["id": "say", "name": "Say", "action": "log", "params": ["message": "hi"]]],
            ]
            let pipeline = try await server.send("POST", "/pipelines", json: ["dag": hooked])
            let pipelineID = try #require(pipeline.json["id"]?.stringValue)
            let hook = try await server.send(
                "POST", "/webhooks", json: ["workflow_id": .string(pipelineID), "name": "h", "config": ["require_secret": true]])
            webhookSecret = try #require(hook.json["secret"]?.stringValue)
            let hookID = try #require(hook.json["id"]?.stringValue)
            let fired = try await server.send("POST", "/trigger/\(hookID)", headers: ["X-Webhook-Secret": webhookSecret])
            #expect(fired.status == 200)
        } catch {
            await server.process.stop()
            await database.close()
            await sidecar.stop()
            throw error
        }
        let status = await server.process.stop()
        await database.close()
        await sidecar.stop()
        let output = server.process.output
        #expect(status == 0, "\(output)")

        #expect(output.contains(" debug ") && output.contains(" trace "), "the log is at trace level")
        #expect(output.contains("service call refused"), "the refused call was logged")
        #expect(sidecar.invocations.contains { $0.apiToken == Self.daprToken }, "the sidecar got the token")
        for secret in [Self.appToken, Self.daprToken, Self.databasePassword, Self.paramPassword, webhookSecret] {
            #expect(
                !output.contains(secret),
                "'\(secret)' is in the log:\n\(output.components(separatedBy: "\n").filter { $0.contains(secret) }.joined(separator: "\n"))"
            )
        }
    }
}
