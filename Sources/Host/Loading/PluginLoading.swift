public import BudJSON
import Foundation
import Logging
internal import PluginABI
import PluginSchema

/// The load procedure: discovery, allow-list, checks, uniqueness, `init`, registration.
struct PluginLoading {
    let configuration: PluginHostConfiguration
    let pool: PluginThreadPool
    let serviceInvoker: (any ServiceInvoker)?
    let logger: Logger

    private(set) var plugins: [LoadedPlugin] = []
    private(set) var refusals: [PluginRefusal] = []
    private(set) var notes: [String] = []
    private(set) var actions: [String: PluginAction] = [:]
    private var pluginNames: [String: String] = [:]
    /// Libraries loaded or tried so far in this host's life: the next one's number, which picks
    /// its plugin process's user (``PluginProcessUsers``).
    private(set) var loadCount: Int

    init(
        configuration: PluginHostConfiguration, pool: PluginThreadPool, serviceInvoker: (any ServiceInvoker)?, logger: Logger,
        loadCount: Int = 0
    ) {
        self.configuration = configuration
        self.pool = pool
        self.serviceInvoker = serviceInvoker
        self.logger = logger
        self.loadCount = loadCount
    }

    /// Loads every library of the configuration. All are opened at once (an entry function or a
    /// plugin process that hangs delays only its own library), admitted one after another in
    /// search order (the first library with a name or an action type wins, as when loading one by
    /// one, and no refused library's code runs in the server), then initialised at once: a slow
    /// `init` delays start-up by its own time, not by the sum of all.
    mutating func loadAll() async {
        let files = candidateFiles()
        let first = loadCount
        loadCount += files.count
        let stage = self
        var outcomes = await Self.concurrently(files.indices) { offset in
            await stage.attempt { () async throws(PluginRefusal) in try await stage.openStage(files[offset], index: first + offset) }
        }
        var claims = Claims()
        for offset in files.indices {
            guard case .success(let opened) = outcomes[offset] else { continue }
            do {
                try admit(opened.image, claims: claims)
                claims.claim(opened.image)
            } catch {
                opened.process?.stop()
                outcomes[offset] = .failure(error)
            }
        }
        let admitted = outcomes
        let finished = await Self.concurrently(files.indices) { offset -> Result<LoadedPlugin, PluginRefusal> in
            switch admitted[offset] {
            case .failure(let error): return .failure(error)
            case .success(let opened):
                return await stage.attempt { () async throws(PluginRefusal) in try await stage.finishStage(opened) }
            }
        }
        for offset in files.indices { record(finished[offset], file: files[offset]) }
    }

    /// A library opened, not yet admitted or initialised: in the server, or in its plugin process.
    private struct Opened: Sendable {
        let file: String
        let image: PluginImage
        let process: PluginProcess?
        let identity: FileIdentity?
    }

    /// Names and action types taken by libraries admitted earlier in the same load.
    private struct Claims {
        var names: [String: String] = [:]
        var types: [String: String] = [:]

        mutating func claim(_ image: PluginImage) {
            names[image.manifest.name] = image.file
            for metadata in image.actions { types[metadata.type] = image.file }
        }
    }

    private func attempt<Value: Sendable>(
        _ body: () async throws(PluginRefusal) -> Value
    ) async -> Result<Value, PluginRefusal> {
        do {
            return .success(try await body())
        } catch {
            return .failure(error)
        }
    }

    /// Runs `body` for every index at once; the results in index order.
    private static func concurrently<Value: Sendable>(
        _ indices: Range<Int>, _ body: @escaping @Sendable (Int) async -> Value
    ) async -> [Value] {
        await withTaskGroup(of: (Int, Value).self) { group in
            for index in indices { group.addTask { (index, await body(index)) } }
            var values: [Int: Value] = [:]
            for await (index, value) in group { values[index] = value }
            return indices.compactMap { values[$0] }
        }
    }

    /// Opens `file` where it may run: in a plugin process when any plugin may be isolated (its
    /// name, which decides, is known only once it is open, and its code must not have run in the
    /// server by then), else in the server.
    private func openStage(_ file: String, index: Int, fresh: Bool = false) async throws(PluginRefusal) -> Opened {
        // Taken before the library is opened: a file replaced meanwhile looks changed next time.
        let identity = FileIdentity(path: file)
        if let allowList = configuration.allowList, !Self.isAllowed(file, by: allowList) {
            throw PluginRefusal(file: file, reason: "not in BUDPIPELINE_PLUGIN_ALLOWLIST")
        }
        if configuration.mayIsolate {
            let process = newProcess(file, index: index)
            return Opened(
                file: file, image: try await process.open(timeout: configuration.initTimeout), process: process, identity: identity)
        }
        return Opened(file: file, image: try await open(file, fresh: fresh), process: nil, identity: identity)
    }

