import BudJSON
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Rate limits execution reads and starts (``RateLimitedRoute``) per client (``RateLimitSettings``).
///
/// A counted request that is allowed gets `X-RateLimit-Limit`, `X-RateLimit-Remaining` and
/// `X-RateLimit-Reset` (seconds until the whole budget is back) on its answer, error answers of
/// the API included. A refused one is answered at once, without reaching its route: 429 with
/// `Retry-After` (whole seconds until a request would be allowed), the same headers with
/// `X-RateLimit-Remaining: 0`, and the API's error fields plus `error` and `retry_after_seconds`
/// (kept on purpose for existing clients, see docs/compatibility.md):
///
/// ```json
/// {"detail": "Rate limit exceeded. Please slow down.", "code": "RATE_LIMITED",
///  "message": "Rate limit exceeded. Please slow down.", "error": "TooManyRequests", "retry_after_seconds": 12}
/// ```
///
/// Requests the limiter does not count (other routes, the service-level caller unless
/// ``RateLimitSettings/limitsServiceCaller``, a budget set to 0) pass untouched.
struct RateLimitMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext

    let settings: RateLimitSettings
    let limiter: RateLimiter

    init(settings: RateLimitSettings) {
        self.settings = settings
        self.limiter = RateLimiter(settings: settings)
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let route = RateLimitedRoute(method: request.method.rawValue, path: Substring(request.uri.path)),
            let client = client(of: request, route: route, peer: context.remoteAddress),
            let checked = limiter.check(client, route.budget)
        else {
            return try await next(request, context)
        }
        let decision = checked.decision
        if checked.warnAboutEviction {
            context.logger.warning(
                "rate limiter full: a client still limited was forgotten to make room (raise BUDPIPELINE_RATE_LIMIT_MAX_KEYS?)",
                metadata: ["max_keys": "\(settings.maximumKeys)"])
        }
        guard decision.allowed else { return Self.refusal(decision) }
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as APIError {
            response = try error.response(from: request, context: context)
        }
        response.headers.append(contentsOf: Self.headers(decision))
        return response
    }

    /// Who the request counts against: the peer address for the webhook trigger, else the user of
    /// a valid `X-User-ID`, else the service-level caller when it is limited; `nil`: not counted.
    func client(of request: Request, route: RateLimitedRoute, peer: SocketAddress?) -> RateLimitClient? {
        if route == .webhookTrigger {
            return Self.address(forwardedFor: request.headers[values: .xForwardedFor], trustedHops: settings.trustedProxyHops, peer: peer)
        }
        // A malformed X-User-ID is refused (400) by the route; it is not counted here.
        if let user = (try? Caller(request))?.userID.flatMap(UUID.init(uuidString:)) { return .user(user) }
        return settings.limitsServiceCaller ? .serviceCaller : nil
    }

    /// The client address: the `trustedHops`-th address from the right of `X-Forwarded-For` when
    /// proxies are trusted and it is an IP address, else the peer's.
    static func address(forwardedFor values: [String], trustedHops: Int, peer: SocketAddress?) -> RateLimitClient {
        if trustedHops > 0 {
            var counted = 0
            for value in values.reversed() {
                for entry in value.split(separator: ",", omittingEmptySubsequences: false).reversed() {
                    counted += 1
                    guard counted == trustedHops else { continue }
                    let text = entry.trimmingCharacters(in: .whitespaces)
                    if let forwarded = try? SocketAddress(ipAddress: text, port: 0) { return client(forwarded) }
                    return peer.map(client) ?? .otherPeer
                }
            }
        }
        return peer.map(client) ?? .otherPeer
    }

    /// An IPv4 address whole (an IPv4-mapped IPv6 address too), an IPv6 address by its /64.
    static func client(_ address: SocketAddress) -> RateLimitClient {
        // The address's text, read back into bytes: the socket structures' fields are declared by
        // more than one C module here, which Swift's member import rules refuse to pick between.
        guard let text = address.ipAddress else { return .otherPeer }
        var bytes = [UInt8](repeating: 0, count: 16)
        if inet_pton(AF_INET, text, &bytes) == 1 {
            return .ipv4(bytes[0..<4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        }
        guard inet_pton(AF_INET6, text, &bytes) == 1 else { return .otherPeer }
        let network = bytes[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let host = bytes[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        if network == 0, host >> 32 == 0xffff { return .ipv4(UInt32(truncatingIfNeeded: host)) }
        return .ipv6Network(network)
    }

    // MARK: Answers

    static let message = "Rate limit exceeded. Please slow down."

    static func headers(_ decision: RateLimitDecision) -> HTTPFields {
        [
            .xRateLimitLimit: String(decision.limit), .xRateLimitRemaining: String(decision.remaining),
            .xRateLimitReset: String(RateLimitDecision.seconds(roundingUp: decision.resetAfter)),
        ]
    }

    /// The 429 answer: the API's error fields plus `error` and `retry_after_seconds` for existing clients.
    static func refusal(_ decision: RateLimitDecision) -> Response {
        let wait = max(1, RateLimitDecision.seconds(roundingUp: decision.retryAfter))
        var body = APIError(.tooManyRequests, code: "RATE_LIMITED", message: message).body.objectValue ?? [:]
        body["error"] = "TooManyRequests"
        body["retry_after_seconds"] = .int(wait)
        var response = JSONResponse(.object(body), status: .tooManyRequests).response()
        response.headers[.retryAfter] = String(wait)
        response.headers.append(contentsOf: headers(decision))
        return response
    }
}

extension HTTPField.Name {
    // Valid field names written out: these initializers cannot fail.
    fileprivate static let xRateLimitLimit = HTTPField.Name("X-RateLimit-Limit")!
    fileprivate static let xRateLimitRemaining = HTTPField.Name("X-RateLimit-Remaining")!
    fileprivate static let xRateLimitReset = HTTPField.Name("X-RateLimit-Reset")!
    fileprivate static let xForwardedFor = HTTPField.Name("X-Forwarded-For")!
}
