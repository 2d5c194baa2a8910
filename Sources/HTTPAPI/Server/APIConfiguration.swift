public import BudPipelineHost

/// Where the API listens and what it accepts.
public struct APIConfiguration: Sendable, Equatable {
    public var host: String
    public var port: Int
    /// Largest request body accepted, in bytes; larger ones get 413.
    public var maximumBodySize: Int
    /// The URL clients reach this server at (behind a gateway, say), used in webhook URLs; by
    /// default `http://` and the request's `Host` header.
    public var publicURL: String?
    /// The token Dapr sends in `dapr-api-token` with deliveries to `/workflow-events`; without
    /// one that route refuses every request.
    public var appAPIToken: String?
    /// The pub/sub component and topic `GET /dapr/subscribe` declares for inbound events.
    public var pubsubName: String
    public var eventsTopic: String

    public init(
        host: String = "127.0.0.1", port: Int = 8010, maximumBodySize: Int = 4 << 20, publicURL: String? = nil,
        appAPIToken: String? = nil, pubsubName: String = "pubsub", eventsTopic: String = "budpipelineEvents"
    ) {
        self.host = host
        self.port = port
        self.maximumBodySize = maximumBodySize
        self.publicURL = publicURL
        self.appAPIToken = appAPIToken
        self.pubsubName = pubsubName
        self.eventsTopic = eventsTopic
    }

    /// `HOST` (127.0.0.1), `PORT` (8010), `BUDPIPELINE_MAX_BODY_BYTES` (4 MiB),
    /// `BUDPIPELINE_PUBLIC_URL` (none), `APP_API_TOKEN` (none), `PUBSUB_NAME` (`pubsub`),
    /// `CALLBACK_TOPIC` (`budpipelineEvents`).
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
        return configuration
    }
}