    /// Initialises an admitted library: its plugin process gets its configuration, or it is opened
    /// in the server (when its configuration keeps it there) and its `init` runs.
    private func finishStage(_ opened: Opened, fresh: Bool = false) async throws(PluginRefusal) -> LoadedPlugin {
        let image = opened.image
        if let process = opened.process {
            if configuration.isolation(of: image.manifest.name) == .process {
                let settings = configuration.pluginSettings[image.manifest.name] ?? [:]
                try await process.configure(name: image.manifest.name, configuration: settings, timeout: configuration.initTimeout)
                return LoadedPlugin(
                    image: image, services: services(for: image, file: opened.file), process: process, fileIdentity: opened.identity)
            }
            process.stop()
            let inServer = try await open(opened.file, fresh: fresh)
            guard inServer.manifest == image.manifest, inServer.actions.map(\.type) == image.actions.map(\.type) else {
                throw PluginRefusal(file: opened.file, reason: "the library changed while it was loaded")
            }
            return try await initialized(inServer, file: opened.file, identity: opened.identity)
        }
        return try await initialized(image, file: opened.file, identity: opened.identity)
    }

    private func initialized(_ image: PluginImage, file: String, identity: FileIdentity?) async throws(PluginRefusal) -> LoadedPlugin {
        let plugin = LoadedPlugin(image: image, services: services(for: image, file: file), fileIdentity: identity)
        try await initialize(plugin)
        return plugin
    }

    private func newProcess(_ file: String, index: Int) -> PluginProcess {
        // As many calls at once as the plugin threads would run in the server.
        var settings = configuration.processSettings
        settings.callChannels = min(configuration.threadCount, 32)
        settings.userID = settings.userID ?? settings.users.userID(forPluginAt: index)
        return PluginProcess(file: file, settings: settings, limits: configuration.limits, serviceInvoker: serviceInvoker, logger: logger)
    }

    /// Loads `file` and registers it, or records its refusal; the plugin, if it loaded.
    @discardableResult
    private mutating func loadAndRegister(_ file: String, fresh: Bool = false) async -> LoadedPlugin? {
        let index = loadCount
        loadCount += 1
        let attempt = await attempt { () async throws(PluginRefusal) in try await load(file, index: index, fresh: fresh) }
        return record(attempt, file: file)
    }

    /// Registers a plugin that loaded, or records the refusal; logs either. The plugin, if any.
    @discardableResult
    private mutating func record(_ outcome: Result<LoadedPlugin, PluginRefusal>, file: String) -> LoadedPlugin? {
        switch outcome {
        case .success(let plugin):
            register(plugin)
            logger.info(
                "plugin loaded",
                metadata: [
                    "plugin": "\(plugin.name)", "version": "\(plugin.image.manifest.version)", "file": "\(file)",
                    "actions": "\(plugin.image.actions.map(\.type).joined(separator: ","))",
                ]
            )
            return plugin
        case .failure(let error):
            refusals.append(error)
            logger.warning("plugin refused", metadata: ["file": "\(file)", "reason": "\(error.reason)"])
            return nil
        }
    }

    /// Looks at the plugin directories again, with `current` loaded: a library whose file did not
    /// change stays as it is; one that changed is loaded again (if the new one is refused, the
    /// loaded one stays); a new file is loaded; a plugin whose file is gone is dropped. The
    /// plugins to retire (replaced or dropped) are in the report; the caller retires them once idle.
    mutating func reload(current: [LoadedPlugin]) async -> PluginReload {
        let files = candidateFiles()
        let wanted = Set(files)
        var report = PluginReload()
        var byFile: [String: LoadedPlugin] = [:]
        for plugin in current where byFile[plugin.image.file] == nil { byFile[plugin.image.file] = plugin }
        var changed: [(file: String, old: LoadedPlugin)] = []
        var added: [String] = []
        for file in files {
            guard let old = byFile[file] else {
                added.append(file)
                continue
            }
            if let identity = old.fileIdentity, identity == FileIdentity(path: file), (try? admit(old.image)) != nil {
                register(old)
                report.unchanged.append(old.name)
            } else {
                changed.append((file, old))
            }
        }
        for (file, old) in changed {
            if let new = await loadAndRegister(file, fresh: true) {
                report.replaced.append(.init(name: new.name, from: old.image.manifest.version, to: new.image.manifest.version))
                report.retired.append(old)
            } else if (try? admit(old.image)) != nil {
                register(old)
                report.kept.append(old.name)
            } else {
                report.retired.append(old)
                report.removed.append(old.name)
            }
        }
        for file in added {
            if let new = await loadAndRegister(file) { report.added.append(new.name) }
        }
        for plugin in current where !wanted.contains(plugin.image.file) {
            report.retired.append(plugin)
            report.removed.append(plugin.name)
        }
        report.refused = refusals
        report.notes = notes
        return report
    }

