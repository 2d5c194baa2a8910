import ArgumentParser
import BudPipelineHost
import CoreMetrics
import Foundation
import HTTPAPI
import Logging
import MetricsExport
import PipelineEngine
import PipelineRuntime
import ServiceLifecycle
import Storage
import Synchronization
import WorkMarks

/// `--database-url` and `--migrate`, shared by the commands that use the store.
struct DatabaseOptions: ParsableArguments {
    /// `--config FILE`: applied by the command before it reads any setting.
    @OptionGroup var settings: ConfigurationOptions

    @Option(
        name: .customLong("database-url"),
        help: "sqlite:///path or postgresql://… (default: DATABASE_URL, else data/budpipeline.sqlite under BUDPIPELINE_DATA_DIR).")
    var databaseURL: String?

    /// Where the store is, from the option or the environment.
    func location() throws -> DatabaseLocation {
        do {
            if let databaseURL { return try DatabaseLocation.parse(databaseURL) }
            return try DatabaseLocation.from(environment: ProcessInfo.processInfo.environment)
        } catch {
            throw CLIError(error.message)
        }
    }

    /// Opens the store; an unreachable server or unusable file is one line. With `metrics`, the
    /// store's pools record their queue waits into it.
    func open(metrics: PrometheusExporter? = nil) async throws -> (database: any Database, location: DatabaseLocation) {
        let location = try location()
        let poolSize = try Self.poolSize(from: ProcessInfo.processInfo.environment)
        do {
            return (try await location.open(poolSize: poolSize, metrics: metrics?.factory), location)
        } catch {
            throw CLIError("cannot open the database \(location): \(error)")
        }
    }
}

extension DatabaseOptions {
    /// `PSQL_POOL_SIZE`, the PostgreSQL connections a process keeps (1…200, default 10): a value
    /// that is not a whole number in range is an error, never a silent default.
    static func poolSize(from environment: [String: String]) throws -> Int {
        guard let text = environment["PSQL_POOL_SIZE"] else { return 10 }
        guard let size = Int(text.trimmingCharacters(in: .whitespaces)), (1...200).contains(size) else {
            throw CLIError("PSQL_POOL_SIZE must be a whole number from 1 to 200, not '\(text.prefix(40))'")
        }
        return size
    }

    /// Runs `body` with the opened store and closes it afterwards.
    func withDatabase<Result>(_ body: (any Database, DatabaseLocation) async throws -> Result) async throws -> Result {
        let (database, location) = try await open()
        do {
            let result = try await body(database, location)
            await database.close()
            return result
        } catch {
            await database.close()
            throw error
        }
    }
}

/// Everything a process that runs executions needs: the store (with its schema checked), the
/// plugins and the runtime.
struct RuntimeAssembly {
    let database: any Database
    let location: DatabaseLocation
    let plugins: PluginHost
    let runtime: ExecutionRuntime
    let logger: Logger
    /// How many descriptors the process may open (its soft limit, raised to the hard one).
    let descriptorLimit: Int
    /// The process's metrics (served by `serve` at `/metrics`); `nil` with `BUDPIPELINE_METRICS=false`.
    let metrics: PrometheusExporter?
    /// The process's tracer and its exporter (off unless `BUDPIPELINE_TRACING=true`).
    let tracing: TracingBackend

