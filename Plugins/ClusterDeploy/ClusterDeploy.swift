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
