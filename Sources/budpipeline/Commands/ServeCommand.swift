import ArgumentParser
import Foundation
import HTTPAPI
import Logging
import PipelineRuntime
import ServiceLifecycle

/// `budpipeline serve`: the HTTP API and the runtime in one process.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the HTTP API and run executions.",
        discussion: """
            Listens on HOST:PORT (default 127.0.0.1:8010). Runs executions from the database like \
            `budpipeline worker`, so several servers and workers may share one PostgreSQL database. \
            Stops gracefully on SIGINT or SIGTERM: the server stops accepting requests, calls in \
            flight finish or are left to their leases; a stop that takes more than the grace \
            period plus 10 s ends with status 1. An address that cannot be listened on is one \
            line and status 1.
            """
    )

    @OptionGroup var database: DatabaseOptions

    @Flag(help: "Apply pending migrations first (also AUTO_MIGRATE=true).")
    var migrate = false

    @Flag(help: "Refuse to start when any plugin library is refused (also BUDPIPELINE_STRICT_PLUGINS=true).")
    var strictPlugins = false

    @Option(help: "Address to listen on (default: HOST, else 127.0.0.1).")
    var host: String?

    @Option(help: "Port to listen on; 0 picks a free one (default: PORT, else 8010).")
    var port: Int?

    func run() async throws {
        try database.settings.apply()
        try CLILogging.bootstrap(defaultLevel: .info)
        var api = try APIConfiguration.from(environment: ProcessInfo.processInfo.environment)
        if let host { api.host = host }
        if let port {
            guard (0...65_535).contains(port) else { throw ValidationError("--port \(port) is not a port number") }
            api.port = port
        }
        let exposed = try api.checkExposure()
        let assembly = try await RuntimeAssembly.open(
            database: database, migrate: migrate, label: "budpipeline.serve", strictPlugins: strictPlugins)
        let logger = assembly.logger
        api.diskPaths = assembly.writtenFolders
        if exposed {
            logger.critical(
                "SERVING WITHOUT AUTHENTICATION on an address others can reach: every caller acts as the service (BUDPIPELINE_ALLOW_UNAUTHENTICATED=true, no APP_API_TOKEN)",
                metadata: ["address": "\(api.host):\(api.port)"])
        }
        if let maximum = api.maximumConnections {
            if maximum > assembly.descriptorLimit - APIConfiguration.descriptorReserve {
                logger.warning(
                    "BUDPIPELINE_MAX_CONNECTIONS leaves fewer than \(APIConfiguration.descriptorReserve) descriptors for the database and plugins",
                    metadata: ["max_connections": "\(maximum)", "descriptor_limit": "\(assembly.descriptorLimit)"])
            }
        } else {
            api.maximumConnections = APIConfiguration.connectionLimit(descriptorLimit: assembly.descriptorLimit)
        }
        logger.notice(
            "HTTP limits",
            metadata: [
                "descriptor_limit": "\(assembly.descriptorLimit)", "max_connections": "\(api.maximumConnections ?? 0)",
                "idle_timeout_seconds": "\(api.idleTimeout.components.seconds)",
                "request_timeout_seconds": "\(api.requestTimeout.components.seconds)", "max_body_bytes": "\(api.maximumBodySize)",
            ])
        try await assembly.serve(api, routes: .all, command: "server")
    }
}
