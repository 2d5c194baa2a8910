public import BudJSON
import Foundation
public import Logging
internal import PluginABI
public import PluginSchema
import Synchronization

/// Why a call into a plugin did not produce a result.
public struct PluginCallError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// No loaded plugin provides the action.
        case unknownAction
        /// The plugin has a call stuck past its timeout; it takes no calls until that returns.
        case pluginUnhealthy
        /// The call ran past its timeout.
        case timedOut
        /// No plugin thread became free before the timeout.
        case timedOutWaiting
        /// The plugin answered with something the ABI does not allow.
        case protocolViolation
        /// The host is shutting down.
        case shuttingDown
        /// The caller's task was cancelled.
        case cancelled
        /// The plugin asked for the same input to be delivered again later (RETRYABLE_ERROR from on_event).
        case retryRequested
        /// The plugin's process ended (a crash, or a kill after an overrun) while the call was
        /// under way; the process starts again, so trying later may succeed.
        case pluginCrashed
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// Whether trying the same call later may succeed.
    public var isRetryable: Bool {
        kind != .unknownAction && kind != .protocolViolation
    }

    public var description: String { message }
}

/// Loads plugins, keeps the registry of their actions and makes every call into them on a
/// dedicated thread pool, with timeouts.
public final class PluginHost: Sendable {
    public let configuration: PluginHostConfiguration

    /// What is loaded now; a reload replaces it as a whole, so a reader sees one load or the
    /// other, never a mix.
    private struct Registry: Sendable {
        var plugins: [LoadedPlugin]
        var refusals: [PluginRefusal]
        var notes: [String]
        var actionsByType: [String: PluginAction]
        var loadCount: Int
    }

    private let registry: Mutex<Registry>
    /// Plugins a reload replaced or dropped, until they are shut down.
    private let retiring = Mutex<[LoadedPlugin]>([])
    /// Those of them ``runRetirements()`` has not taken up yet.
    private let unscheduled = Mutex<[LoadedPlugin]>([])
    /// Whether ``runRetirements()`` runs (its stream takes one reader at a time).
    private let retirementsRunning = Atomic<Bool>(false)
    private let retirements: AsyncStream<Void>
    private let retirementSignal: AsyncStream<Void>.Continuation
    /// One reload at a time, none once the host shuts down. Taken before ``registry`` when both are.
    private let lifecycle = Mutex((reloading: false, stopped: false))
    private let serviceInvoker: (any ServiceInvoker)?

    /// Plugins that loaded, in load order.
    public var plugins: [LoadedPlugin] { registry.withLock { $0.plugins } }
    /// Libraries that were not loaded, with the reason.
    public var refusals: [PluginRefusal] { registry.withLock { $0.refusals } }
    /// Observations about the search that are not refusals (a missing directory, a duplicate path).
    public var notes: [String] { registry.withLock { $0.notes } }

    /// The plugin ABI version this host implements (`major.minor`): it loads plugins built for
    /// the same major and any minor up to this one (a newer minor loads too, with a notice).
    public static let abiVersion = "\(ABILayout.hostMajor).\(ABILayout.hostMinor)"

    private let pool: PluginThreadPool
    private let logger: Logger

    /// Finds, checks, initialises and registers every plugin the configuration points to.
    /// A library that fails any check is refused with a one-line reason; the others still load.
    public static func load(
        configuration: PluginHostConfiguration,
        serviceInvoker: (any ServiceInvoker)? = nil,
        logger: Logger
    ) async -> PluginHost {
        let pool = PluginThreadPool(threadCount: configuration.threadCount, maximumThreads: configuration.maximumThreadCount)
        var loading = PluginLoading(configuration: configuration, pool: pool, serviceInvoker: serviceInvoker, logger: logger)
        await loading.loadAll()
        return PluginHost(configuration: configuration, loading: loading, pool: pool, serviceInvoker: serviceInvoker, logger: logger)
    }

