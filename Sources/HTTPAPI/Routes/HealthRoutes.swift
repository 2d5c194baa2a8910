import BudJSON
import BudPipelineHost
import Hummingbird
import PipelineRuntime
import Storage

/// `GET /health` (liveness: the process answers, with what it knows of its parts) and
/// `GET /ready` (readiness: the database answers and takes writes, and no plugin is stuck; 503
/// otherwise).
struct HealthRoutes: Sendable {
    let runtime: ExecutionRuntime
    let version: String

    private struct Checks {
        var databaseConnected: Bool
        var storage: StorageHealth.State
        var unhealthyPlugins: [String]

        var healthy: Bool { databaseConnected && storage == .writable && unhealthyPlugins.isEmpty }
    }

    /// The parts' state. While writes are known to fail, a small write is tried (`probe`), so
    /// that readiness comes back as soon as the disk has room again, even with no traffic.
    private func check(probe: Bool) async -> Checks {
        let connected = (try? await runtime.store.database.serverVersion()) != nil
        if probe, connected, !runtime.store.health.isWritable { _ = await runtime.store.probeWrites() }
        let unhealthy = runtime.plugins.plugins.filter { !$0.healthStatus.isHealthy }.map(\.name)
        return Checks(databaseConnected: connected, storage: runtime.store.health.current, unhealthyPlugins: unhealthy)
    }

    private static func storage(_ state: StorageHealth.State) -> JSONValue {
        switch state {
        case .writable: ["writable": true]
        case .notWritable(let reason, let since):
            ["writable": false, "reason": .string(reason), "since": .string(SQLTimestamp.format(since))]
        }
    }

    func health(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        let checks = await check(probe: false)
        return JSONResponse([
            "status": .string(checks.healthy ? "healthy" : "degraded"),
            "service": "budpipeline",
            "version": .string(version),
            "database": .string(checks.databaseConnected ? "connected" : "disconnected"),
            "storage": Self.storage(checks.storage),
            "fallback_mode": false,
            "plugins": [
                "loaded": .int(runtime.plugins.plugins.count),
                "unhealthy": .array(checks.unhealthyPlugins.map(JSONValue.string)),
                "abi": .string(PluginHost.abiVersion),
                "processes": .array(
                    runtime.plugins.plugins.compactMap { plugin in
                        plugin.processStatus.map { status in
                            [
                                "plugin": .string(plugin.name), "pid": status.pid.map { .int(Int($0)) } ?? .null,
                                "restarts": .int(status.restarts), "crashes": .int(status.crashes),
                                "last_exit": status.lastExit.map(JSONValue.string) ?? .null,
                                "quarantined": status.quarantined.map(JSONValue.string) ?? .null,
                            ]
                        }
                    }),
            ],
        ])
    }

    func ready(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        let checks = await check(probe: true)
        return JSONResponse(
            [
                "status": .string(checks.healthy ? "ready" : "not_ready"),
                "database_connected": .bool(checks.databaseConnected),
                "database_writable": .bool(checks.storage == .writable),
                "plugins_healthy": .bool(checks.unhealthyPlugins.isEmpty),
                "fallback_active": false,
            ],
            status: checks.healthy ? .ok : .serviceUnavailable
        )
    }
}
