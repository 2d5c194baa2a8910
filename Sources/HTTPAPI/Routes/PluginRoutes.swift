public import BudJSON
public import BudPipelineHost
import Hummingbird
import PipelineRuntime
import PluginSchema

/// `POST /plugins/reload`: the operator's way to add or upgrade plugins without a restart (see
/// docs/plugins.md, "Reloading plugins"). Only the service may call it.
public struct PluginRoutes: Sendable {
    let runtime: ExecutionRuntime

    func reload(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        do {
            let report = try await runtime.plugins.reload()
            return JSONResponse(report.json)
        } catch  where error.isShuttingDown {
            throw APIError(.serviceUnavailable, code: "SHUTTING_DOWN", message: error.description)
        } catch {
            throw APIError(.conflict, code: "RELOAD_IN_PROGRESS", message: error.description)
        }
    }
}

extension PluginRoutes {
    /// `GET /plugins`: what the server loaded, what it refused and why, each plugin's health and
    /// ABI version. Users see it without file paths and search directories (those describe the
    /// server's machine, which is the service's business).
    func inventory(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        JSONResponse(Self.inventory(runtime.plugins, showingPaths: try Caller(request) == .service))
    }

    /// The inventory of `host`: `host_abi`, `plugins` (name, version, ABI, actions, isolation,
    /// health, process), `refused` (file, reason), `notes`, and with `showingPaths` the files and
    /// `directories`. `budpipeline plugins list --json` prints the same document.
    public static func inventory(_ host: PluginHost, showingPaths: Bool) -> JSONValue {
        let plugins: [JSONValue] = host.plugins.map { plugin in
            var entry: JSONObject = [
                "name": .string(plugin.name), "version": .string(plugin.image.manifest.version),
                "abi": .string(plugin.image.abiVersion), "thread_safe": .bool(plugin.image.isThreadSafe),
                "actions": .array(plugin.image.actions.map { .string($0.type) }),
                "isolation": .string(plugin.isolation.rawValue),
                "healthy": .bool(plugin.healthStatus.isHealthy),
            ]
            if case .unhealthy(let reason, let stuckCalls) = plugin.healthStatus {
                entry["unhealthy_reason"] = .string(reason)
                entry["stuck_calls"] = .int(stuckCalls)
            }
            if let status = plugin.processStatus {
                entry["process"] = [
                    "pid": status.pid.map { .int(Int($0)) } ?? .null, "restarts": .int(status.restarts),
                    "crashes": .int(status.crashes), "last_exit": status.lastExit.map(JSONValue.string) ?? .null,
                    "quarantined": status.quarantined.map(JSONValue.string) ?? .null,
                ]
            }
            entry["file"] = .string(showingPaths ? plugin.image.file : Self.fileName(plugin.image.file))
            return .object(entry)
        }
        let refused: [JSONValue] = host.refusals.map {
            [
                "file": .string(showingPaths ? $0.file : Self.fileName($0.file)),
                "reason": .string(showingPaths ? $0.reason : Self.withoutDirectories($0.reason)),
            ]
        }
        let notes = host.notes.map { showingPaths ? $0 : Self.withoutDirectories($0) }
        var inventory: JSONObject = [
            "host_abi": .string(PluginHost.abiVersion), "plugins": .array(plugins), "refused": .array(refused),
            "notes": .array(notes.map(JSONValue.string)),
        ]
        if showingPaths { inventory["directories"] = .array(host.configuration.pluginDirectories.map(JSONValue.string)) }
        return .object(inventory)
    }

    private static func fileName(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }

    /// `text` with every absolute path cut to its last component (`/srv/plugins/libX.so: bad`
    /// becomes `libX.so: bad`): loader messages name files and directories of the server.
    static func withoutDirectories(_ text: String) -> String {
        text.replacing(#/(^|[\s'"(=])((?:/[^\s/:,;'"()]+)+/?)/#) { match in match.output.1 + fileName(String(match.output.2)) }
    }
}
