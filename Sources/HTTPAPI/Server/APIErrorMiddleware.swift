import Hummingbird
import Logging
import PipelineRuntime
import Storage

/// Turns every error into a JSON answer with a stable code: known errors keep their status, a
/// lost race is a 409, the database being unreachable or unable to store (full or read-only disk)
/// a 503, anything else a 500 that is logged and never described to the client.
struct APIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as HTTPError {
            throw Self.translate(error)
        } catch let error as DatabaseError where error.kind == .conflict {
            throw APIError(.conflict, code: "CONCURRENT_MODIFICATION", message: "Concurrent modification detected: \(error.message)")
        } catch let error as DatabaseError where error.kind == .connection {
            context.logger.error("database unreachable", metadata: ["error": "\(error)"])
            throw APIError(.serviceUnavailable, code: "DATABASE_UNAVAILABLE", message: "The database is unavailable")
        } catch let error as DatabaseError where error.kind == .notRun {
            context.logger.warning("database work not run", metadata: ["error": "\(error)"])
            throw APIError(.serviceUnavailable, code: "DATABASE_BUSY", message: "The database is too busy to take this request; try again")
        } catch let error as DatabaseError where error.kind == .unavailable {
            context.logger.error("database cannot store changes", metadata: ["error": "\(error)"])
            throw APIError(
                .serviceUnavailable, code: "STORAGE_UNAVAILABLE",
                message: "The database cannot store changes right now (disk full or read-only); nothing was changed")
        } catch RuntimeError.shuttingDown {
            throw APIError(.serviceUnavailable, code: "SHUTTING_DOWN", message: "The server is shutting down")
        } catch {
            context.logger.error(
                "request failed", metadata: ["error": "\(error)", "method": "\(request.method)", "path": "\(request.uri.path)"])
            throw APIError(.internalServerError, code: "INTERNAL_ERROR", message: "Internal server error")
        }
    }

    static func translate(_ error: HTTPError) -> APIError {
        switch error.status {
        case .notFound: APIError(.notFound, code: "ROUTE_NOT_FOUND", message: "Not Found")
        case .methodNotAllowed: APIError(.methodNotAllowed, code: "METHOD_NOT_ALLOWED", message: "Method Not Allowed")
        case .contentTooLarge: APIError(.contentTooLarge, code: "BODY_TOO_LARGE", message: "The request body is too large")
        default:
            APIError(
                error.status, code: "HTTP_\(error.status.code)",
                message: error.body ?? error.status.reasonPhrase)
        }
    }
}
