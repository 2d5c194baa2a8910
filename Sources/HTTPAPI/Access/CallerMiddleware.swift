import Hummingbird

/// Holds every route to one reading of `X-User-ID` (see docs/security.md, "Who may do what"): a
/// header that is present but not a UUID — empty included — is 400 `INVALID_USER_ID` wherever it
/// is sent, not only on the routes that scope by user; and a user may not call the routes only the
/// service calls (`/workflow-events`, `/dapr/subscribe`, `/plugins/reload`): 403 `SERVICE_ONLY`. Otherwise a user
/// with the token could post an event "about" another user and fire that user's triggers.
///
/// The webhook trigger routes are left out: their callers are outside senders, authenticated by
/// the webhook's own secret, and the header means nothing there.
struct CallerMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext

    static let serviceOnlyEndpoints: Set<String> = ["/workflow-events", "/dapr/subscribe", "/plugins/reload"]
    static let senderEndpoints: Set<String> = ["/trigger/{id}", "/api/v1/trigger/{id}", "/budpipeline/trigger/{id}"]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let endpoint = context.endpointPath ?? ""
        guard !Self.senderEndpoints.contains(endpoint) else { return try await next(request, context) }
        let caller = try Caller(request)
        if case .user = caller, Self.serviceOnlyEndpoints.contains(endpoint) {
            throw APIError(.forbidden, code: "SERVICE_ONLY", message: "Only the service may call \(endpoint); send no X-User-ID")
        }
        return try await next(request, context)
    }
}
