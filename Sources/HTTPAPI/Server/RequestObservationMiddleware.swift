import CoreMetrics
import Dispatch
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Synchronization
import Telemetry

/// The outermost middleware: gives every request a correlation id, logs one line per answer and
/// records the HTTP metrics.
///
/// - The correlation id is the request's `X-Request-ID` (or `X-Correlation-ID`) when it is 1–128
///   letters, digits or `._:-`, else a new random one. It is sent back in `X-Request-ID` and
///   carried as `request_id` by every line the request's handlers log.
/// - The log line (`request`, at info; at debug for `/health`, `/ready` and `/metrics`, which
///   probes and scrapers call every few seconds) has the method, route template, path, status,
///   duration in milliseconds and the correlation id. It is written when the answer is ready; a
///   streamed answer's (a live stream's) when its writing ends.
/// - Metrics: requests by method, route template and status; duration by method and route; the
///   requests in flight. A request no route matched has the route `unmatched`; a method other
///   than the standard ones counts as `other`. Label sets are thereby bounded.
struct RequestObservationMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext

    let metrics: HTTPMetrics?

    static let requestIDHeader = HTTPField.Name("X-Request-ID")!
    static let correlationIDHeader = HTTPField.Name("X-Correlation-ID")!
    /// Routes whose lines are logged at debug.
    static let quietRoutes: Set<String> = ["/health", "/ready", "/metrics"]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = DispatchTime.now().uptimeNanoseconds
        let requestID = Self.correlationID(of: request)
        var context = context
        context.logger[metadataKey: "request_id"] = .string(requestID)
        let method = Self.methodLabel(request.method)
        metrics?.inFlight.increment()
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        } catch {
            metrics?.inFlight.decrement()
            throw error
        }
        response.headers[Self.requestIDHeader] = requestID
        // Hummingbird names the endpoint of a request no route matched `NotFound`.
        let route = context.endpointPath.flatMap { $0 == "NotFound" ? nil : $0 } ?? "unmatched"
        let status = response.status.code
        let logger = context.logger
        let path = request.uri.path
        let finished: @Sendable () -> Void = { [metrics] in
            let elapsed = Duration.nanoseconds(Int64(clamping: DispatchTime.now().uptimeNanoseconds &- started))
            if let metrics {
                metrics.inFlight.decrement()
                metrics.record(method: method, route: route, status: status, elapsed: elapsed)
            }
            let level: Logger.Level = Self.quietRoutes.contains(route) ? .debug : .info
            logger.log(
                level: level, "request",
                metadata: [
                    "method": .string(method), "route": .string(route), "path": .string(String(path.prefix(300))),
                    "status": .stringConvertible(status),
                    "duration_ms": .string(String(format: "%.3f", elapsed / .milliseconds(1))),
                ])
        }
        // A body of known length is written at once after this returns: it is done here. A
        // streamed one (a live stream) is done when its writing ends.
        if response.body.contentLength == nil {
            response.body = response.body.then(finished)
        } else {
            finished()
        }
        return response
    }

    /// The caller's correlation id when it is a safe one, else a new one (16 hexadecimal digits).
    static func correlationID(of request: Request) -> String {
        if let given = request.headers[requestIDHeader], isSafeID(given) { return given }
        if let given = request.headers[correlationIDHeader], isSafeID(given) { return given }
        let digits = String(UInt64.random(in: .min ... .max), radix: 16)
        return digits.count == 16 ? digits : String(repeating: "0", count: 16 - digits.count) + digits
    }

    static func isSafeID(_ text: String) -> Bool {
        (1...128).contains(text.utf8.count)
            && text.utf8.allSatisfy { byte in
                (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte) || "._:-".utf8.contains(byte)
            }
    }

    static func methodLabel(_ method: HTTPRequest.Method) -> String {
        switch method {
        case .get, .head, .post, .put, .patch, .delete, .options: method.rawValue
        default: "other"
        }
    }
}

/// The HTTP metrics (see ``MetricCatalog``), with the series of each method, route and status
/// looked up once.
struct HTTPMetrics: Sendable {
    let requests: CounterFamily
    let duration: DurationFamily
    let inFlight: Meter
    private let series = SeriesCache()

    init(factory: any MetricsFactory) {
        requests = CounterFamily(MetricCatalog.httpRequests, factory: factory)
        duration = DurationFamily(MetricCatalog.httpRequestDuration, factory: factory)
        inFlight = GaugeFamily(MetricCatalog.httpRequestsInFlight, factory: factory).meter()
    }

    func record(method: String, route: String, status: Int, elapsed: Duration) {
        let key = SeriesCache.Key(method: method, route: route, status: status)
        let (counter, timer) = series.series(for: key) {
            (requests.counter(method, route, String(status)), duration.series(method, route))
        }
        counter.increment()
        timer.record(elapsed)
    }

    /// Series by method, route and status; at most 2,000 kept (the families stay bounded
    /// beyond, at the cost of a lookup).
    final class SeriesCache: Sendable {
        struct Key: Hashable {
            let method: String
            let route: String
            let status: Int
        }

        private let cache = Mutex<[Key: (Counter, DurationSeries)]>([:])

        func series(for key: Key, make: () -> (Counter, DurationSeries)) -> (Counter, DurationSeries) {
            if let known = cache.withLock({ $0[key] }) { return known }
            let made = make()
            cache.withLock { cache in
                if cache.count < 2000 { cache[key] = made }
            }
            return made
        }
    }
}

extension ResponseBody {
    /// The same body, with `finished` run once it has been written or its writing failed (a
    /// client that went away).
    func then(_ finished: @escaping @Sendable () -> Void) -> ResponseBody {
        let body = self
        return ResponseBody(contentLength: body.contentLength) { writer in
            do {
                try await body.write(writer)
                finished()
            } catch {
                finished()
                throw error
            }
        }
    }
}
