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

    public init(host: String = "127.0.0.1", port: Int = 8010, maximumBodySize: Int = 4 << 20, publicURL: String? = nil) {
        self.host = host
        self.port = port
        self.maximumBodySize = maximumBodySize
        self.publicURL = publicURL
    }

    /// `HOST` (127.0.0.1), `PORT` (8010), `BUDPIPELINE_MAX_BODY_BYTES` (4 MiB),
    /// `BUDPIPELINE_PUBLIC_URL` (none).
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
        return configuration
    }
}
