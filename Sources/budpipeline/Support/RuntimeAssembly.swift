import ArgumentParser
import BudPipelineHost
import Foundation
import Logging
import PipelineEngine
import Runtime
import ServiceLifecycle
import Storage
import UnixSignals
import WorkMarks

/// `--database-url` and `--migrate`, shared by the commands that use the store.
struct DatabaseOptions: ParsableArguments {
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

    /// Opens the store; an unreachable server or unusable file is one line.
    func open() async throws -> (database: any Database, location: DatabaseLocation) {
        let location = try location()
        let poolSize = ProcessInfo.processInfo.environment["PSQL_POOL_SIZE"].flatMap(Int.init) ?? 10
        do {
            return (try await location.open(poolSize: max(1, min(poolSize, 200))), location)
        } catch {
            throw CLIError("cannot open the database \(location): \(error)")
        }
    }
}

extension DatabaseOptions {
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

    /// Opens the store, checks (or, when asked, migrates) its schema, loads the plugins and builds
    /// the runtime. `migrate` or `AUTO_MIGRATE=true` applies pending migrations.
    static func open(database options: DatabaseOptions, migrate: Bool, label: String) async throws -> RuntimeAssembly {
        let logger = Logger(label: label)
        let environment = ProcessInfo.processInfo.environment
        // A file size limit makes a write fail (the store answers 503), not end the process.
        signal(SIGXFSZ, SIG_IGN)
        var configuration: RuntimeConfiguration
        do {
            configuration = try RuntimeConfiguration.from(environment: environment)
        } catch {
            throw CLIError(error.message)
        }
        let (database, location) = try await options.open()
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
            let autoMigrate = migrate || ["true", "1", "yes"].contains(environment["AUTO_MIGRATE"]?.lowercased() ?? "")
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
            DaprServiceInvoker(endpoint: $0, apiToken: configuration.publishing.daprAPIToken)
        }
        let plugins = await PluginHost.load(configuration: try .forCommandLine(), serviceInvoker: invoker, logger: logger)
        for refusal in plugins.refusals { logger.warning("plugin not loaded", metadata: ["reason": "\(refusal)"]) }
        let runtime = ExecutionRuntime(
            store: PipelineStore(database: database), plugins: plugins, configuration: configuration, logger: logger)
        // Before any work is claimed: count what processes that died were doing.
        await runtime.countInterruptions()
        logger.notice(
            "runtime ready",
            metadata: [
                "database": "\(location)", "worker_id": "\(configuration.workerID)", "plugins": "\(plugins.plugins.map(\.name))",
            ])
        return RuntimeAssembly(database: database, location: location, plugins: plugins, runtime: runtime, logger: logger)
    }

    /// Runs `services` with the runtime's own in one service group until SIGTERM or SIGINT, then
    /// closes the plugins and the store. `command` names the process in the error it throws.
    func run(_ services: [any Service] = [], command: String) async throws {
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services + RuntimeServices.all(for: runtime),
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        do {
            try await group.run()
        } catch {
            await close()
            throw CLIError("\(command) stopped: \(error)")
        }
        await close()
    }

    /// Stops the plugins and closes the store (after the runtime's services have stopped).
    func close() async {
        await plugins.shutdown()
        await database.close()
    }
}
