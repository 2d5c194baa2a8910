import BudJSON
import BudServicesSimulator
import DaprSidecar
import Testing
import _BudPipelineTestSupport

/// Step params cannot smuggle requests into other Dapr APIs: `budpipeline serve` runs the
/// domain plugins against the test sidecar, which records every request that reaches it, and
/// nothing but the target apps' method paths arrives — whatever ids the steps were given.
@Suite("No request smuggling into services", .serialized)
struct ServiceSmugglingTests {
    /// Steps whose ids try to climb out of the apps' method paths, and one ordinary step.
    static func dag(clusterID: String) -> JSONValue {
        func step(_ id: String, _ action: String, _ params: JSONValue) -> JSONValue {
            ["id": .string(id), "name": .string(id), "action": .string(action), "params": params, "on_failure": "continue"]
        }
        return [
            "name": "smuggling",
            "steps": [
                step("health_secrets", "cluster_health", ["cluster_id": "../../../../secrets/kubernetes/db-password?x="]),
                step("delete_state", "model_delete", ["model_id": "../../../state/statestore/key1?x="]),
                step("delete_encoded", "model_delete", ["model_id": "%2e%2e%2f%2e%2e%2f%2e%2e%2fstate%2fstatestore%2fkey1"]),
                step("delete_double_encoded", "model_delete", ["model_id": "%252e%252e/%252e%252e/state"]),
                step("delete_dots", "model_delete", ["model_id": ".."]),
                step("health_backslash", "cluster_health", ["cluster_id": "..\\..\\..\\secrets"]),
                step("health_query", "cluster_health", ["cluster_id": "c?x=/../../secrets"]),
                step("health_ok", "cluster_health", ["cluster_id": .string(clusterID), "checks": ["nodes"]]),
            ],
        ]
    }

    @Test("cluster_health and model_delete with traversing ids reach nothing but the apps' methods", arguments: TestBackend.available)
    func nothingOutsideTheInvokeAPI(backend: TestBackend) async throws {
        try await DomainPluginTests.withServices(backend) { server, sidecar, _ in
            let executionID = try await DomainPluginTests.start(
                Self.dag(clusterID: SimulatorFixtures.budClusterID), params: [:], on: server)
            _ = try await server.finished(executionID)
            let steps = try await DomainPluginTests.steps(of: executionID, on: server)
            #expect(steps["health_ok"]?["status"] == "COMPLETED" && steps["health_ok"]?["outputs"]?["status"] == "healthy", "\(steps)")
            for (id, step) in steps where id != "health_ok" {
                #expect(step["status"] == "FAILED", "\(id): \(step)")
                let error = step["error_message"]?.stringValue ?? ""
                #expect(error.contains("not made"), "\(id): \(error)")
                #expect(step["retry_count"] == 0, "\(id): a refused call is not retried")
            }

            let received = sidecar.receivedRequests
            #expect(!received.isEmpty, "the ordinary step's call arrived")
            for request in received {
                let allowed = ["/v1.0/invoke/budcluster/method/", "/v1.0/invoke/budapp/method/"].contains { request.target.hasPrefix($0) }
                #expect(allowed, "\(request.method) \(request.target) is outside the target apps' methods")
                let lowered = request.target.lowercased()
                #expect(!lowered.contains("secrets") && !lowered.contains("state") && !lowered.contains("%2e") && !lowered.contains(".."))
            }
            #expect(
                received.map(\.target) == ["/v1.0/invoke/budcluster/method/cluster/\(SimulatorFixtures.budClusterID)/health?checks=nodes"])
        }
    }
}
