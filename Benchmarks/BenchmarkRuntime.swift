import ArgumentParser
import BudPipelineHost
import CoreMetrics
import Logging
import MetricsExport
import PipelineRuntime
import ServiceLifecycle
import Storage

/// A runtime with its services running, over a fresh benchmark database and the given plugins.
struct BenchmarkRuntime {
    let database: any Database
    /// Where the database is, for the report.
    let location: String
    let store: PipelineStore
    let plugins: PluginHost
    let runtime: ExecutionRuntime
    private let group: ServiceGroup
    private let services: Task<Void, any Error>

    /// Opens and migrates the database, loads `pluginFiles` (each must load) and starts the services.
    /// With `metrics`, everything records into a Prometheus registry as `budpipeline serve` does.
    static func start(
        _ backend: BenchmarkDatabase.Backend, postgresURL: String?, pluginFiles: [String] = [], label: String, metrics: Bool = false
    ) async throws -> BenchmarkRuntime {
        var logger = Logger(label: label)
        logger.logLevel = .error
        let factory: any MetricsFactory = metrics ? PrometheusExporter().factory : NOOPMetricsHandler.instance
        let (database, location) = try await BenchmarkDatabase.open(backend, postgresURL: postgresURL, metrics: metrics ? factory : nil)
        try await Migrator(database: database).migrate()
        let store = PipelineStore(database: database, metrics: factory)
        let plugins = await PluginHost.load(
            configuration: PluginHostConfiguration(pluginDirectories: [], pluginFiles: pluginFiles), logger: logger)
        guard plugins.refusals.isEmpty else { throw ValidationError("the benchmark plugins did not load: \(plugins.refusals)") }
        let runtime = ExecutionRuntime(
            store: store, plugins: plugins, configuration: RuntimeConfiguration(), logger: logger, metrics: factory)
        let group = ServiceGroup(services: RuntimeServices.all(for: runtime), logger: logger)
        let services = Task { try await group.run() }
        return BenchmarkRuntime(
            database: database, location: location, store: store, plugins: plugins, runtime: runtime, group: group, services: services)
    }

    /// `PostgreSQL 15.18 (postgresql://…)`, for the report's first line.
    func describe() async throws -> String {
        "\(try await database.serverVersion()) (\(location))"
    }

    /// Stops the services, the plugins and the database.
    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await services.value
        await plugins.shutdown()
        await database.close()
    }
}

extension Array where Element == Double {
    /// The value at `fraction` (0…1) of these values, which must be sorted: the smallest value
    /// with at least that share of the values at or below it.
    func percentile(_ fraction: Double) -> Double {
        guard !isEmpty else { return .nan }
        return self[Swift.min(count - 1, Swift.max(0, Int((Double(count) * fraction).rounded(.up)) - 1))]
    }
}
