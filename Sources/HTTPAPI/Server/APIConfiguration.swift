public import BudPipelineHost
import Foundation
import HTTPTypes

/// Where the API listens and what it accepts.
public struct APIConfiguration: Sendable, Equatable {
    public var host: String
    public var port: Int
    /// Largest request body accepted, in bytes; larger ones get 413.
    public var maximumBodySize: Int
    /// The URL clients reach this server at (behind a gateway, say), from `BUDPIPELINE_PUBLIC_URL`,
    /// used in webhook URLs; without it they use the listen address (`localhost` for every
    /// interface). Never the request's `Host` header, which the caller chooses.
    public var publicURL: String?
    /// The app API token: every route but the open ones requires it (`AuthenticationMiddleware`),
    /// and Dapr sends it in `dapr-api-token` with deliveries to `/workflow-events`. Without one,
    /// every route is open except `/workflow-events`, which refuses every request, and the
    /// server serves only loopback unless ``allowUnauthenticated`` (see ``checkExposure()``).
    public var appAPIToken: String?
    /// The pub/sub component and topic `GET /dapr/subscribe` declares for inbound events.
    public var pubsubName: String
    public var eventsTopic: String
    /// How long a connection may go without a complete request header or another request part
    /// arriving before it is closed. Writing a response is not idle: a long response (a live
    /// stream) is never cut by it.
    public var idleTimeout: Duration
    /// How long a request's body may take to arrive in full, counted from its header; the
    /// connection is closed when it has not.
    public var requestTimeout: Duration
    /// The most connections served at once; a connection beyond it is answered 503
    /// `SERVER_BUSY` and closed. `nil`: no limit (the `serve` command derives one from the
    /// descriptor limit, see ``connectionLimit(descriptorLimit:)``).
    public var maximumConnections: Int?
    /// Serve without `appAPIToken` on an address other than loopback (every caller is then the
    /// service caller). Off by default: such a server refuses to start.
    public var allowUnauthenticated = false
    /// Request headers webhooks never copy into parameters, besides the built-in ones.
    public var sensitiveHeaders = SensitiveHeaders()
    /// Rate limits of execution reads and starts.
    public var rateLimits: RateLimitSettings
    /// How many descriptors the process may open, when known. The server never accepts so many
    /// connections that it could run out (see ``acceptLimit(maximumConnections:)``), whatever
    /// ``maximumConnections`` says: a process out of descriptors can be ended by the system's
    /// thread pool, which traps when it cannot read a thread's state.
    public var descriptorLimit: Int?
    /// Folders whose free space `/health` and `/ready` report: where the process writes (the
    /// SQLite file's folder, the state folder).
    public var diskPaths: [String] = []
    /// Whether `/ui` serves the web console (`BUDPIPELINE_CONSOLE`, default true).
    public var consoleEnabled = true

    public init(
        host: String = "127.0.0.1", port: Int = 8010, maximumBodySize: Int = 4 << 20, publicURL: String? = nil,
        appAPIToken: String? = nil, pubsubName: String = "pubsub", eventsTopic: String = "budpipelineEvents",
        idleTimeout: Duration = .seconds(60), requestTimeout: Duration = .seconds(60), maximumConnections: Int? = nil,
        rateLimits: RateLimitSettings = RateLimitSettings()
    ) {
        self.host = host
        self.port = port
        self.maximumBodySize = maximumBodySize
        self.publicURL = publicURL
        self.appAPIToken = appAPIToken
        self.pubsubName = pubsubName
        self.eventsTopic = eventsTopic
        self.idleTimeout = idleTimeout
        self.requestTimeout = requestTimeout
        self.maximumConnections = maximumConnections
        self.rateLimits = rateLimits
    }

    /// Descriptors kept for everything but HTTP connections: the database, plugins, files.
    public static let descriptorReserve = 256
    /// The largest connection limit, set or derived.
    public static let connectionLimitRange = 1...1_000_000

    /// The connection limit for a process that may open `descriptorLimit` descriptors: all but
    /// ``descriptorReserve`` of them, at least 16, at most 1,000,000.
    public static func connectionLimit(descriptorLimit: Int) -> Int {
        min(max(16, descriptorLimit.subtractingReportingOverflow(descriptorReserve).partialValue), connectionLimitRange.upperBound)
    }

    /// The number of connections past which the server stops accepting (they wait in the
    /// kernel's backlog): 64 more than `maximumConnections`, so that connections answered
    /// `SERVER_BUSY` can still be accepted and answered, but never take the whole reserve.
    public static func acceptLimit(maximumConnections: Int) -> Int {
        maximumConnections + 64
    }

    /// The number of connections past which the server stops accepting: the accept limit of
    /// ``maximumConnections``, and never more than that of the connection limit the descriptor
    /// limit allows (``connectionLimit(descriptorLimit:)``); `nil` without either.
    public var effectiveAcceptLimit: Int? {
        let configured = maximumConnections.map { Self.acceptLimit(maximumConnections: $0) }
        let affordable = descriptorLimit.map { Self.acceptLimit(maximumConnections: Self.connectionLimit(descriptorLimit: $0)) }
        return [configured, affordable].compactMap { $0 }.min()
    }

