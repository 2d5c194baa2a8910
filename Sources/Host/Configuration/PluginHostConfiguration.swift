public import BudJSON
import Foundation
import PluginSchema

/// A configuration value that cannot be used; the message names the variable or file.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// How the plugin host finds, admits and calls plugins.
public struct PluginHostConfiguration: Sendable {
    /// Directories searched for plugin libraries, in order.
    public var pluginDirectories: [String]
    /// Single libraries loaded after those in ``pluginDirectories``.
    public var pluginFiles: [String]
    /// When set, only libraries named here are loaded: a file name (`libGreeter.so`), its stem
    /// (`Greeter`) or a full path. Checked before a library is opened.
    public var allowList: Set<String>?
    /// Time one plugin call may take unless the caller gives another.
    public var callTimeout: Duration
    /// Time loading a library (its entry function) and its `init` may take.
    public var initTimeout: Duration
    /// Time all plugins' `shutdown` together may take when the server stops; kept well below
    /// the server's own stop deadline.
    public var shutdownTimeout: Duration
    /// Threads that run plugin calls.
    public var threadCount: Int
    /// Upper bound on threads, including replacements for calls stuck past their timeout.
    public var maximumThreadCount: Int
    /// Each plugin's configuration object, by plugin name.
    public var pluginSettings: [String: JSONObject]
    public var limits: PluginLimits
    /// Action types no plugin may register (the built-in actions).
    public var reservedActionTypes: Set<String>
    /// Where plugins run unless their configuration says otherwise (`isolation`).
    public var isolation: PluginIsolation
    /// How plugin processes are started and kept.
    public var processSettings: PluginProcessSettings

    public init(
        pluginDirectories: [String],
        pluginFiles: [String] = [],
        allowList: Set<String>? = nil,
        callTimeout: Duration = .seconds(300),
        initTimeout: Duration = .seconds(30),
        threadCount: Int = PluginHostConfiguration.defaultThreadCount,
        maximumThreadCount: Int? = nil,
        pluginSettings: [String: JSONObject] = [:],
        limits: PluginLimits = PluginLimits(),
        reservedActionTypes: Set<String> = []
    ) {
        self.pluginDirectories = pluginDirectories
        self.pluginFiles = pluginFiles
        self.allowList = allowList
        self.callTimeout = callTimeout
        self.initTimeout = initTimeout
        self.shutdownTimeout = .seconds(5)
        self.threadCount = threadCount
        self.maximumThreadCount = maximumThreadCount ?? threadCount * 4
        self.pluginSettings = pluginSettings
        self.limits = limits
        self.reservedActionTypes = reservedActionTypes
        self.isolation = .inProcess
        self.processSettings = PluginProcessSettings()
    }

    /// The isolation the configuration of plugin `name` asks for (its `isolation` member), else
    /// the default.
    public func isolation(of name: String) -> PluginIsolation {
        pluginSettings[name]?["isolation"]?.stringValue.flatMap(PluginIsolation.init(rawValue:)) ?? isolation
    }

    /// Whether some library may have to be opened in a plugin process.
    var mayIsolate: Bool {
        isolation == .process || pluginSettings.values.contains { $0["isolation"]?.stringValue == PluginIsolation.process.rawValue }
    }

    /// Twice the number of cores, at least 4: plugin calls mostly wait on other services.
    public static let defaultThreadCount = max(4, ProcessInfo.processInfo.activeProcessorCount * 2)

