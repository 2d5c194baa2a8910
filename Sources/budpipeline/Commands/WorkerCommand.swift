import ArgumentParser
import Foundation
import HTTPAPI
import Logging

/// `budpipeline worker`: runs executions from the store without serving the API; with a port, it
/// serves `/health`, `/ready` and `/metrics` for probes and scrapers.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run executions from the database (timers, retries, step claims, retention) without the HTTP API.",
        discussion: """
            Several workers (and servers) may share one PostgreSQL database: they split the work and \
            take over the steps of a process that died. With --port (or BUDPIPELINE_WORKER_PORT) the \
            worker serves /health, /ready and /metrics on HOST:PORT, and nothing else; /metrics needs \
            APP_API_TOKEN when it is set, and an address other than loopback needs it too. Stops \
            gracefully on SIGINT or SIGTERM; a stop that takes more than the grace period plus 10 s \
            ends with status 1.
            """
    )

    @OptionGroup var database: DatabaseOptions

    @Flag(help: "Apply pending migrations first (also AUTO_MIGRATE=true).")
    var migrate = false

    @Flag(help: "Refuse to start when any plugin library is refused (also BUDPIPELINE_STRICT_PLUGINS=true).")
    var strictPlugins = false

    @Option(help: "Address to serve the probes and metrics on (default: HOST, else 127.0.0.1).")
    var host: String?

    @Option(help: "Port to serve /health, /ready and /metrics on; 0 picks a free one (default: BUDPIPELINE_WORKER_PORT, else none).")
    var port: Int?

    func run() async throws {
        try database.settings.apply()
        try CLILogging.bootstrap(defaultLevel: .info)
        let environment = ProcessInfo.processInfo.environment
        var api = try APIConfiguration.from(environment: environment)
        let port = try port ?? Self.port(from: environment)
        if let host { api.host = host }
        if let port {
            guard (0...65_535).contains(port) else { throw ValidationError("--port \(port) is not a port number") }
            api.port = port
            _ = try api.checkExposure()
        }
        let assembly = try await RuntimeAssembly.open(
            database: database, migrate: migrate, label: "budpipeline.worker", strictPlugins: strictPlugins)
        guard port != nil else {
            try await assembly.run(command: "worker")
            return
        }
        api.diskPaths = assembly.writtenFolders
        api.maximumConnections = 64
        try await assembly.serve(api, routes: .operations, command: "worker")
    }

    /// `BUDPIPELINE_WORKER_PORT`, when set: a port number (0 picks a free one).
    static func port(from environment: [String: String]) throws -> Int? {
        guard let text = environment["BUDPIPELINE_WORKER_PORT"], !text.isEmpty else { return nil }
        guard let port = Int(text), (0...65_535).contains(port) else {
            throw CLIError("BUDPIPELINE_WORKER_PORT=\(text.prefix(40)) is not a port number")
        }
        return port
    }
}
