import BudJSON
import BudPipelineHost
import DaprSidecar
import PipelineRuntime
import PluginSchema
import PluginTesting
import Testing

/// The bundled Notification plugin, loaded from its built library, calling budnotify through the
/// host's Dapr service invocation and the test sidecar. (Here, not beside the runtime's timing
/// tests: loading a Swift plugin library into that busy test process delayed their timers by about
/// a second.)
@Suite("Notification plugin", .serialized)
struct NotificationPluginTests {
    static let params: JSONObject = [
        "channel": "email", "title": "Deployed", "message": "llama is ready", "severity": "info", "recipients": "u-1, u-2",
        "metadata": ["endpoint": "e-1"],
    ]

    @Test("a notification reaches budnotify in the request shape it accepts")
    func sends() async throws {
        let sidecar = DaprSidecar()
        sidecar.handleInvocations(of: "budnotify") { _ in (200, ["acknowledged": true]) }
        let port = try await sidecar.start()
        let invoker = DaprServiceInvoker(endpoint: "http://127.0.0.1:\(port)", apiToken: nil)
        try await PluginTestHost.withPlugin(product: "Notification", serviceInvoker: invoker) { plugin in
            let outcome = try await plugin.execute("notification", params: Self.params)
            #expect(
                outcome
                    == .completed(outputs: ["sent": true, "notification_id": "test-execution-test-step", "recipients": ["u-1", "u-2"]]))
            let call = try #require(sidecar.invocations.first)
            #expect(call.app == "budnotify" && call.method == "POST" && call.path == "notifications")
            #expect(call.body["notification_type"] == "event" && call.body["name"] == "bud-notification")
            #expect(call.body["subscriber_ids"] == ["u-1", "u-2"])
            let content = call.body["payload"]?["content"]
            #expect(content?["title"] == "Deployed" && content?["message"] == "llama is ready" && content?["status"] == "COMPLETED")
            #expect(content?["result"]?["channel"] == "email")
            #expect(content?["result"]?["metadata"]?["endpoint"] == "e-1" && content?["result"]?["metadata"]?["source"] == "budpipeline")

            // Without recipients, the execution's user.
            _ = try await plugin.execute("notification", params: ["channel": "slack", "message": "hi"], workflowParams: ["user_id": "u-9"])
            #expect(sidecar.invocations.last?.body["subscriber_ids"] == ["u-9"])
        }
        await sidecar.stop()
    }

    @Test("refusals and outages end the step with a clear error; only outages are retried")
    func failures() async throws {
        let sidecar = DaprSidecar()
        sidecar.handleInvocations(of: "budnotify") { _ in (422, ["detail": "subscriber_ids is required"]) }
        let port = try await sidecar.start()
        let invoker = DaprServiceInvoker(endpoint: "http://127.0.0.1:\(port)", apiToken: nil)
        try await PluginTestHost.withPlugin(product: "Notification", serviceInvoker: invoker) { plugin in
            let refused = try await plugin.execute("notification", params: Self.params)
            guard case .failed(let message, let retryable, let outputs) = refused else {
                Issue.record("expected a failure, got \(refused)")
                return
            }
            #expect(message.contains("HTTP 422") && message.contains("subscriber_ids is required") && !retryable)
            #expect(outputs["sent"] == false)

            let invalid = try await plugin.execute("notification", params: ["channel": "pigeon", "severity": "loud"])
            guard case .failed(let problems, false, _) = invalid else {
                Issue.record("expected a validation failure, got \(invalid)")
                return
            }
            #expect(problems.contains("channel must be one of: email, slack, teams, webhook"))
            #expect(problems.contains("message is required") && problems.contains("severity must be one of"))

            await sidecar.stop()
            let outage = try await plugin.execute("notification", params: Self.params)
            guard case .failed(let text, true, _) = outage else {
                Issue.record("expected a retryable failure, got \(outage)")
                return
            }
            #expect(text.contains("Failed to send notification"))
        }
    }
}
