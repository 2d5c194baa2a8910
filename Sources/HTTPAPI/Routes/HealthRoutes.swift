import BudJSON
import BudPipelineHost
import Hummingbird
import PipelineRuntime
import Storage

/// `GET /health` (liveness: the process answers, with what it knows of its parts; always 200) and
/// `GET /ready` (readiness: the store answers within its deadline and takes writes, and no plugin
/// is stuck; 503 otherwise).
///
/// Both probe the store (see ``ExecutionRuntime/probeStore(timeout:)``): a write on SQLite, a
/// query on PostgreSQL, each within two seconds, so a probe never hangs on a database that stopped
/// answering. `/health` also reports free disk space where the process writes, and the outbox's
/// backlog (read within the same deadline; left out when the store did not answer).
struct HealthRoutes: Sendable {
    let runtime: ExecutionRuntime
    let version: String
    /// Folders whose free space `/health` reports (the SQLite file's, the state folder).
    let diskPaths: [String]

    private struct Checks {
        var store: StoreProbeResult
        var unhealthyPlugins: [String]

        var healthy: Bool { store.answered && store.writable && unhealthyPlugins.isEmpty }
    }

    private func check() async -> Checks {
        let store = await runtime.probeStore()
        let unhealthy = runtime.plugins.plugins.filter { !$0.healthStatus.isHealthy }.map(\.name)
        return Checks(store: store, unhealthyPlugins: unhealthy)
    }

    private static func storage(_ state: StorageHealth.State) -> JSONValue {
        switch state {
        case .writable: ["writable": true]
        case .notWritable(let reason, let since):
            ["writable": false, "reason": .string(reason), "since": .string(SQLTimestamp.format(since))]
        }
    }

    private static func milliseconds(_ duration: Duration?) -> JSONValue {
        guard let duration else { return .null }
        return .double((duration / .milliseconds(1) * 1000).rounded() / 1000)
    }

    func health(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        let checks = await check()
        let disks = DiskSpace.measure(diskPaths)
        var outbox: JSONValue = .null
        if checks.store.answered {
            switch await runtime.outboxBacklog() {
            case .success(let backlog):
                outbox = [
                    "pending": .int(backlog.pending), "dead": .int(backlog.dead),
                    "oldest_pending_age_seconds": backlog.oldestPendingAge.map { .double(($0 * 1000).rounded() / 1000) } ?? .null,
                ]
            case .failure(let failure):
                outbox = ["error": .string(String(failure.message.prefix(300)))]
            }
        }
        let diskLow = disks.contains(where: \.isLow)
        return JSONResponse([
            "status": .string(checks.healthy && !diskLow ? "healthy" : "degraded"),
            "service": "budpipeline",
            "version": .string(version),
            "database": .string(checks.store.answered ? "connected" : "disconnected"),
            "database_latency_ms": Self.milliseconds(checks.store.latency),
            "database_error": checks.store.error.map(JSONValue.string) ?? .null,
            "storage": Self.storage(runtime.store.health.current),
            "disk": .array(
                disks.map { disk in
                    [
                        "path": .string(disk.path), "free_bytes": .int(Int(clamping: disk.freeBytes)),
                        "total_bytes": .int(Int(clamping: disk.totalBytes)), "low": .bool(disk.isLow),
                    ]
                }),
            "outbox": outbox,
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
        let checks = await check()
        return JSONResponse(
            [
                "status": .string(checks.healthy ? "ready" : "not_ready"),
                "database_connected": .bool(checks.store.answered),
                "database_writable": .bool(checks.store.answered && checks.store.writable),
                "database_latency_ms": Self.milliseconds(checks.store.latency),
                "database_error": checks.store.error.map(JSONValue.string) ?? .null,
                "plugins_healthy": .bool(checks.unhealthyPlugins.isEmpty),
                "disk_space_low": .bool(DiskSpace.measure(diskPaths).contains(where: \.isLow)),
                "fallback_active": false,
            ],
            status: checks.healthy ? .ok : .serviceUnavailable
        )
    }
}
