import BudJSON
import BudPipelineHost
import Hummingbird
import Runtime
import Storage

/// `GET /health` (liveness: the process answers, with what it knows of its parts) and
/// `GET /ready` (readiness: the database answers and no plugin is stuck; 503 otherwise).
struct HealthRoutes: Sendable {
    let runtime: ExecutionRuntime
    let version: String

    private struct Checks {
        var databaseConnected: Bool
        var unhealthyPlugins: [String]
    }

    private func check() async -> Checks {
        let connected = (try? await runtime.store.database.serverVersion()) != nil
        let unhealthy = runtime.plugins.plugins.filter { !$0.healthStatus.isHealthy }.map(\.name)
        return Checks(databaseConnected: connected, unhealthyPlugins: unhealthy)
    }

    func health(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        let checks = await check()
        let healthy = checks.databaseConnected && checks.unhealthyPlugins.isEmpty
        return JSONResponse([
            "status": .string(healthy ? "healthy" : "degraded"),
            "service": "budpipeline",
            "version": .string(version),
            "database": .string(checks.databaseConnected ? "connected" : "disconnected"),
            "fallback_mode": false,
            "plugins": [
                "loaded": .int(runtime.plugins.plugins.count),
                "unhealthy": .array(checks.unhealthyPlugins.map(JSONValue.string)),
            ],
        ])
    }

    func ready(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        let checks = await check()
        let ready = checks.databaseConnected && checks.unhealthyPlugins.isEmpty
        return JSONResponse(
            [
                "status": .string(ready ? "ready" : "not_ready"),
                "database_connected": .bool(checks.databaseConnected),
                "plugins_healthy": .bool(checks.unhealthyPlugins.isEmpty),
                "fallback_active": false,
            ],
            status: ready ? .ok : .serviceUnavailable
        )
    }
}
