import BudServices
import PluginKit

/// The Cluster Deploy plugin: deploys models to clusters through budapp, deletes and scales the
/// deployments, and checks cluster health through budcluster.
@c(bp_plugin_entry_v1)
public func clusterDeployPluginEntry(_ host: UnsafeRawPointer?) -> UnsafeRawPointer? {
    PluginExport.entry(
        host: host, manifest: clusterDeployManifest,
        handlers: [DeploymentCreate.self, DeploymentDelete.self, DeploymentScale.self, ClusterHealth.self])
}

let clusterDeployManifest = PluginManifest(
    name: "cluster_deploy", version: "1.0.0",
    description: "Deploys models to clusters through budapp, deletes and scales deployments, checks cluster health.")

/// The `user_id` budapp calls carry; a clear failure when the execution names no user and no
/// system user is configured.
func actingUser(_ settings: BudServiceSettings, _ request: ExecuteRequest, outputs: JSONObject) throws(StepFailure) -> String {
    guard let user = settings.actingUser(of: request) else {
        throw StepFailure(
            "no user to act as on budapp: run the pipeline with a user_id or configure system_user_id", outputs: outputs)
    }
    return user
}
