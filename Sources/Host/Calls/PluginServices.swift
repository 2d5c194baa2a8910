import BudJSON
import Logging

/// Size limits the host enforces on what plugins write.
public struct PluginLimits: Sendable, Equatable {
    /// Largest result document one call may write.
    public var maximumOutputBytes: Int
    /// Longest error message kept; the rest is cut off.
    public var maximumErrorBytes: Int
    /// Longest log line a plugin writes; longer lines are cut, with a marker.
    public var maximumLogLineBytes: Int

    public init(maximumOutputBytes: Int = 16 << 20, maximumErrorBytes: Int = 64 << 10, maximumLogLineBytes: Int = 8 << 10) {
        self.maximumOutputBytes = maximumOutputBytes
        self.maximumErrorBytes = maximumErrorBytes
        self.maximumLogLineBytes = maximumLogLineBytes
    }
}

/// What the host services need to know about the plugin a call goes to.
final class PluginServices: Sendable {
    let name: String
    let logger: Logger
    let serviceInvoker: (any ServiceInvoker)?
    let configuration: PluginConfigurationStore
    let limits: PluginLimits

    init(
        name: String,
        file: String,
        logger: Logger,
        serviceInvoker: (any ServiceInvoker)?,
        configuration: JSONObject,
        limits: PluginLimits
    ) {
        var logger = logger
        logger[metadataKey: "plugin"] = "\(name)"
        logger[metadataKey: "plugin_file"] = "\(file)"
        self.name = name
        self.logger = logger
        self.serviceInvoker = serviceInvoker
        self.configuration = PluginConfigurationStore(configuration)
        self.limits = limits
    }
}

/// A plugin's configuration, serialized once into memory that stays valid while the plugin is loaded.
///
/// `get_config` hands out pointers into it, so the bytes must never move or be freed while the
/// plugin may still read them: they are written once in `init` and released only in `deinit`, which
/// runs after the plugin is gone (the host keeps its `PluginServices` for the process lifetime).
final class PluginConfigurationStore: @unchecked Sendable {
    private let whole: UnsafeMutableRawBufferPointer
    private let members: [String: UnsafeMutableRawBufferPointer]

    init(_ configuration: JSONObject) {
        whole = Self.store(JSONValue.object(configuration).serialized())
        var members: [String: UnsafeMutableRawBufferPointer] = [:]
        for (key, value) in configuration {
            members[key] = Self.store(value.serialized())
        }
        self.members = members
    }

    deinit {
        whole.deallocate()
        for buffer in members.values { buffer.deallocate() }
    }

    /// The whole configuration for an empty key, otherwise the JSON of that member.
    func value(forKey key: String) -> UnsafeRawBufferPointer? {
        let buffer = key.isEmpty ? whole : members[key]
        return buffer.map { UnsafeRawBufferPointer($0) }
    }

    /// The configuration document, as the plugin's `init` receives it.
    var document: UnsafeRawBufferPointer { UnsafeRawBufferPointer(whole) }

    private static func store(_ bytes: [UInt8]) -> UnsafeMutableRawBufferPointer {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
        return buffer
    }
}
