import BudJSON
import BudPipelineHost
import DaprSidecar
import PipelineRuntime
import PluginSchema
import PluginTesting
import Testing

/// The domain plugins, loaded from their built libraries, calling the test sidecar through the
/// host's Dapr invoker: whatever a step passes as an id, only method paths of the target app
/// arrive, and a value that cannot be a path segment fails the step without a retry.
@Suite("Domain plugin service paths", .serialized)
struct ServicePathPluginTests {
    static let user = "6f1c0e2a-user"

    /// Runs `body` with a sidecar that answers every budapp and budcluster call with `{}`.
    static func withSidecar(_ body: (DaprSidecar, DaprServiceInvoker) async throws -> Void) async throws {
        let sidecar = DaprSidecar()
        sidecar.handleInvocations(of: "budapp") { _ in (200, [:]) }
        sidecar.handleInvocations(of: "budcluster") { _ in (200, ["data": [:]]) }
        let port = try await sidecar.start()
        do {
            try await body(sidecar, DaprServiceInvoker(endpoint: "http://127.0.0.1:\(port)", apiToken: "sidecar-token"))
        } catch {
            await sidecar.stop()
            throw error
        }
        await sidecar.stop()
    }

    /// The failure `outcome` is, or a recorded issue.
    static func failure(_ outcome: StepOutcome, _ label: String) -> (message: String, retryable: Bool)? {
        guard case .failed(let message, let retryable, _) = outcome else {
            Issue.record("\(label): expected a failure, got \(outcome)")
            return nil
        }
        return (message, retryable)
    }

    static let smuggled: [(id: String, problem: String)] = [
        ("..", "model_id '..' cannot be a service path segment"), (".", "model_id '.' cannot be a service path segment"),
        ("../../../state/statestore/key1?x=", "the path holds a '?' once percent-decoded"),
        ("../../../../secrets/kubernetes/db", "'..' segment"),
        ("%2e%2e", "'..' segment"), ("%2E%2E%2F%2E%2E%2Fstate", "'..' segment"), ("..%2f..%2fstate", "'..' segment"),
        ("%252e%252e", "'..' segment"), ("m1?force=true", "'?'"), ("m1#x", "'#'"), ("m1\\..\\..\\state", "backslash"),
        ("http://evil.example/x", "empty segment"), ("m1\u{0}", "control character (0x0)"), ("m1\r\nX-Injected: 1", "control character"),
    ]

    @Test("model_delete: ids that would leave budapp's models fail the step and are never sent")
    func modelDeleteRefusals() async throws {
        try await Self.withSidecar { sidecar, invoker in
            try await PluginTestHost.withPlugin(product: "ModelOperations", serviceInvoker: invoker) { plugin in
                for (id, problem) in Self.smuggled {
                    let outcome = try await plugin.execute(
                        "model_delete", params: ["model_id": .string(id)], workflowParams: ["user_id": .string(Self.user)])
                    guard let (message, retryable) = Self.failure(outcome, id.debugDescription) else { continue }
                    #expect(
                        message.hasPrefix("Failed to delete the model: call to budapp not made: "), "\(id.debugDescription): \(message)")
                    #expect(message.contains(problem), "\(id.debugDescription): \(message)")
                    #expect(!retryable, "\(id.debugDescription): the same call would be refused again")
                }
                #expect(sidecar.receivedRequests.isEmpty, "nothing sent: \(sidecar.receivedRequests)")

                // An id with a slash is one segment, and the call goes through.
                let outcome = try await plugin.execute(
                    "model_delete", params: ["model_id": "org/m 1"], workflowParams: ["user_id": .string(Self.user)])
                guard case .completed(let outputs) = outcome else {
                    Issue.record("expected a completed step, got \(outcome)")
                    return
                }
                #expect(outputs["success"] == true)
                #expect(
                    sidecar.receivedRequests == [
                        DaprSidecar.ReceivedRequest(
                            method: "DELETE", target: "/v1.0/invoke/budapp/method/models/org%2Fm%201?force=false&user_id=\(Self.user)")
                    ])
            }
        }
    }

    @Test("cluster_health: a traversing cluster id fails the step; budcluster is still asked about real clusters")
    func clusterHealthRefusals() async throws {
        try await Self.withSidecar { sidecar, invoker in
            try await PluginTestHost.withPlugin(product: "ClusterDeploy", serviceInvoker: invoker) { plugin in
                for id in ["../../../../secrets/kubernetes/db-password?x=", "..", "%2e%2e%2f%2e%2e%2fsecrets", "c1/../../../../secrets"] {
                    let outcome = try await plugin.execute("cluster_health", params: ["cluster_id": .string(id)])
                    guard let (message, retryable) = Self.failure(outcome, id) else { continue }
                    #expect(message.hasPrefix("Cluster health check failed: call to budcluster not made: "), "\(id): \(message)")
                    #expect(!retryable)
                }
                #expect(sidecar.receivedRequests.isEmpty, "nothing sent: \(sidecar.receivedRequests)")
                let healthy = try await plugin.execute("cluster_health", params: ["cluster_id": "c-1", "checks": ["nodes"]])
                guard case .completed = healthy else {
                    Issue.record("expected a completed step, got \(healthy)")
                    return
                }
                #expect(sidecar.receivedRequests.map(\.target) == ["/v1.0/invoke/budcluster/method/cluster/c-1/health?checks=nodes"])
            }
        }
    }
}
