import Foundation
public import PluginSchema
import Synchronization

/// A plugin that passed every check and whose `init` succeeded.
public final class LoadedPlugin: Sendable {
    public let image: PluginImage
    let services: PluginServices

    private struct Health {
        /// Calls that overran their deadline and have not returned yet.
        var stuckCalls = 0
        var lastOverrun: String?
    }

    private let health = Mutex(Health())

    init(image: PluginImage, services: PluginServices) {
        self.image = image
        self.services = services
    }

    public var name: String { image.manifest.name }

    /// Healthy unless a call overran its deadline and is still running.
    public var healthStatus: PluginHealthStatus {
        health.withLock { health in
            health.stuckCalls == 0
                ? .healthy : .unhealthy(reason: health.lastOverrun ?? "a call overran its timeout", stuckCalls: health.stuckCalls)
        }
    }

    func recordOverrun(_ description: String) {
        health.withLock { health in
            health.stuckCalls += 1
            health.lastOverrun = description
        }
    }

    func recordLateReturn() {
        health.withLock { $0.stuckCalls -= 1 }
    }
}

/// Whether a plugin takes calls.
public enum PluginHealthStatus: Sendable, Equatable {
    case healthy
    /// A call overran its timeout and has not returned; calls to the plugin are refused until it does.
    case unhealthy(reason: String, stuckCalls: Int)

    public var isHealthy: Bool { self == .healthy }
}

/// An action and the plugin that provides it.
public struct PluginAction: Sendable {
    public let metadata: ActionMetadata
    public let plugin: LoadedPlugin
    let index: Int

    var entryPoints: PluginEntryPoints.Action { plugin.image.entryPoints.actions[index] }
}
