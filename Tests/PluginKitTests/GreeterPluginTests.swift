import BudJSON
import BudPipelineHost
import PluginSchema
import PluginTesting
import Synchronization
import Testing

/// The Swift example plugin, loaded through the host: PluginKit's JSON, memory and error handling.
@Suite struct GreeterPluginTests {
    @Test func greets() async throws {
        try await PluginTestHost.withPlugin(product: "Greeter") { plugin in
            let reports = Mutex<[PluginProgress]>([])
            let outcome = try await plugin.execute("greet", params: ["name": "Ada", "language": "fr", "excited": true]) { progress in
                reports.withLock { $0.append(progress) }
            }
            #expect(outcome == .completed(outputs: ["greeting": "Bonjour, Ada!", "length": 13]))
            #expect(reports.withLock { $0 } == [PluginProgress(percent: 100, message: "greeting ready")])
            let plain = try await plugin.execute("greet", params: ["name": "Bo"])
            #expect(plain == .completed(outputs: ["greeting": "Hello, Bo.", "length": 10]))
        }
    }

    @Test func usesItsConfiguration() async throws {
        try await PluginTestHost.withPlugin(product: "Greeter", configuration: ["default_language": "de"]) { plugin in
            let german = try await plugin.execute("greet", params: ["name": "Eva"])
            #expect(german == .completed(outputs: ["greeting": "Hallo, Eva.", "length": 11]))
        }
    }

    @Test func aThrowingInitRefusesThePlugin() async throws {
        await #expect(throws: PluginRefusal.self) {
            try await PluginTestHost.load(product: "Greeter", configuration: ["default_language": "xx"])
        }
        do {
            _ = try await PluginTestHost.load(product: "Greeter", configuration: ["default_language": "xx"])
        } catch let refusal as PluginRefusal {
            #expect(refusal.reason == "init failed (FATAL_ERROR): default_language 'xx' is not one of: de, en, es, fr")
        }
    }

    @Test func thrownFailuresBecomeFatalErrors() async throws {
        try await PluginTestHost.withPlugin(product: "Greeter") { plugin in
            let missingName = try await plugin.execute("greet", params: [:])
            #expect(missingName == .failed(message: "name is required"))
            let invalid = try await plugin.validate("greet", params: ["name": 3, "language": "xx"])
            #expect(invalid == ["name must be a string", "language must be one of: de, en, es, fr"])
            let valid = try await plugin.validate("greet", params: ["name": "a"])
            #expect(valid == [])
        }
    }

    @Test func awaitsAnApprovalEvent() async throws {
        try await PluginTestHost.withPlugin(product: "Greeter") { plugin in
            let started = try await plugin.execute(
                "await_approval", params: ["request_id": "r-1", "approver": "lee", "timeout_seconds": 60])
            #expect(
                started
                    == .awaitingEvent(
                        externalWorkflowID: "approval:r-1",
                        timeoutSeconds: 60,
                        outputs: ["status": "pending", "approver": "lee", "comment": nil]
                    )
            )
            let approved = try await plugin.handleEvent(
                "await_approval",
                externalWorkflowID: "approval:r-1",
                event: ["type": "approval", "decision": "approved", "comment": "ok"],
                stepOutputs: ["approver": "lee"]
            )
            #expect(approved == .complete(status: .completed, outputs: ["status": "approved", "approver": "lee", "comment": "ok"]))
            let rejected = try await plugin.handleEvent(
                "await_approval",
                externalWorkflowID: "approval:r-1",
                event: ["type": "approval", "decision": "rejected", "approver": "kim", "comment": "too big"]
            )
            #expect(
                rejected
                    == .complete(
                        status: .failed,
                        outputs: ["status": "rejected", "approver": "kim", "comment": "too big"],
                        error: "request was rejected: too big"
                    )
            )
            let reminder = try await plugin.handleEvent(
                "await_approval", externalWorkflowID: "approval:r-1", event: ["type": "reminder", "eta_minutes": 5])
            #expect(reminder == .updateProgress(percent: nil, etaSeconds: 300, message: "approval expected in 5 min"))
            let unrelated = try await plugin.handleEvent("await_approval", externalWorkflowID: "approval:r-1", event: ["type": "noise"])
            #expect(unrelated == .ignore)
            let malformed = try await plugin.handleEvent("await_approval", externalWorkflowID: "approval:r-1", event: ["type": "approval"])
            #expect(
                malformed
                    == .complete(status: .failed, outputs: [:], error: "approval event without a decision of 'approved' or 'rejected'"))
            let cleanup = CleanupRequest(
                action: "await_approval", executionID: "e", stepID: "s", externalWorkflowID: "approval:r-1", reason: .timedOut)
            let cleanupError = try await plugin.host.cleanup(cleanup)
            #expect(cleanupError == nil)
        }
    }

    @Test func exportsItsMetadata() async throws {
        try await PluginTestHost.withPlugin(product: "Greeter") { plugin in
            #expect(
                plugin.plugin.image.manifest
                    == PluginManifest(name: "greeter", version: "1.0.0", description: "Example Swift plugin built with PluginKit."))
            #expect(plugin.plugin.image.isThreadSafe)
            let approval = try #require(plugin.host.action("await_approval")?.metadata)
            #expect(approval.executionMode == .eventDriven)
            #expect(approval.timeoutSeconds == 3600)
            let greet = try #require(plugin.host.action("greet")?.metadata)
            #expect(greet.params.map(\.name) == ["name", "language", "excited"])
            #expect(greet.params[1].options?.count == 4)
        }
    }
}