    /// Reads the configuration from environment variables:
    ///
    /// - `BUDPIPELINE_PLUGIN_DIRS`: directories separated by `:`; default: `<executable dir>/../lib/budpipeline/plugins`
    ///   and the executable's own directory (where `swift build` puts the bundled plugins).
    /// - `BUDPIPELINE_PLUGIN_ALLOWLIST`: library names separated by `,`.
    /// - `BUDPIPELINE_PLUGIN_CONFIG`: a JSON file `{"<plugin name>": {...}, ...}`.
    /// - `BUDPIPELINE_PLUGIN_CALL_TIMEOUT_SECONDS` (default 300), `BUDPIPELINE_PLUGIN_THREADS`.
    /// - `BUDPIPELINE_MAX_LOG_LINE_BYTES` (8 KiB): longer plugin log lines are cut.
    public static func fromEnvironment(
        _ environment: [String: String]? = nil,
        executableDirectory: String? = defaultExecutableDirectory
    ) throws(ConfigurationError) -> PluginHostConfiguration {
        let environment = environment ?? ProcessInfo.processInfo.environment
        var configuration = PluginHostConfiguration(pluginDirectories: [])
        if let directories = environment["BUDPIPELINE_PLUGIN_DIRS"], !directories.isEmpty {
            configuration.pluginDirectories = directories.split(separator: ":").map(String.init)
        } else if let executableDirectory {
            configuration.pluginDirectories = defaultDirectories(executableDirectory: executableDirectory)
        }
        if let allowList = environment["BUDPIPELINE_PLUGIN_ALLOWLIST"] {
            configuration.allowList = Set(
                allowList.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            )
        }
        if let file = environment["BUDPIPELINE_PLUGIN_CONFIG"], !file.isEmpty {
            configuration.pluginSettings = try readPluginSettings(file)
        }
        if let timeout = try positiveNumber("BUDPIPELINE_PLUGIN_CALL_TIMEOUT_SECONDS", environment) {
            guard timeout <= Double(DurationLimits.maximumSeconds) else {
                throw ConfigurationError(
                    "BUDPIPELINE_PLUGIN_CALL_TIMEOUT_SECONDS must be at most \(DurationLimits.maximumSeconds), got \(timeout)")
            }
            configuration.callTimeout = .milliseconds(Int64(timeout * 1000))
        }
        if let bytes = try positiveNumber("BUDPIPELINE_MAX_LOG_LINE_BYTES", environment) {
            guard let count = Int(exactly: bytes), (64...(1 << 20)).contains(count) else {
                throw ConfigurationError("BUDPIPELINE_MAX_LOG_LINE_BYTES must be a whole number from 64 to 1048576, got \(bytes)")
            }
            configuration.limits.maximumLogLineBytes = count
        }
        if let isolation = environment["BUDPIPELINE_PLUGIN_ISOLATION"], !isolation.isEmpty {
            guard let mode = PluginIsolation(rawValue: isolation) else {
                throw ConfigurationError("BUDPIPELINE_PLUGIN_ISOLATION must be in-process or process, got '\(isolation)'")
            }
            configuration.isolation = mode
        }
        for (name, settings) in configuration.pluginSettings {
            if let value = settings["isolation"], value.stringValue.flatMap(PluginIsolation.init(rawValue:)) == nil {
                throw ConfigurationError(
                    "BUDPIPELINE_PLUGIN_CONFIG: isolation of plugin '\(name)' must be \"in-process\" or \"process\", got \(value)")
            }
        }
        if let users = environment["BUDPIPELINE_PLUGIN_PROCESS_USERS"], !users.isEmpty {
            guard let choice = PluginProcessUsers(users) else {
                throw ConfigurationError(
                    "BUDPIPELINE_PLUGIN_PROCESS_USERS must be auto, server or the first of a range of unused user ids (1000 to "
                        + "\(PluginProcessUsers.highestFirstID)), got '\(users)'")
            }
            configuration.processSettings.users = choice
        }
        if let megabytes = try positiveNumber("BUDPIPELINE_PLUGIN_PROCESS_MEMORY_MB", environment) {
            guard let count = Int(exactly: megabytes), count >= 64, count <= 1 << 20 else {
                throw ConfigurationError("BUDPIPELINE_PLUGIN_PROCESS_MEMORY_MB must be a whole number from 64 to 1048576, got \(megabytes)")
            }
            configuration.processSettings.memoryLimitBytes = count << 20
        }
        if let files = try positiveNumber("BUDPIPELINE_PLUGIN_PROCESS_OPEN_FILES", environment) {
            guard let count = Int(exactly: files), count >= 16, count <= 1 << 20 else {
                throw ConfigurationError("BUDPIPELINE_PLUGIN_PROCESS_OPEN_FILES must be a whole number from 16 to 1048576, got \(files)")
            }
            configuration.processSettings.openFilesLimit = count
        }
        if let seconds = try positiveNumber("BUDPIPELINE_PLUGIN_PROCESS_CPU_SECONDS", environment) {
            guard let count = Int(exactly: seconds), count <= 1 << 30 else {
                throw ConfigurationError("BUDPIPELINE_PLUGIN_PROCESS_CPU_SECONDS must be a whole number of seconds, got \(seconds)")
            }
            configuration.processSettings.cpuSecondsLimit = count
        }
        if let crashes = try positiveNumber("BUDPIPELINE_PLUGIN_QUARANTINE_CRASHES", environment) {
            guard let count = Int(exactly: crashes), count <= 1000 else {
                throw ConfigurationError("BUDPIPELINE_PLUGIN_QUARANTINE_CRASHES must be a whole number from 1 to 1000, got \(crashes)")
            }
            configuration.processSettings.quarantineAfterCrashes = count
        }
        if let threads = try positiveNumber("BUDPIPELINE_PLUGIN_THREADS", environment) {
            guard let count = Int(exactly: threads), count <= 1024 else {
                throw ConfigurationError("BUDPIPELINE_PLUGIN_THREADS must be a whole number from 1 to 1024, got \(threads)")
            }
            configuration.threadCount = count
            configuration.maximumThreadCount = count * 4
        }
        return configuration
    }

    /// The directory of the running executable.
    public static var defaultExecutableDirectory: String? {
        Bundle.main.executableURL?.resolvingSymlinksInPath().deletingLastPathComponent().path
    }

    static func defaultDirectories(executableDirectory: String) -> [String] {
        let installed = URL(fileURLWithPath: executableDirectory).appendingPathComponent("../lib/budpipeline/plugins")
            .standardizedFileURL.path
        return [installed, executableDirectory].filter { FileManager.default.fileExists(atPath: $0) }
    }

    private static func positiveNumber(_ name: String, _ environment: [String: String]) throws(ConfigurationError) -> Double? {
        guard let text = environment[name], !text.isEmpty else { return nil }
        guard let value = Double(text), value > 0, value.isFinite else {
            throw ConfigurationError("\(name) must be a positive number, got '\(text)'")
        }
        return value
    }

    private static func readPluginSettings(_ file: String) throws(ConfigurationError) -> [String: JSONObject] {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ConfigurationError("BUDPIPELINE_PLUGIN_CONFIG: cannot read \(file)")
        }
        let document: JSONValue
        do {
            document = try JSONValue(parsing: [UInt8](data))
        } catch {
            throw ConfigurationError("BUDPIPELINE_PLUGIN_CONFIG: \(file) is not valid JSON: \(error)")
        }
        guard case .object(let plugins) = document else {
            throw ConfigurationError("BUDPIPELINE_PLUGIN_CONFIG: \(file) must hold an object keyed by plugin name")
        }
        var settings: [String: JSONObject] = [:]
        for (name, value) in plugins {
            guard case .object(let object) = value else {
                throw ConfigurationError("BUDPIPELINE_PLUGIN_CONFIG: the configuration of plugin '\(name)' in \(file) must be an object")
            }
            settings[name] = object
        }
        return settings
    }
}
