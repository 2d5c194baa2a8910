import HTTPTypes
import Hummingbird
import Synchronization

/// Every route's path and methods, recorded while the routes are added, so that a request for a
/// known path with a method it does not have is answered 405 with an `Allow` header, as HTTP
/// asks, instead of 404.
final class RouteBook: Sendable {
    /// Path patterns (segments, `{name}` matching any one segment) and their methods. Written
    /// only while the router is built, before any request is served.
    private let routes = Mutex<[[String]: Set<HTTPRequest.Method>]>([:])

    func record(_ method: HTTPRequest.Method, _ path: String) {
        let pattern = Self.segments(path)
        routes.withLock { _ = $0[pattern, default: []].insert(method) }
    }

    /// The methods of the route that `path` names, sorted; empty when no route matches it. Where
    /// several patterns match, the one the router picks wins: literal segments before `{name}`
    /// ones, from the left.
    func methods(for path: String) -> [HTTPRequest.Method] {
        let segments = Self.segments(path)
        let found = routes.withLock { routes in
            routes.filter { pattern, _ in Self.matches(pattern, segments) }
                .min { Self.generality($0.key).lexicographicallyPrecedes(Self.generality($1.key)) }?.value
        }
        return (found ?? []).sorted { $0.rawValue < $1.rawValue }
    }

    /// 0 for each literal segment of `pattern`, 1 for each `{name}`.
    private static func generality(_ pattern: [String]) -> [Int] {
        pattern.map { isParameter($0) ? 1 : 0 }
    }

    private static func isParameter(_ segment: String) -> Bool {
        segment.hasPrefix("{") && segment.hasSuffix("}")
    }

    private static func segments(_ path: String) -> [String] {
        path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
    }

    private static func matches(_ pattern: [String], _ segments: [String]) -> Bool {
        guard pattern.count == segments.count else { return false }
        return zip(pattern, segments).allSatisfy { expected, given in
            isParameter(expected) || expected == given
        }
    }
}

/// Adds routes under a path prefix to the router, recording each in a ``RouteBook``.
struct RouteRegistrar {
    let router: Router<APIRequestContext>
    let book: RouteBook
    var prefix = ""

    /// The same registrar for paths under `path`.
    func group(_ path: String) -> RouteRegistrar {
        RouteRegistrar(router: router, book: book, prefix: Self.join(prefix, path))
    }

    func on<Output: ResponseGenerator>(
        _ method: HTTPRequest.Method, _ path: String = "",
        use handler: @escaping @Sendable (Request, APIRequestContext) async throws -> Output
    ) {
        let full = Self.join(prefix, path)
        book.record(method, full)
        router.on(RouterPath(full), method: method, use: handler)
    }

    func get<Output: ResponseGenerator>(
        _ path: String = "", use handler: @escaping @Sendable (Request, APIRequestContext) async throws -> Output
    ) { on(.get, path, use: handler) }

    func post<Output: ResponseGenerator>(
        _ path: String = "", use handler: @escaping @Sendable (Request, APIRequestContext) async throws -> Output
    ) { on(.post, path, use: handler) }

    func put<Output: ResponseGenerator>(
        _ path: String = "", use handler: @escaping @Sendable (Request, APIRequestContext) async throws -> Output
    ) { on(.put, path, use: handler) }

    func delete<Output: ResponseGenerator>(
        _ path: String = "", use handler: @escaping @Sendable (Request, APIRequestContext) async throws -> Output
    ) { on(.delete, path, use: handler) }

    private static func join(_ prefix: String, _ path: String) -> String {
        [prefix, path].filter { !$0.isEmpty }.joined(separator: "/")
    }
}

/// Answers a request no route matched: 405 with `Allow` when its path has routes for other
/// methods, the router's 404 otherwise. Added after every route, so that it wraps only the
/// not-found answer.
struct MethodNotAllowedMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let book: RouteBook

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            let methods = book.methods(for: request.uri.path)
            guard !methods.isEmpty else { throw error }
            throw APIError(
                .methodNotAllowed, code: "METHOD_NOT_ALLOWED", message: "Method Not Allowed",
                headers: [.allow: methods.map(\.rawValue).joined(separator: ", ")])
        }
    }
}