    /// `HOST` (127.0.0.1), `PORT` (8010), `BUDPIPELINE_MAX_BODY_BYTES` (4 MiB),
    /// `BUDPIPELINE_PUBLIC_URL` (none), `APP_API_TOKEN` (none), `PUBSUB_NAME` (`pubsub`),
    /// `CALLBACK_TOPIC` (`budpipelineEvents`), `BUDPIPELINE_HTTP_IDLE_TIMEOUT_SECONDS` (60),
    /// `BUDPIPELINE_HTTP_REQUEST_TIMEOUT_SECONDS` (60, both 1 to 86,400),
    /// `BUDPIPELINE_MAX_CONNECTIONS` (none here: derived by the command; 1 to 1,000,000),
    /// `BUDPIPELINE_ALLOW_UNAUTHENTICATED` (false), `BUDPIPELINE_SENSITIVE_HEADERS` (none), and
    /// the rate limits' `BUDPIPELINE_RATE_LIMIT_*` (see ``RateLimitSettings``).
    public static func from(environment: [String: String]) throws(ConfigurationError) -> APIConfiguration {
        var configuration = APIConfiguration()
        if let host = environment["HOST"], !host.isEmpty { configuration.host = host }
        if let text = environment["PORT"], !text.isEmpty {
            guard let port = Int(text), (0...65_535).contains(port) else { throw ConfigurationError("PORT=\(text) is not a port number") }
            configuration.port = port
        }
        if let text = environment["BUDPIPELINE_MAX_BODY_BYTES"], !text.isEmpty {
            guard let size = Int(text), size >= 1024 else {
                throw ConfigurationError("BUDPIPELINE_MAX_BODY_BYTES=\(text) is not a whole number of at least 1024")
            }
            configuration.maximumBodySize = size
        }
        if let url = environment["BUDPIPELINE_PUBLIC_URL"], !url.isEmpty {
            guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
                throw ConfigurationError("BUDPIPELINE_PUBLIC_URL=\(url) is not an http:// or https:// URL")
            }
            configuration.publicURL = url.hasSuffix("/") ? String(url.dropLast()) : url
        }
        if let token = environment["APP_API_TOKEN"], !token.isEmpty { configuration.appAPIToken = token }
        if let name = environment["PUBSUB_NAME"], !name.isEmpty { configuration.pubsubName = name }
        if let topic = environment["CALLBACK_TOPIC"], !topic.isEmpty { configuration.eventsTopic = topic }
        if let seconds = try integer("BUDPIPELINE_HTTP_IDLE_TIMEOUT_SECONDS", in: environment, range: 1...86_400) {
            configuration.idleTimeout = .seconds(seconds)
        }
        if let seconds = try integer("BUDPIPELINE_HTTP_REQUEST_TIMEOUT_SECONDS", in: environment, range: 1...86_400) {
            configuration.requestTimeout = .seconds(seconds)
        }
        configuration.maximumConnections = try integer("BUDPIPELINE_MAX_CONNECTIONS", in: environment, range: connectionLimitRange)
        if let text = environment["BUDPIPELINE_SENSITIVE_HEADERS"], !text.isEmpty {
            let names = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard names.allSatisfy({ HTTPField.Name($0) != nil }) else {
                throw ConfigurationError("BUDPIPELINE_SENSITIVE_HEADERS=\(text) is not a comma-separated list of header names")
            }
            configuration.sensitiveHeaders = SensitiveHeaders(extra: names)
        }
        if let text = environment["BUDPIPELINE_ALLOW_UNAUTHENTICATED"], !text.isEmpty {
            switch text.lowercased() {
            case "true", "1", "yes": configuration.allowUnauthenticated = true
            case "false", "0", "no": configuration.allowUnauthenticated = false
            default: throw ConfigurationError("BUDPIPELINE_ALLOW_UNAUTHENTICATED=\(text) is not true or false")
            }
        }
        if let text = environment["BUDPIPELINE_CONSOLE"], !text.isEmpty {
            switch text.lowercased() {
            case "true", "1", "yes": configuration.consoleEnabled = true
            case "false", "0", "no": configuration.consoleEnabled = false
            default: throw ConfigurationError("BUDPIPELINE_CONSOLE=\(text) is not true or false")
            }
        }
        configuration.rateLimits = try RateLimitSettings.from(environment: environment)
        return configuration
    }

    /// Whether `host` names this machine's loopback interface only.
    public static func isLoopback(_ host: String) -> Bool {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if bare == "localhost" || bare == "::1" { return true }
        let parts = bare.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    /// Refuses to serve without a token on an address others can reach, unless told to. Returns
    /// whether the server runs unauthenticated where others can reach it (to be warned about).
    public func checkExposure() throws(ConfigurationError) -> Bool {
        guard appAPIToken == nil, !Self.isLoopback(host) else { return false }
        guard allowUnauthenticated else {
            throw ConfigurationError(
                "refusing to serve \(host):\(port) without APP_API_TOKEN: anyone who reaches it could act on every pipeline; "
                    + "set APP_API_TOKEN, listen on 127.0.0.1, or set BUDPIPELINE_ALLOW_UNAUTHENTICATED=true")
        }
        return true
    }

    /// The whole number in `name`, when set; one outside `range` is refused naming the variable.
    static func integer(
        _ name: String, in environment: [String: String], range: ClosedRange<Int>
    ) throws(ConfigurationError) -> Int? {
        guard let text = environment[name], !text.isEmpty else { return nil }
        guard let number = Int(text), range.contains(number) else {
            throw ConfigurationError("\(name)=\(text) is not a whole number in \(range.lowerBound)...\(range.upperBound)")
        }
        return number
    }
}