    private init(
        configuration: PluginHostConfiguration, loading: PluginLoading, pool: PluginThreadPool, serviceInvoker: (any ServiceInvoker)?,
        logger: Logger
    ) {
        self.configuration = configuration
        self.registry = Mutex(Self.registry(of: loading))
        self.pool = pool
        self.serviceInvoker = serviceInvoker
        self.logger = logger
        (retirements, retirementSignal) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    private static func registry(of loading: PluginLoading) -> Registry {
        Registry(
            plugins: loading.plugins, refusals: loading.refusals, notes: loading.notes, actionsByType: loading.actions,
            loadCount: loading.loadCount)
    }

    /// The action registered under `type`.
    public func action(_ type: String) -> PluginAction? {
        registry.withLock { $0.actionsByType[type] }
    }

    /// Every registered action, sorted by type.
    public var actions: [PluginAction] {
        registry.withLock { $0.actionsByType }.values.sorted { $0.metadata.type < $1.metadata.type }
    }

    // MARK: Reloading

    /// Why a reload did not start: another one runs, or the host is shutting down.
    public struct ReloadRefused: Error, Sendable, CustomStringConvertible {
        public let isShuttingDown: Bool

        public var description: String {
            isShuttingDown ? "the plugin host is shutting down" : "a reload of the plugins is under way already"
        }
    }

    /// Looks at the plugin directories again and loads what changed (see ``PluginReload``): new
    /// calls go to what is loaded when they start, calls under way finish where they started, and
    /// the plugins replaced or dropped are shut down once idle by ``runRetirements()``. A reload
    /// that finishes after the host began to shut down shuts down what it loaded instead.
    public func reload() async throws(ReloadRefused) -> PluginReload {
        let refusal = lifecycle.withLock { state -> ReloadRefused? in
            if state.stopped { return ReloadRefused(isShuttingDown: true) }
            if state.reloading { return ReloadRefused(isShuttingDown: false) }
            state.reloading = true
            return nil
        }
        if let refusal { throw refusal }
        defer { lifecycle.withLock { $0.reloading = false } }
        let (current, loadCount) = registry.withLock { ($0.plugins, $0.loadCount) }
        var loading = PluginLoading(
            configuration: configuration, pool: pool, serviceInvoker: serviceInvoker, logger: logger, loadCount: loadCount)
        let report = await loading.reload(current: current)
        let swapped = lifecycle.withLock { state -> Bool in
            guard !state.stopped else { return false }
            registry.withLock { $0 = Self.registry(of: loading) }
            return true
        }
        guard swapped else {
            let loaded = loading.plugins.filter { plugin in !current.contains { $0 === plugin } }
            for plugin in loaded { await shutDown(plugin, timeout: configuration.shutdownTimeout) }
            throw ReloadRefused(isShuttingDown: true)
        }
        if !report.retired.isEmpty {
            retiring.withLock { $0 += report.retired }
            unscheduled.withLock { $0 += report.retired }
            retirementSignal.yield()
        }
        logger.notice(
            "plugins reloaded",
            metadata: [
                "unchanged": "\(report.unchanged)", "added": "\(report.added)", "replaced": "\(report.replaced.map(\.name))",
                "kept": "\(report.kept)", "removed": "\(report.removed)", "refused": "\(report.refused.count)",
            ])
        return report
    }

    /// Shuts down the plugins a reload retired, each once its calls under way have returned (or
    /// after the call timeout, whichever is first), until the task is cancelled; run it as a
    /// service beside the runtime. Plugins still waiting when it ends are shut down by
    /// ``shutdown()``. It runs once at a time: a call while another runs returns at once.
    public func runRetirements() async {
        guard retirementsRunning.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        defer { retirementsRunning.store(false, ordering: .releasing) }
        await withDiscardingTaskGroup { group in
            for await _ in retirements {
                let due = unscheduled.withLock { unscheduled in
                    defer { unscheduled = [] }
                    return unscheduled
                }
                for plugin in due {
                    group.addTask { await self.retire(plugin) }
                }
            }
        }
    }

    /// Ends the retirement loop (the host's service stops).
    public func stopRetirements() {
        retirementSignal.finish()
    }

    private func retire(_ plugin: LoadedPlugin) async {
        let deadline = ContinuousClock.now + configuration.callTimeout
        while !plugin.isIdle, ContinuousClock.now < deadline {
            do { try await Task.sleep(for: .milliseconds(50)) } catch { return }
        }
        let mine = retiring.withLock { retiring -> Bool in
            guard let index = retiring.firstIndex(where: { $0 === plugin }) else { return false }
            retiring.remove(at: index)
            return true
        }
        guard mine else { return }
        await shutDown(plugin, timeout: configuration.shutdownTimeout)
        logger.notice("retired plugin shut down", metadata: ["plugin": "\(plugin.name)", "version": "\(plugin.image.manifest.version)"])
    }

    /// Runs one attempt of a step. Plugin-reported failures are a ``StepOutcome/failed(message:retryable:outputs:)``;
    /// a timeout, an unknown action or an unusable answer throws.
    public func execute(
        _ request: ExecuteRequest,
        context: PluginCallContext = PluginCallContext(),
        timeout: Duration? = nil
    ) async throws(PluginCallError) -> StepOutcome {
        let action = try registered(request.action)
        let result = try await call(
            action,
            kind: .execute,
            input: request.json.serialized(),
            context: context,
            timeout: timeout
        )
        do {
            return try StepOutcome(status: result.status, output: result.output, errorMessage: result.errorMessage)
        } catch {
            throw violation(action, .execute, error)
        }
    }

    /// Lets the action of an awaiting step interpret an event. Throws a retryable error when the
    /// plugin asks for the event to be delivered again later.
    public func handleEvent(
        _ request: EventRequest,
        context: PluginCallContext = PluginCallContext(),
        timeout: Duration? = nil
    ) async throws(PluginCallError) -> EventOutcome {
        let action = try registered(request.action)
        guard action.functions.onEvent else { return .ignore }
        let result = try await call(action, kind: .onEvent, input: request.json.serialized(), context: context, timeout: timeout)
        if result.status == .retryableError {
            throw PluginCallError(
                .retryRequested,
                "action '\(action.metadata.type)' asked for the event to be delivered again: \(result.errorMessage)"
            )
        }
        do {
            return try EventOutcome(status: result.status, output: result.output, errorMessage: result.errorMessage)
        } catch {
            throw violation(action, .onEvent, error)
        }
    }

    /// The action's own parameter checks (`validate_params`); empty when it has none.
    public func validateParams(action type: String, params: JSONObject, timeout: Duration? = nil) async throws(PluginCallError) -> [String]
    {
        let action = try registered(type)
        guard action.functions.validateParams else { return [] }
        let result = try await call(
            action,
            kind: .validateParams,
            input: ParamsValidation.request(params: params).serialized(),
            context: PluginCallContext(),
            timeout: timeout
        )
        do {
            return try ParamsValidation.errors(status: result.status, output: result.output, errorMessage: result.errorMessage)
        } catch {
            throw violation(action, .validateParams, error)
        }
    }

    /// Tells the action that a step it executed or awaits is abandoned. Returns the plugin's error
    /// message when it reported one.
    @discardableResult
    public func cleanup(
        _ request: CleanupRequest,
        context: PluginCallContext = PluginCallContext(),
        timeout: Duration? = nil
    ) async throws(PluginCallError) -> String? {
        let action = try registered(request.action)
        guard action.functions.cleanup else { return nil }
        let result = try await call(action, kind: .cleanup, input: request.json.serialized(), context: context, timeout: timeout)
        return result.status == .ok || result.status == .unsupported ? nil : "\(result.status): \(result.errorMessage)"
    }

    /// Runs `execute` on the calling thread, without the thread pool, timeout or health checks:
    /// the bare in-process cost of a call, for the benchmarks.
    package func executeOnCurrentThread(_ request: ExecuteRequest) throws(PluginCallError) -> StepOutcome {
        let action = try registered(request.action)
        let result = rawExecuteOnCurrentThread(action: action, input: request.json.serialized())
        do {
            return try StepOutcome(status: result.status, output: result.output, errorMessage: result.errorMessage)
        } catch {
            throw violation(action, .execute, error)
        }
    }

    /// Runs `execute` with an already serialized request on the calling thread and returns what the
    /// plugin wrote, uninterpreted: the ABI crossing alone, for the benchmarks. Only for plugins
    /// loaded in this process.
    package func rawExecuteOnCurrentThread(action: PluginAction, input: [UInt8]) -> RawCallResult {
        guard let entryPoints = action.entryPoints else {
            return RawCallResult(status: .unsupported, output: [], errorMessage: "the plugin runs in a process of its own")
        }
        let call = PluginCall(plugin: action.plugin.services, kind: .execute, action: action.metadata.type, context: PluginCallContext())
        return call.perform(entryPoints, kind: .execute, input: input)
    }

    /// The functions of an action `budpipeline plugins call` may call, by their ABI names.
    public static let callableFunctions = ["execute", "on_event", "validate_params", "cleanup"]

    /// Calls `function` (one of ``callableFunctions``) of `action` with `request`, the document as
    /// the server would send it, and returns what the plugin wrote, uninterpreted (`budpipeline
    /// plugins call`). An action without the function answers UNSUPPORTED.
    public func call(
        function: String, action type: String, request: [UInt8], timeout: Duration? = nil
    ) async throws(PluginCallError) -> RawCallResult {
        let action = try registered(type)
        let kind: PluginCallKind
        switch function {
        case "execute": kind = .execute
        case "on_event" where action.functions.onEvent: kind = .onEvent
        case "validate_params" where action.functions.validateParams: kind = .validateParams
        case "cleanup" where action.functions.cleanup: kind = .cleanup
        case "on_event", "validate_params", "cleanup":
            return RawCallResult(status: .unsupported, output: [], errorMessage: "action '\(type)' has no \(function)")
        default:
            let known = Self.callableFunctions.joined(separator: ", ")
            throw PluginCallError(.protocolViolation, "no plugin function '\(function)'; one of \(known)")
        }
        return try await call(action, kind: kind, input: request, context: PluginCallContext(), timeout: timeout)
    }

    /// Makes one call and returns what the plugin wrote, uninterpreted: what a plugin process
    /// sends back to the server, which interprets it.
    func rawCall(
        type: String, kind: PluginCallKind, input: [UInt8], context: PluginCallContext, timeout: Duration
    ) async throws(PluginCallError) -> RawCallResult {
        try await call(try registered(type), kind: kind, input: input, context: context, timeout: timeout)
    }

    /// Calls every plugin's `shutdown` and stops the thread pool; returns within about
    /// ``PluginHostConfiguration/shutdownTimeout`` however the plugins behave. Plugin processes
    /// shut down all at once (each calls its plugin's `shutdown` and exits, or is ended at the
    /// timeout); the plugins in the server, meanwhile, one after another in reverse load order,
    /// each with what is left of the timeout.
    public func shutdown() async {
        lifecycle.withLock { $0.stopped = true }
        stopRetirements()
        let grace = configuration.shutdownTimeout
        let deadline = ContinuousClock.now + grace
        let all =
            plugins
            + retiring.withLock { retiring in
                defer { retiring = [] }
                return retiring
            }
        await withTaskGroup(of: Void.self) { group in
            for plugin in all where plugin.process != nil {
                group.addTask { await self.shutDown(plugin, timeout: grace) }
            }
            for plugin in all.reversed() where plugin.process == nil {
                let left = deadline - ContinuousClock.now
                guard left > .zero else {
                    logger.warning("plugin shutdown skipped: no time left", metadata: ["plugin": "\(plugin.name)"])
                    continue
                }
                await shutDown(plugin, timeout: left)
            }
        }
        pool.shutdown()
    }

    /// Calls the plugin's `shutdown` (in its process, which then exits), once in its life.
    private func shutDown(_ plugin: LoadedPlugin, timeout: Duration) async {
        guard plugin.beginShutdown() else { return }
        if let process = plugin.process {
            await process.shutdown(timeout: timeout)
            return
        }
        guard let shutdown = plugin.image.entryPoints?.shutdown, plugin.healthStatus.isHealthy else { return }
        let call = PluginCall(plugin: plugin.services, kind: .shutdown, action: nil, context: PluginCallContext())
        let ticket = PluginCallTicket<Void>(
            serialKey: nil,
            timeout: timeout,
            work: { _ = call.withHandle { handle in shutdown(handle) } },
            events: events(for: plugin, call: call, what: "shutdown", timeout: timeout)
        )
        do {
            try await ticket.value(on: pool, shutDownError: PluginCallError(.shuttingDown, "shutting down"))
        } catch {
            logger.warning("plugin shutdown failed", metadata: ["plugin": "\(plugin.name)", "error": "\(error)"])
        }
    }

    // MARK: Calls

    private func registered(_ type: String) throws(PluginCallError) -> PluginAction {
        guard let action = action(type) else {
            throw PluginCallError(.unknownAction, "no loaded plugin provides action '\(type)'")
        }
        return action
    }

    private func call(
        _ action: PluginAction,
        kind: PluginCallKind,
        input: [UInt8],
        context: PluginCallContext,
        timeout: Duration?
    ) async throws(PluginCallError) -> RawCallResult {
        let plugin = action.plugin
        let timeout = timeout ?? configuration.callTimeout
        plugin.callStarted()
        defer { plugin.callEnded() }
        if let process = plugin.process {
            return try await process.call(
                kind: kind, actionIndex: action.index, action: action.metadata.type, input: input, context: context, timeout: timeout)
        }
        if case .unhealthy(let reason, _) = plugin.healthStatus {
            throw PluginCallError(.pluginUnhealthy, "plugin '\(plugin.name)' is unhealthy: \(reason)")
        }
        guard action.entryPoints != nil else {
            throw PluginCallError(.protocolViolation, "plugin '\(plugin.name)' has no functions in this process")
        }
        let call = PluginCall(plugin: plugin.services, kind: kind, action: action.metadata.type, context: context)
        let ticket = PluginCallTicket<RawCallResult>(
            serialKey: plugin.image.isThreadSafe ? nil : ObjectIdentifier(plugin),
            timeout: timeout,
            work: {
                guard let entryPoints = action.entryPoints else { return call.result(status: .fatalError) }
                return call.perform(entryPoints, kind: kind, input: input)
            },
            events: events(for: plugin, call: call, what: "\(kind.rawValue) of action '\(action.metadata.type)'", timeout: timeout)
        )
        do {
            return try await ticket.value(
                on: pool,
                shutDownError: PluginCallError(.shuttingDown, "the plugin host is shutting down")
            )
        } catch let error as PluginCallError {
            throw error
        } catch {
            throw PluginCallError(.cancelled, "the call to action '\(action.metadata.type)' was cancelled")
        }
    }

    private func events(
        for plugin: LoadedPlugin,
        call: PluginCall,
        what: String,
        timeout: Duration
    ) -> PluginCallEvents {
        let logger = logger
        let overrun = "\(what) did not return within \(Self.format(timeout))"
        return .init(
            timeoutError: { running in
                running
                    ? PluginCallError(.timedOut, "plugin '\(plugin.name)': \(overrun); the plugin is marked unhealthy until it returns")
                    : PluginCallError(
                        .timedOutWaiting, "plugin '\(plugin.name)': \(what) found no free plugin thread within \(Self.format(timeout))")
            },
            overran: {
                plugin.recordOverrun(overrun)
                logger.error(
                    "plugin call overran its timeout; plugin marked unhealthy", metadata: ["plugin": "\(plugin.name)", "call": "\(what)"])
            },
            returnedLate: {
                plugin.recordLateReturn()
                logger.notice("plugin call returned after its timeout", metadata: ["plugin": "\(plugin.name)", "call": "\(what)"])
            },
            cancelRunning: { call.abandon() }
        )
    }

    private func violation(_ action: PluginAction, _ kind: PluginCallKind, _ error: SchemaError) -> PluginCallError {
        PluginCallError(
            .protocolViolation,
            "plugin '\(action.plugin.name)' action '\(action.metadata.type)' \(kind.rawValue) \(error.message)"
        )
    }

    static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        guard abs(seconds) < 1_000_000_000_000 else { return "\(seconds)s" }
        let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000)s" : "\(Double(milliseconds) / 1000)s"
    }
}