    /// Shared libraries in the configured directories, in directory order then by name; the same
    /// file reached twice is listed once.
    private mutating func candidateFiles() -> [String] {
        var files: [String] = []
        var seen: Set<String> = []
        let suffixes = [".so", ".dylib"]
        for directory in configuration.pluginDirectories {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
                notes.append("plugin directory \(directory) does not exist or cannot be read")
                continue
            }
            for name in names.sorted() where suffixes.contains(where: name.hasSuffix) {
                let path = URL(fileURLWithPath: directory).appendingPathComponent(name).path
                let real = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
                guard seen.insert(real).inserted else {
                    notes.append("\(path) is the same library as one already considered; skipped")
                    continue
                }
                files.append(path)
            }
        }
        for file in configuration.pluginFiles {
            let real = URL(fileURLWithPath: file).resolvingSymlinksInPath().path
            if seen.insert(real).inserted { files.append(file) }
        }
        return files
    }

    /// Opens, admits and initialises one library (a reload: `fresh` opens an in-server library
    /// from a copy, see ``PluginLoader/open(_:fresh:)``).
    private func load(_ file: String, index: Int, fresh: Bool) async throws(PluginRefusal) -> LoadedPlugin {
        let opened = try await openStage(file, index: index, fresh: fresh)
        do {
            try admit(opened.image)
        } catch {
            opened.process?.stop()
            throw error
        }
        return try await finishStage(opened, fresh: fresh)
    }

    /// Refuses a library whose name or action types another library or a built-in action has
    /// (or, within one load, one admitted before it: `claims`).
    private func admit(_ image: PluginImage, claims: Claims = Claims()) throws(PluginRefusal) {
        let file = image.file
        func refuse(_ reason: String) -> PluginRefusal { PluginRefusal(file: file, reason: reason) }
        if let other = pluginNames[image.manifest.name] ?? claims.names[image.manifest.name] {
            throw refuse("plugin name '\(image.manifest.name)' is already used by \(other)")
        }
        for metadata in image.actions {
            if let other = claims.types[metadata.type] {
                throw refuse("action type '\(metadata.type)' is already provided by \(other)")
            }
        }
        for metadata in image.actions {
            if configuration.reservedActionTypes.contains(metadata.type) {
                throw refuse("action type '\(metadata.type)' is reserved for a built-in action")
            }
            if let existing = actions[metadata.type] {
                throw refuse("action type '\(metadata.type)' is already provided by \(existing.plugin.image.file)")
            }
        }
    }

    private func services(for image: PluginImage, file: String) -> PluginServices {
        PluginServices(
            name: image.manifest.name,
            file: file,
            logger: logger,
            serviceInvoker: serviceInvoker,
            configuration: configuration.pluginSettings[image.manifest.name] ?? [:],
            limits: configuration.limits
        )
    }

    /// Opens the library on a plugin thread: its constructors and entry function are plugin code.
    private func open(_ file: String, fresh: Bool) async throws(PluginRefusal) -> PluginImage {
        let ticket = PluginCallTicket<Result<PluginImage, PluginRefusal>>(
            serialKey: nil,
            timeout: configuration.initTimeout,
            work: { Result { () throws(PluginRefusal) in try PluginLoader.open(file, fresh: fresh) } },
            events: PluginCallEvents(
                timeoutError: { _ in
                    PluginRefusal(file: file, reason: "loading did not finish within \(PluginHost.format(configuration.initTimeout))")
                },
                overran: {},
                returnedLate: {},
                cancelRunning: {}
            )
        )
        do {
            return try await ticket.value(on: pool, shutDownError: PluginRefusal(file: file, reason: "the host is shutting down")).get()
        } catch let refusal as PluginRefusal {
            throw refusal
        } catch {
            throw PluginRefusal(file: file, reason: "loading was cancelled")
        }
    }

    private func initialize(_ plugin: LoadedPlugin) async throws(PluginRefusal) {
        guard plugin.image.entryPoints?.initialize != nil else { return }
        let call = PluginCall(plugin: plugin.services, kind: .initialize, action: nil, context: PluginCallContext())
        let timeout = configuration.initTimeout
        let ticket = PluginCallTicket<RawCallResult>(
            serialKey: nil,
            timeout: timeout,
            work: {
                guard let initialize = plugin.image.entryPoints?.initialize else { return call.result(status: .ok) }
                let document = plugin.services.configuration.document
                let status = call.withHandle { handle in
                    initialize(handle, bp_bytes(ptr: document.baseAddress?.assumingMemoryBound(to: UInt8.self), len: document.count))
                }
                return call.result(status: status.map { CallStatus(rawValue: $0) } ?? .fatalError)
            },
            events: PluginCallEvents(
                timeoutError: { _ in
                    PluginRefusal(file: plugin.image.file, reason: "init did not return within \(PluginHost.format(timeout))")
                },
                overran: { call.abandon() },
                returnedLate: {},
                cancelRunning: { call.abandon() }
            )
        )
        let result: RawCallResult
        do {
            result = try await ticket.value(
                on: pool,
                shutDownError: PluginRefusal(file: plugin.image.file, reason: "the host is shutting down")
            )
        } catch let refusal as PluginRefusal {
            throw refusal
        } catch {
            throw PluginRefusal(file: plugin.image.file, reason: "init was cancelled")
        }
        guard result.status == .ok else {
            let message = result.errorMessage.isEmpty ? "no message" : result.errorMessage
            throw PluginRefusal(file: plugin.image.file, reason: "init failed (\(result.status)): \(message)")
        }
    }

    private mutating func register(_ plugin: LoadedPlugin) {
        if plugin.image.abiMinor > ABILayout.hostMinor {
            let note =
                "plugin '\(plugin.name)' was built for ABI \(plugin.image.abiVersion), newer than this host's \(PluginHost.abiVersion): "
                + "host services added after \(PluginHost.abiVersion) are not available to it"
            notes.append(note)
            logger.notice("plugin built for a newer ABI minor", metadata: ["plugin": "\(plugin.name)", "note": "\(note)"])
        }
        plugins.append(plugin)
        pluginNames[plugin.name] = plugin.image.file
        for (index, metadata) in plugin.image.actions.enumerated() {
            actions[metadata.type] = PluginAction(metadata: metadata, plugin: plugin, index: index)
        }
    }

    static func isAllowed(_ file: String, by allowList: Set<String>) -> Bool {
        let url = URL(fileURLWithPath: file)
        let name = url.lastPathComponent
        var stem = url.deletingPathExtension().lastPathComponent
        if stem.hasPrefix("lib") { stem.removeFirst(3) }
        return allowList.contains(file) || allowList.contains(name) || allowList.contains(stem)
    }
}