    /// Raises the descriptor limit, opens the store, checks (or, when asked, migrates) its
    /// schema, loads the plugins and builds the runtime. `migrate` or `AUTO_MIGRATE=true`
    /// applies pending migrations.
    ///
    /// With `strictPlugins` (or `BUDPIPELINE_STRICT_PLUGINS=true`), a library that is refused ends
    /// the start with one line naming it and why.
    static func open(database options: DatabaseOptions, migrate: Bool, label: String, strictPlugins: Bool = false) async throws
        -> RuntimeAssembly
    {
        let logger = Logger(label: label)
        let descriptorLimit = DescriptorLimit.raiseToHardLimit()
        let environment = ProcessInfo.processInfo.environment
        // A file size limit makes a write fail (the store answers 503), not end the process.
        signal(SIGXFSZ, SIG_IGN)
        var configuration: RuntimeConfiguration
        do {
            configuration = try RuntimeConfiguration.from(environment: environment)
        } catch {
            throw CLIError(error.message)
        }
        configuration.clusterSignals = try EnvironmentFlag.value("BUDPIPELINE_CLUSTER_SIGNALS", in: environment) ?? true
        let metrics = try Self.metricsEnabled(environment) ? PrometheusExporter() : nil
        let tracing = try TracingBackend.make(environment, logger: logger)
        for name in ConfigCommand.Check.unknownVariables(in: environment) {
            logger.warning("\(name) is not a setting of budpipeline; it is ignored (see docs/operations.md)")
        }
        let (database, location) = try await options.open(metrics: metrics)
        // Work marks let the next process know what this one was doing should it die (crash loops).
        let marks = location.workMarksDirectory(environment: environment)
        do {
            try WorkMarks.open(directory: marks, worker: configuration.workerID)
            configuration.workMarksDirectory = marks
        } catch {
            logger.warning(
                "work marks are off: a step that kills the process may be run again after every restart",
                metadata: ["error": "\(error)"])
        }
        do {
            let migrator = Migrator(database: database)
            let autoMigrate = try migrate || EnvironmentFlag.value("AUTO_MIGRATE", in: environment) == true
            if autoMigrate {
                let applied = try await migrator.migrate()
                if !applied.isEmpty { logger.info("applied migrations", metadata: ["versions": "\(applied)", "database": "\(location)"]) }
            }
            try await migrator.requireCurrentSchema()
        } catch {
            await database.close()
            throw CLIError("\(location): \(error)")
        }
        // Plugins call other services through the Dapr sidecar, when there is one.
        let invoker = configuration.publishing.daprEndpoint.map {
            DaprServiceInvoker(
                endpoint: $0, apiToken: configuration.publishing.daprAPIToken, tracing: ExecutionTracing(tracer: tracing.tracer))
        }
        let plugins = await PluginHost.load(configuration: try .forCommandLine(), serviceInvoker: invoker, logger: logger)
        for refusal in plugins.refusals { logger.warning("plugin not loaded", metadata: ["reason": "\(refusal)"]) }
        for note in plugins.notes { logger.notice("plugins", metadata: ["note": "\(note)"]) }
        let strict = try strictPlugins || EnvironmentFlag.value("BUDPIPELINE_STRICT_PLUGINS", in: environment) == true
        if strict, let refusal = plugins.refusals.first {
            await plugins.shutdown()
            await database.close()
            let more = plugins.refusals.count > 1 ? " (and \(plugins.refusals.count - 1) more)" : ""
            throw CLIError("plugin refused with --strict-plugins: \(refusal)\(more)")
        }
        let runtime = ExecutionRuntime(
            store: PipelineStore(database: database, metrics: metrics?.factory ?? NOOPMetricsHandler.instance), plugins: plugins,
            configuration: configuration, logger: logger, metrics: metrics?.factory ?? NOOPMetricsHandler.instance,
            tracer: tracing.tracer)
        logger.notice(
            "runtime ready",
            metadata: [
                "database": "\(location)", "worker_id": "\(configuration.workerID)", "plugins": "\(plugins.plugins.map(\.name))",
                "descriptor_limit": "\(descriptorLimit)", "tracing": "\(tracing.tracer != nil)",
            ])
        return RuntimeAssembly(
            database: database, location: location, plugins: plugins, runtime: runtime, logger: logger, descriptorLimit: descriptorLimit,
            metrics: metrics, tracing: tracing)
    }

    /// The folders the process writes to: the SQLite file's and the work marks'.
    var writtenFolders: [String] {
        var folders: [String] = []
        if case .sqlite(let path) = location { folders.append((path as NSString).deletingLastPathComponent) }
        if let marks = runtime.configuration.workMarksDirectory { folders.append(marks) }
        return folders
    }

    /// `BUDPIPELINE_METRICS` (default true): whether the process records metrics at all.
    static func metricsEnabled(_ environment: [String: String]) throws -> Bool {
        try EnvironmentFlag.value("BUDPIPELINE_METRICS", in: environment) ?? true
    }

