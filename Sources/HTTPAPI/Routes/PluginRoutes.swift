import BudJSON
import BudPipelineHost
import Hummingbird
import PipelineRuntime

/// `POST /plugins/reload`: the operator's way to add or upgrade plugins without a restart (see
/// docs/plugins.md, "Reloading plugins"). Only the service may call it.
struct PluginRoutes: Sendable {
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
