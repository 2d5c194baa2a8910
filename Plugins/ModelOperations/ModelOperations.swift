import BudServices
import PluginKit

/// The Model Operations plugin: adds models to the catalogue through budapp (budmodel extracts
/// them), deletes them, and sizes deployments with budsim simulations.
@c(bp_plugin_entry_v1)
public func modelOperationsPluginEntry(_ host: UnsafeRawPointer?) -> UnsafeRawPointer? {
    PluginExport.entry(host: host, manifest: modelOperationsManifest, handlers: [ModelAdd.self, ModelDelete.self, SimulationRun.self])
}

let modelOperationsManifest = PluginManifest(
    name: "model_operations", version: "1.0.0",
    description: "Adds models through budapp, deletes them, and runs budsim simulations to size deployments.")
