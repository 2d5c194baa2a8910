public import BudJSON
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A stand-in for a Dapr sidecar that speaks the part of Dapr's HTTP API BudPipeline uses, for
/// end-to-end tests and local runs (no Dapr can be installed on the machines this is built on).
///
/// - Publish: `POST /v1.0/publish/{pubsub}/{topic}` records the message (body, content type,
///   `metadata.*` query parameters) and answers 204, or 500 while publishing is switched off. A
///   message for the app's subscribed topic is delivered to the app, as Dapr would.
/// - Service invocation: `/v1.0/invoke/{app}/method/{path}` goes to the handler registered for
///   the app (404 without one).
/// - Subscription delivery: `deliver(_:)` posts an event to the app's route with `dapr-api-token`
///   and follows Dapr's reading of the answer: `SUCCESS` (or an empty 2xx) is done, `RETRY` or a
///   non-2xx answer is delivered again after a pause, `DROP` goes to the dead-letter list.
/// - Every request that arrives, whatever its path (a real sidecar has many more APIs: state,
///   secrets, …), is recorded as it came on the wire (``receivedRequests``), before routing.
public final class DaprSidecar: Sendable {
    /// A message published through the sidecar.
    public struct Publication: Sendable, Equatable {
        public var pubsub: String
        public var topic: String
        public var body: JSONValue
        public var contentType: String?
        /// `metadata.<key>` query parameters, by key.
        public var metadata: [String: String]
    }

    /// A call an app made through service invocation.
    public struct Invocation: Sendable, Equatable {
        public var app: String
        public var method: String
        /// The method path, with its query string.
        public var path: String
        public var body: JSONValue
        /// The request's `dapr-api-token` and `traceparent` headers, when sent.
        public var apiToken: String?
        public var traceparent: String?
    }

    /// A request as it arrived: its method and request target (path and query, undecoded).
    public struct ReceivedRequest: Sendable, Equatable {
        public var method: String
        public var target: String

        public init(method: String, target: String) {
            self.method = method
            self.target = target
        }
    }

    /// How a delivery ended.
    public enum DeliveryOutcome: Sendable, Equatable {
        case delivered(answer: JSONValue)
        case dropped(answer: JSONValue)
        /// Every attempt failed or asked for a retry.
        case gaveUp(lastError: String)
    }

    /// Answers a service invocation: status and JSON body.
    public typealias InvocationHandler = @Sendable (Invocation) async -> (status: Int, body: JSONValue)

    private struct State {
        var publications: [Publication] = []
        var invocations: [Invocation] = []
        var received: [ReceivedRequest] = []
        var deadLetters: [JSONValue] = []
        var handlers: [String: InvocationHandler] = [:]
        var publishingEnabled = true
        var server: Task<Void, any Error>?
        var port: Int?
        var appURL: String?
    }

    private let state = Mutex(State())
    /// The `dapr-api-token` sent to the app (its `APP_API_TOKEN`).
    public let appToken: String?
    /// The topic the app subscribes to, delivered at `route`.
    public let appTopic: String
    public let route: String

    public init(appURL: String? = nil, appToken: String? = nil, appTopic: String = "budpipelineEvents", route: String = "/workflow-events")
    {
        self.appToken = appToken
        state.withLock { $0.appURL = appURL }
        self.appTopic = appTopic
        self.route = route
    }

    // MARK: Running

