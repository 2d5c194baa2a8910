import ArgumentParser
import Foundation
import HTTPAPI
import Logging
import Runtime

/// `budpipeline serve`: the HTTP API and the runtime in one process.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the HTTP API and run executions.",
        discussion: """
            Listens on HOST:PORT (default 127.0.0.1:8010). Runs executions from the database like \
            `budpipeline worker`, so several servers and workers may share one PostgreSQL database. \
            Stops gracefully on SIGINT or SIGTERM: the server stops accepting requests, calls in \
            flight finish or are left to their leases.
            """
    )

    @OptionGroup var database: DatabaseOptions

    @Flag(help: "Apply pending migrations first (also AUTO_MIGRATE=true).")
    var migrate = false

    @Option(help: "Address to listen on (default: HOST, else 127.0.0.1).")
    var host: String?

    @Option(help: "Port to listen on; 0 picks a free one (default: PORT, else 8010).")
    var port: Int?

    func run() async throws {
        try CLILogging.bootstrap(defaultLevel: .info)
        var api = try APIConfiguration.from(environment: ProcessInfo.processInfo.environment)
        if let host { api.host = host }
        if let port {
            guard (0...65_535).contains(port) else { throw ValidationError("--port \(port) is not a port number") }
            api.port = port
        }
        let assembly = try await RuntimeAssembly.open(database: database, migrate: migrate, label: "budpipeline.serve")
        let logger = assembly.logger
        let host = api.host
        let application = APIServer.application(
            runtime: assembly.runtime, configuration: api, version: BudPipelineCommand.configuration.version, logger: logger
        ) { port in
            logger.notice("serving HTTP", metadata: ["address": "\(host):\(port)"])
        }
        try await assembly.run([application], command: "server")
    }
}
