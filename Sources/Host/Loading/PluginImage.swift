internal import PluginABI
public import PluginSchema

/// A plugin library whose descriptor passed every check, before `init` ran.
public struct PluginImage: Sendable {
    /// Path of the shared library.
    public let file: String
    public let manifest: PluginManifest
    /// ABI version the plugin was built against (`major.minor`).
    public let abiMajor: UInt32
    public let abiMinor: UInt32
    /// Whether the plugin declared BP_PLUGIN_THREAD_SAFE.
    public let isThreadSafe: Bool
    /// The actions, in descriptor order.
    public let actions: [ActionMetadata]
    /// Which optional functions each action has, in descriptor order.
    public let functions: [ActionFunctions]

    /// The library's functions in this process; `nil` when it is open in a plugin process.
    let entryPoints: PluginEntryPoints?

    init(
        file: String, manifest: PluginManifest, abiMajor: UInt32, abiMinor: UInt32, isThreadSafe: Bool, actions: [ActionMetadata],
        functions: [ActionFunctions], entryPoints: PluginEntryPoints?
    ) {
        self.file = file
        self.manifest = manifest
        self.abiMajor = abiMajor
        self.abiMinor = abiMinor
        self.isThreadSafe = isThreadSafe
        self.actions = actions
        self.functions = functions
        self.entryPoints = entryPoints
    }

    /// `major.minor`, e.g. `1.0`.
    public var abiVersion: String { "\(abiMajor).\(abiMinor)" }

    /// The same library as seen from another process: no entry points.
    var withoutEntryPoints: PluginImage {
        PluginImage(
            file: file, manifest: manifest, abiMajor: abiMajor, abiMinor: abiMinor, isThreadSafe: isThreadSafe, actions: actions,
            functions: functions, entryPoints: nil)
    }
}

/// The optional functions an action implements besides `execute`.
public struct ActionFunctions: Sendable, Equatable {
    public var onEvent: Bool
    public var validateParams: Bool
    public var cleanup: Bool

    public init(onEvent: Bool, validateParams: Bool, cleanup: Bool) {
        self.onEvent = onEvent
        self.validateParams = validateParams
        self.cleanup = cleanup
    }
}

/// The functions of a validated descriptor.
///
/// `@unchecked Sendable` is safe: every pointer here refers to code or data inside a library that is
/// never unloaded (the host does not `dlclose` plugins), the values are copied out of the
/// descriptor once and never mutated, and the threading rules of calling them are enforced by the
/// thread pool according to the plugin's BP_PLUGIN_THREAD_SAFE flag.
struct PluginEntryPoints: @unchecked Sendable {
    struct Action {
        var context: UnsafeMutableRawPointer?
        var execute: bp_action_fn
        var onEvent: bp_action_fn?
        var validateParams: bp_action_fn?
        var cleanup: bp_action_fn?

        func function(for kind: PluginCallKind) -> bp_action_fn? {
            switch kind {
            case .execute: execute
            case .onEvent: onEvent
            case .validateParams: validateParams
            case .cleanup: cleanup
            case .initialize, .shutdown: nil
            }
        }
    }

    var initialize: (@convention(c) (OpaquePointer?, bp_bytes) -> bp_status)?
    var shutdown: (@convention(c) (OpaquePointer?) -> Void)?
    var actions: [Action]
}