    /// Starts listening on loopback (`port` 0 picks a free one) and returns the port.
    @discardableResult
    public func start(port: Int = 0) async throws -> Int {
        let router = Router()
        router.add(middleware: RecordingMiddleware(sidecar: self))
        router.post("v1.0/publish/{pubsub}/{topic}") { request, context in try await self.publish(request, context: context) }
        router.on("v1.0/invoke/{app}/method/**", method: .get) { request, context in try await self.invoke(request, context: context) }
        router.on("v1.0/invoke/{app}/method/**", method: .post) { request, context in try await self.invoke(request, context: context) }
        router.on("v1.0/invoke/{app}/method/**", method: .put) { request, context in try await self.invoke(request, context: context) }
        router.on("v1.0/invoke/{app}/method/**", method: .delete) { request, context in try await self.invoke(request, context: context) }
        router.get("v1.0/healthz") { _, _ in HTTPResponse.Status.noContent }
        let (started, ready) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "dapr-sidecar")
        // Stopping the server cancels its connections, which it reports as errors: not news here.
        logger.logLevel = .critical
        let application = Application(
            router: router, configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: port)),
            onServerRunning: { channel in ready.yield(channel.localAddress?.port ?? port) }, logger: logger)
        // Unstructured on purpose: the test double runs until its owner calls `stop()`.
        let server = Task { try await application.run() }
        var iterator = started.makeAsyncIterator()
        guard let bound = await iterator.next() else { throw SidecarError("the sidecar did not start") }
        state.withLock {
            $0.server = server
            $0.port = bound
        }
        return bound
    }

    /// Stops listening (connections are refused until `start` is called again).
    public func stop() async {
        let server = state.withLock { state -> Task<Void, any Error>? in
            defer { state.server = nil }
            return state.server
        }
        server?.cancel()
        _ = await server?.result
    }

    /// Where the app listens (`http://127.0.0.1:8010`), for deliveries.
    public var appURL: String? {
        get { state.withLock { $0.appURL } }
        set { state.withLock { $0.appURL = newValue } }
    }

    /// `http://127.0.0.1:<port>` while running.
    public var endpoint: String? { state.withLock { $0.port.map { "http://127.0.0.1:\($0)" } } }

    // MARK: Observing and steering

    public var publications: [Publication] { state.withLock { $0.publications } }
    public var invocations: [Invocation] { state.withLock { $0.invocations } }
    /// Every request received, in arrival order, routed or not.
    public var receivedRequests: [ReceivedRequest] { state.withLock { $0.received } }
    public var deadLetters: [JSONValue] { state.withLock { $0.deadLetters } }

    /// Publications to one topic, in arrival order.
    public func publications(to topic: String) -> [Publication] { publications.filter { $0.topic == topic } }

    /// While off, publishing answers 500 (the broker is unreachable).
    public func setPublishing(enabled: Bool) {
        state.withLock { $0.publishingEnabled = enabled }
    }

    /// Answers invocations of `app` with `handler`.
    public func handleInvocations(of app: String, with handler: @escaping InvocationHandler) {
        state.withLock { $0.handlers[app] = handler }
    }

    // MARK: Delivery

    /// Delivers `event` to the app's subscription route as Dapr would, redelivering up to
    /// `attempts` times while the app asks for it or fails.
    public func deliver(_ event: JSONValue, attempts: Int = 5, pause: Duration = .milliseconds(200)) async -> DeliveryOutcome {
        guard let appURL, let url = URL(string: appURL + route) else { return .gaveUp(lastError: "no app URL configured") }
        var lastError = "not attempted"
        for attempt in 1...max(1, attempts) {
            if attempt > 1 { try? await Task.sleep(for: pause) }
            var request = URLRequest(url: url, timeoutInterval: 30)
            request.httpMethod = "POST"
            request.httpBody = Data(event.serialized())
            request.setValue("application/cloudevents+json", forHTTPHeaderField: "Content-Type")
            if let appToken { request.setValue(appToken, forHTTPHeaderField: "dapr-api-token") }
            do {
                let (data, response) = try await URLSession.shared.data(for: request)
                let status = (response as? HTTPURLResponse)?.statusCode ?? 0
                let answer = (try? JSONValue(parsing: String(decoding: data, as: UTF8.self))) ?? .null
                guard (200..<300).contains(status) else {
                    lastError = "the app answered \(status)"
                    continue
                }
                switch answer["status"]?.stringValue?.uppercased() {
                case "SUCCESS", nil: return .delivered(answer: answer)
                case "DROP":
                    state.withLock { $0.deadLetters.append(event) }
                    return .dropped(answer: answer)
                case "RETRY": lastError = "the app asked for a retry: \(answer["message"]?.stringValue ?? "")"
                case let other?: lastError = "the app answered an unknown status \(other)"
                }
            } catch {
                lastError = "the app did not answer: \(error.localizedDescription)"
            }
        }
        return .gaveUp(lastError: lastError)
    }

    // MARK: Routes

    private func publish(_ request: Request, context: some RequestContext) async throws -> Response {
        let pubsub = context.parameters.get("pubsub") ?? ""
        let topic = context.parameters.get("topic") ?? ""
        guard state.withLock({ $0.publishingEnabled }) else {
            return Self.json(
                ["errorCode": "ERR_PUBSUB_PUBLISH_MESSAGE", "message": "the broker is unreachable"], status: .internalServerError)
        }
        let bytes = try await request.body.collect(upTo: 16 << 20)
        guard let body = try? JSONValue(parsing: String(buffer: bytes)) else {
            return Self.json(["errorCode": "ERR_PUBSUB_CLOUD_EVENTS_SER", "message": "the body is not JSON"], status: .badRequest)
        }
        var metadata: [String: String] = [:]
        for (key, value) in request.uri.queryParameters where key.hasPrefix("metadata.") {
            metadata[String(key.dropFirst("metadata.".count))] = String(value)
        }
        let publication = Publication(
            pubsub: pubsub, topic: topic, body: body, contentType: request.headers[.contentType], metadata: metadata)
        state.withLock { $0.publications.append(publication) }
        if topic == appTopic, self.appURL != nil {
            let event = Self.cloudEvent(body, publication: publication)
            // Unstructured on purpose: like Dapr, delivery happens after the publish is answered.
            Task { _ = await self.deliver(event) }
        }
        return Response(status: .noContent)
    }

    private func invoke(_ request: Request, context: some RequestContext) async throws -> Response {
        let app = context.parameters.get("app") ?? ""
        var path = context.parameters.getCatchAll().joined(separator: "/")
        if let query = request.uri.query, !query.isEmpty { path += "?" + query }
        let bytes = try await request.body.collect(upTo: 16 << 20)
        let body =
            bytes.readableBytes == 0 ? JSONValue.null : (try? JSONValue(parsing: String(buffer: bytes))) ?? .string(String(buffer: bytes))
        let invocation = Invocation(
            app: app, method: request.method.rawValue, path: path, body: body,
            apiToken: request.headers[HTTPField.Name("dapr-api-token")!], traceparent: request.headers[HTTPField.Name("traceparent")!])
        let handler = state.withLock { state -> InvocationHandler? in
            state.invocations.append(invocation)
            return state.handlers[app]
        }
        guard let handler else {
            return Self.json(["errorCode": "ERR_DIRECT_INVOKE", "message": .string("no app \(app)")], status: .notFound)
        }
        let (status, answer) = await handler(invocation)
        return Self.json(answer, status: HTTPResponse.Status(code: status))
    }

    /// What Dapr delivers for a published message: a CloudEvent given as
    /// `application/cloudevents+json` is delivered as is, with the publish metadata filled in.
    private static func cloudEvent(_ body: JSONValue, publication: Publication) -> JSONValue {
        guard var event = body.objectValue else { return body }
        event["specversion"] = event["specversion"] ?? "1.0"
        event["id"] = event["id"] ?? .string(publication.metadata["cloudevent.id"] ?? UUID().uuidString.lowercased())
        event["source"] = event["source"] ?? .string(publication.metadata["cloudevent.source"] ?? "dapr")
        event["type"] = event["type"] ?? .string(publication.metadata["cloudevent.type"] ?? "com.dapr.event.sent")
        event["topic"] = .string(publication.topic)
        event["pubsubname"] = .string(publication.pubsub)
        return .object(event)
    }

    private static func json(_ body: JSONValue, status: HTTPResponse.Status) -> Response {
        var buffer = ByteBuffer()
        buffer.writeBytes(body.serialized())
        return Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: buffer))
    }
}

/// Records each request before the router sees it.
private struct RecordingMiddleware<Context: RequestContext>: RouterMiddleware {
    let sidecar: DaprSidecar

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        sidecar.record(DaprSidecar.ReceivedRequest(method: request.method.rawValue, target: request.head.path ?? ""))
        return try await next(request, context)
    }
}

extension DaprSidecar {
    fileprivate func record(_ request: ReceivedRequest) {
        state.withLock { $0.received.append(request) }
    }
}

/// The sidecar could not do what was asked.
public struct SidecarError: Error, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