/// What a reload of the plugins did (`POST /plugins/reload`, SIGHUP; see docs/plugins.md,
/// "Reloading plugins").
public struct PluginReload: Sendable {
    public struct Replacement: Sendable, Equatable {
        public let name: String
        public let from: String
        public let to: String

        public init(name: String, from: String, to: String) {
            self.name = name
            self.from = from
            self.to = to
        }
    }

    /// Plugins whose file did not change: untouched.
    public var unchanged: [String] = []
    /// Plugins loaded from a new file.
    public var added: [String] = []
    /// Plugins whose file changed and whose new version loaded: new calls go to it.
    public var replaced: [Replacement] = []
    /// Plugins whose file changed but whose new version was refused: the loaded version stays.
    public var kept: [String] = []
    /// Plugins whose file is gone (or whose name is now another file's): no new calls reach them.
    public var removed: [String] = []
    /// Libraries refused, with the reason.
    public var refused: [PluginRefusal] = []
    public var notes: [String] = []
    /// The plugins no longer registered; each is shut down once its calls under way returned.
    var retired: [LoadedPlugin] = []

    public var json: JSONValue {
        [
            "unchanged": .array(unchanged.map(JSONValue.string)), "added": .array(added.map(JSONValue.string)),
            "replaced": .array(replaced.map { ["name": .string($0.name), "from": .string($0.from), "to": .string($0.to)] }),
            "kept": .array(kept.map(JSONValue.string)), "removed": .array(removed.map(JSONValue.string)),
            "refused": .array(refused.map { ["file": .string($0.file), "reason": .string($0.reason)] }),
            "notes": .array(notes.map(JSONValue.string)),
        ]
    }
}
