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
    /// The plugin process serving the plugin's calls; `nil` when it runs in the server.
    let process: PluginProcess?
    /// The library file as it was when it was loaded: a reload loads it again only if it changed.
    let fileIdentity: FileIdentity?
    /// Calls made through the host that have not returned to their caller yet.
    private let callsUnderWay = Atomic<Int>(0)
    /// Whether its `shutdown` was called (it is called once, at retirement or at the host's end).
    private let shutDown = Atomic<Bool>(false)

    init(image: PluginImage, services: PluginServices, process: PluginProcess? = nil, fileIdentity: FileIdentity? = nil) {
        self.image = image
        self.services = services
        self.process = process
        self.fileIdentity = fileIdentity
    }

    func callStarted() { callsUnderWay.add(1, ordering: .relaxed) }
    func callEnded() { callsUnderWay.subtract(1, ordering: .relaxed) }

    /// No call is under way: none through the host, and in the server no thread still inside the
    /// plugin after a timeout.
    var isIdle: Bool {
        callsUnderWay.load(ordering: .relaxed) == 0 && (process != nil || health.withLock { $0.stuckCalls == 0 })
    }

    /// True the first time only: the caller then calls the plugin's `shutdown`.
    func beginShutdown() -> Bool {
        !shutDown.exchange(true, ordering: .relaxed)
    }

    public var name: String { image.manifest.name }

    /// Where the plugin's code runs.
    public var isolation: PluginIsolation { process == nil ? .inProcess : .process }

    /// For a plugin in a process of its own: its process id, restarts and crashes so far.
    public var processStatus: PluginProcessStatus? { process?.status }

    /// Whether the plugin takes calls now: always in-process; in a plugin process, once it is up
    /// (not while it starts again after a crash, nor when quarantined).
    public var takesCalls: Bool { process?.isReady ?? true }

    /// Healthy unless a call overran its deadline and is still running (in the server), or the
    /// plugin's process crashed so often that it was quarantined.
    public var healthStatus: PluginHealthStatus {
        if let process {
            if let reason = process.quarantineReason { return .unhealthy(reason: reason, stuckCalls: 0) }
            return .healthy
        }
        return health.withLock { health in
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

    /// The action's functions in this process; `nil` when its plugin runs in a process of its own.
    var entryPoints: PluginEntryPoints.Action? { plugin.image.entryPoints?.actions[index] }

    /// Which optional functions the action implements.
    var functions: ActionFunctions { plugin.image.functions[index] }

    /// Whether the action checks parameters itself (`validate_params`).
    public var validatesParams: Bool { functions.validateParams }
}

/// Where a plugin's code runs (`BUDPIPELINE_PLUGIN_ISOLATION`, or `isolation` in the plugin's
/// configuration).
public enum PluginIsolation: String, Sendable, Equatable, CaseIterable {
    /// Loaded into the server: the fastest calls; a crash ends the server.
    case inProcess = "in-process"
    /// Loaded into a plugin process of its own: a crash ends only the calls under way.
    case process
}

/// What identifies the contents of a library file cheaply: device, inode, size and modification
/// time. A file replaced (a new inode) or rewritten in place (size or time) is a new one.
struct FileIdentity: Sendable, Equatable {
    let device: UInt64
    let inode: UInt64
    let size: Int64
    let modifiedSeconds: Int
    let modifiedNanoseconds: Int

    init?(path: String) {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        device = UInt64(status.st_dev)
        inode = UInt64(status.st_ino)
        size = Int64(status.st_size)
        modifiedSeconds = Int(status.st_mtim.tv_sec)
        modifiedNanoseconds = Int(status.st_mtim.tv_nsec)
    }
}