    /// Runs `services` and the runtime's own in one service group until SIGTERM or SIGINT (or
    /// until one of them ends), then closes the plugins and the store. `command` names the
    /// process in the errors it throws; `describe` may turn an error that stopped the group into
    /// the one line to throw instead of `<command> stopped: <error>`.
    ///
    /// With `runtimeStart`, the runtime's services are not started with the group but by
    /// ``DeferredServices/start()`` (once the HTTP server listens): a process that fails to
    /// start never claims work.
    ///
    /// A stop is bounded: the group's graceful shutdown may take the runtime's grace period plus
    /// 5 s before the group cancels its services, and from the first signal, or the first service
    /// to end, the process exits with status 1 once the grace period plus 10 s have passed,
    /// whatever it still waits for (see ``ShutdownWatchdog``).
    func run(
        _ services: [ServiceGroupConfiguration.ServiceConfiguration] = [], runtimeStart: DeferredServices? = nil, command: String,
        describe: (any Error) -> String? = { _ in nil }
    ) async throws {
        let grace = runtime.configuration.shutdownGracePeriod
        let watchdog = ShutdownWatchdog(command: command, deadline: grace + .seconds(10), logger: logger)
        let watched = { (configurations: [ServiceGroupConfiguration.ServiceConfiguration]) in
            configurations.map { configuration in
                var configuration = configuration
                configuration.service = WatchedService(service: configuration.service, watchdog: watchdog)
                return configuration
            }
        }
        let runtimeServices = watched(RuntimeServices.all(for: runtime).map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) })
        // The exporter comes first, so that the group shuts it down last: the spans of the others'
        // shutdown are sent too.
        let exporter = tracing.service.map { [ServiceGroupConfiguration.ServiceConfiguration(service: $0)] } ?? []
        var configuration = ServiceGroupConfiguration(
            services: watched(exporter + services) + (runtimeStart == nil ? runtimeServices : []), gracefulShutdownSignals: [],
            logger: logger)
        configuration.maximumGracefulShutdownDuration = grace + .seconds(5)
        // The group cancels its services only after one of them ended or its graceful shutdown
        // ran out, both after the watchdog was armed: the watchdog's exit comes first, and this
        // bound (a crash) is a last resort only.
        configuration.maximumCancellationDuration = grace + .seconds(30)
        let group = ServiceGroup(configuration: configuration)
        runtimeStart?.prepare(group: group, services: runtimeServices)
        await watchdog.watchSignals([SIGTERM, SIGINT]) { await group.triggerGracefulShutdown() }
        let reloads = PluginReloadSignal(plugins: plugins, logger: logger)
        await reloads.watch()
        do {
            try await group.run()
        } catch {
            await close()
            throw CLIError(describe(error) ?? "\(command) stopped: \(error)")
        }
        await close()
    }

    /// Serves `routes` over HTTP with `configuration` beside the runtime's services, which start
    /// once the server listens (a process that cannot listen never claims work), until SIGTERM or
    /// SIGINT. An address that cannot be listened on is one line.
    func serve(_ configuration: APIConfiguration, routes: APIServer.Routes, command: String) async throws {
        var configuration = configuration
        configuration.descriptorLimit = descriptorLimit
        let logger = self.logger
        let (host, configuredPort) = (configuration.host, configuration.port)
        let servesConsole = routes == .all && configuration.consoleEnabled
        let runtimeStart = DeferredServices()
        let application = APIServer.application(
            runtime: runtime, configuration: configuration, version: BudPipelineCommand.configuration.version, logger: logger,
            metrics: metrics, routes: routes
        ) { port in
            await runtimeStart.start()
            var metadata: Logger.Metadata = ["address": "\(host):\(port)"]
            if servesConsole { metadata["console"] = "http://\(host):\(port)/ui" }
            logger.notice("serving HTTP", metadata: metadata)
        }
        try await run(
            [
                .init(
                    service: application, successTerminationBehavior: .gracefullyShutdownGroup,
                    failureTerminationBehavior: .gracefullyShutdownGroup)
            ],
            runtimeStart: runtimeStart, command: command
        ) { error in
            APIServer.listenFailure(error, host: host, port: configuredPort)
        }
    }

    /// Stops the plugins and closes the store (after the runtime's services have stopped).
    func close() async {
        await plugins.shutdown()
        await database.close()
    }
}

/// Services to start in a running group later, once: the runtime's, started by `serve` once its
/// HTTP server listens.
final class DeferredServices: Sendable {
    private let pending = Mutex<(group: ServiceGroup, services: [ServiceGroupConfiguration.ServiceConfiguration])?>(nil)

    /// Remembers the group and the services ``start()`` will add to it.
    func prepare(group: ServiceGroup, services: [ServiceGroupConfiguration.ServiceConfiguration]) {
        pending.withLock { $0 = (group, services) }
    }

    /// Adds the services to the group, unless it is shutting down already; only the first call
    /// does anything.
    func start() async {
        guard
            let (group, services) = pending.withLock({ pending in
                defer { pending = nil }
                return pending
            })
        else { return }
        for service in services { await group.addServiceUnlessShutdown(service) }
    }
}
