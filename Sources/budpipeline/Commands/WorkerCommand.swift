import ArgumentParser
import Logging

/// `budpipeline worker`: runs executions from the store without serving HTTP.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run executions from the database (timers, retries, step claims, retention) without the HTTP API.",
        discussion: """
            Several workers (and servers) may share one PostgreSQL database: they split the work and \
            take over the steps of a process that died. Stops gracefully on SIGINT or SIGTERM; a stop \
            that takes more than the grace period plus 10 s ends with status 1.
            """
    )

    @OptionGroup var database: DatabaseOptions

    @Flag(help: "Apply pending migrations first (also AUTO_MIGRATE=true).")
    var migrate = false

    @Flag(help: "Refuse to start when any plugin library is refused (also BUDPIPELINE_STRICT_PLUGINS=true).")
    var strictPlugins = false

    func run() async throws {
        try database.settings.apply()
        try CLILogging.bootstrap(defaultLevel: .info)
        let assembly = try await RuntimeAssembly.open(
            database: database, migrate: migrate, label: "budpipeline.worker", strictPlugins: strictPlugins)
        try await assembly.run(command: "worker")
    }
}
