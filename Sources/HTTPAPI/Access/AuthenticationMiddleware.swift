import Crypto
import Foundation
import HTTPTypes
import Hummingbird

/// Requires the app API token on every route but the open ones (see docs/security.md).
///
/// The token may come in `dapr-api-token` (what the Dapr sidecar sends with every request it
/// delivers when the app token is configured), `x-app-api-token`, or `Authorization: Bearer`.
/// A request without one is answered 401 `AUTHENTICATION_REQUIRED`, one with a wrong token 401
/// `INVALID_TOKEN`; both carry `WWW-Authenticate: Bearer`. Tokens are compared in constant time
/// (digests of equal length, every byte looked at).
///
/// Open without the token: `/health` and `/ready` (GET and HEAD), `/openapi.json`, the web console's
/// page and files under `/ui` (which hold no data), and the webhook trigger routes
/// (which check the webhook's own secret or signature). `/workflow-events` answers a missing or
/// wrong token itself, with a 403 (``WorkflowEventRoutes``).
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext

    /// SHA-256 of the configured token.
    let expectedDigest: SHA256.Digest

    init(token: String) {
        expectedDigest = SHA256.hash(data: Data(token.utf8))
    }

    /// Route patterns served without the token, as Hummingbird names matched endpoints.
    static let openEndpoints: Set<String> = [
        "/health", "/ready", "/openapi.json", "/trigger/{id}", "/api/v1/trigger/{id}", "/budpipeline/trigger/{id}",
        "/workflow-events", "/ui", "/ui/", "/ui/{asset}",
    ]

    static let tokenHeaders = [HTTPField.Name("dapr-api-token")!, HTTPField.Name("x-app-api-token")!]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if Self.openEndpoints.contains(context.endpointPath ?? "") { return try await next(request, context) }
        guard let presented = Self.presentedToken(request) else {
            throw Self.refusal("AUTHENTICATION_REQUIRED", "This route requires the app API token")
        }
        guard Self.matches(presented, expectedDigest) else {
            throw Self.refusal("INVALID_TOKEN", "The app API token is not valid")
        }
        return try await next(request, context)
    }

    /// The token the request presents, from the first header that carries one.
    static func presentedToken(_ request: Request) -> String? {
        for name in tokenHeaders {
            if let value = request.headers[name], !value.isEmpty { return value }
        }
        guard let authorization = request.headers[.authorization] else { return nil }
        let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }

    /// Whether `token` hashes to `expected`, comparing every byte.
    static func matches(_ token: String, _ expected: SHA256.Digest) -> Bool {
        let given = SHA256.hash(data: Data(token.utf8))
        return zip(given, expected).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    private static func refusal(_ code: String, _ message: String) -> APIError {
        APIError(.unauthorized, code: code, message: message, headers: [.wwwAuthenticate: "Bearer"])
    }
}
