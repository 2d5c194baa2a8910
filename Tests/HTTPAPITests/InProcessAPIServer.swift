import BudJSON
import BudPipelineHost
import Foundation
import HTTPAPI
import Logging
import PipelineRuntime
import ServiceLifecycle
import Tracing
import _BudPipelineTestSupport

/// The HTTP API served from the test process: the router, HTTP server, runtime and runtime
/// services `budpipeline serve` runs, over a fresh database of one backend and the bundled
/// plugins, answering real HTTP on a loopback port, without starting a process.
///
/// The settings come from the same environment variables the command reads, except the plugins':
/// a plugin library keeps process-wide state (its handlers, its configuration), so every server of
/// the test process shares one plugin host (``SharedPlugins``), loaded once with the defaults and
/// never shut down. What needs a process of its own — plugin settings, signals, exit statuses,
/// the process's log, a crash — is tested with ``APIServerProcess``.
struct InProcessAPIServer: APIServing {
    let database: TestDatabase
    let baseURL: String
    let port: Int
    let appToken: String?
    let runtime: ExecutionRuntime

    /// With `tracing`, the runtime has that tracer, its events are published to the Dapr sidecar
    /// at `tracing.sidecar`, and its plugins are a host of their own whose service calls go
    /// through that sidecar with the tracer too (isolated in plugin processes, shut down afterwards).
    static func with(
        _ backend: TestBackend, environment: [String: String] = [:], tracing: (tracer: any Tracer, sidecar: String)? = nil,
        _ body: (InProcessAPIServer) async throws -> Void
    ) async throws {
        if let key = environment.keys.first(where: { $0.hasPrefix("BUDPIPELINE_PLUGIN") || $0.hasPrefix("DAPR_") }) {
            throw ServerError("\(key) configures the plugins, which the in-process servers share: use APIServerProcess")
        }
        let database = try await TestDatabase.make(backend)
        var logger = Logger(label: "test.server")
        logger.logLevel = .critical
        var configuration = try RuntimeConfiguration.from(environment: environment)
        let plugins: PluginHost
        if let tracing {
            configuration.publishing.daprEndpoint = tracing.sidecar
            let invoker = DaprServiceInvoker(endpoint: tracing.sidecar, apiToken: nil, tracing: ExecutionTracing(tracer: tracing.tracer))
            // In plugin processes of their own: the libraries' process-wide state stays the shared host's.
            var pluginConfiguration = PluginHostConfiguration(pluginDirectories: [Repository.productsDirectory])
            pluginConfiguration.isolation = .process
            pluginConfiguration.processSettings.runner = [Repository.executable, "plugin-process"]
            plugins = await PluginHost.load(configuration: pluginConfiguration, serviceInvoker: invoker, logger: logger)
        } else {
            plugins = await SharedPlugins.host.value
        }
        let runtime = ExecutionRuntime(
            store: database.store, plugins: plugins, configuration: configuration, logger: logger, tracer: tracing?.tracer)
        var api = try APIConfiguration.from(environment: environment)
        api.host = "127.0.0.1"
        api.port = 0
        if api.maximumConnections == nil { api.maximumConnections = 1000 }
        let (bound, listening) = AsyncStream<Int>.makeStream()
        let application = APIServer.application(runtime: runtime, configuration: api, version: "test", logger: logger) { port in
            listening.yield(port)
        }
        // The shared host's retirements are not one server's to run; a service that ends shuts
        // the group down gracefully (cancelling the HTTP server could drop accepted connections).
        let services: [any Service] = [application] + RuntimeServices.all(for: runtime).filter { !($0 is PluginRetirementService) }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services.map {
                    .init(
                        service: $0, successTerminationBehavior: .gracefullyShutdownGroup,
                        failureTerminationBehavior: .gracefullyShutdownGroup)
                },
                gracefulShutdownSignals: [], logger: logger))
        // The group runs beside the test body and is shut down after it, whatever the body did.
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                defer { listening.finish() }
                try await group.run()
            }
            var ports = bound.makeAsyncIterator()
            guard let port = await ports.next() else { throw ServerError("the in-process server did not start") }
            let server = InProcessAPIServer(
                database: database, baseURL: "http://127.0.0.1:\(port)", port: port, appToken: environment["APP_API_TOKEN"],
                runtime: runtime)
            let outcome: Result<Void, any Error>
            do {
                try await body(server)
                outcome = .success(())
            } catch {
                outcome = .failure(error)
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            if tracing != nil { await plugins.shutdown() }
            await database.close()
            try outcome.get()
        }
    }
}

/// The bundled plugins, loaded once for all the in-process servers of the test process.
enum SharedPlugins {
    // Unstructured on purpose: a process-wide value, awaited by every server; loading is bounded
    // by the host's own init timeout.
    static let host = Task<PluginHost, Never> {
        var logger = Logger(label: "test.plugins")
        logger.logLevel = .critical
        var configuration = PluginHostConfiguration(pluginDirectories: [Repository.productsDirectory])
        configuration.processSettings.runner = [Repository.executable, "plugin-process"]
        return await PluginHost.load(configuration: configuration, logger: logger)
    }
}
