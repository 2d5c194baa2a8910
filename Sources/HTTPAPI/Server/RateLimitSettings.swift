import BudPipelineHost

/// How execution reads and starts are rate limited (see ``RateLimitMiddleware``).
///
/// Each client has two budgets per minute: one for execution reads (`GET` under any `executions`
/// path), one for execution starts (start, run, retry, execute, schedule and webhook triggers). A
/// request with a valid `X-User-ID` counts against that user; the webhook trigger, which needs no
/// authentication, against the peer address; a request without a user is the service-level caller,
/// counted only when ``limitsServiceCaller`` is set.
public struct RateLimitSettings: Sendable, Equatable {
    /// Execution reads per client per minute; 0: not limited.
    public var readsPerMinute: Int
    /// Execution starts per client per minute; 0: not limited.
    public var startsPerMinute: Int
    /// Whether the service-level caller (no `X-User-ID`: budapp with the service token, which
    /// speaks for many users) is limited too, as one client.
    public var limitsServiceCaller: Bool
    /// The most keys (a client's read or start budget) remembered at once; past it, the least
    /// recently seen key is forgotten.
    public var maximumKeys: Int
    /// How many reverse proxies in front of the server append the address they received from to
    /// `X-Forwarded-For`. 0: the header is ignored and the peer address is the client's. With n,
    /// the n-th address from the right is the client's, when there are that many.
    public var trustedProxyHops: Int

    public init(
        readsPerMinute: Int = 1000, startsPerMinute: Int = 120, limitsServiceCaller: Bool = false, maximumKeys: Int = 100_000,
        trustedProxyHops: Int = 0
    ) {
        self.readsPerMinute = readsPerMinute
        self.startsPerMinute = startsPerMinute
        self.limitsServiceCaller = limitsServiceCaller
        self.maximumKeys = maximumKeys
        self.trustedProxyHops = trustedProxyHops
    }

    public static let perMinuteRange = 0...1_000_000
    public static let maximumKeysRange = 1...10_000_000
    public static let trustedProxyHopsRange = 0...16

    /// `BUDPIPELINE_RATE_LIMIT_READS_PER_MINUTE` (1000), `BUDPIPELINE_RATE_LIMIT_STARTS_PER_MINUTE`
    /// (120; both 0 to 1,000,000, 0 = off), `BUDPIPELINE_RATE_LIMIT_SERVICE` (`false`; `true` or
    /// `false`), `BUDPIPELINE_RATE_LIMIT_MAX_KEYS` (100,000; 1 to 10,000,000),
    /// `BUDPIPELINE_RATE_LIMIT_PROXY_HOPS` (0; 0 to 16).
    static func from(environment: [String: String]) throws(ConfigurationError) -> RateLimitSettings {
        var settings = RateLimitSettings()
        if let reads = try APIConfiguration.integer("BUDPIPELINE_RATE_LIMIT_READS_PER_MINUTE", in: environment, range: perMinuteRange) {
            settings.readsPerMinute = reads
        }
        if let starts = try APIConfiguration.integer("BUDPIPELINE_RATE_LIMIT_STARTS_PER_MINUTE", in: environment, range: perMinuteRange) {
            settings.startsPerMinute = starts
        }
        if let text = environment["BUDPIPELINE_RATE_LIMIT_SERVICE"], !text.isEmpty {
            switch text.lowercased() {
            case "true", "1", "yes": settings.limitsServiceCaller = true
            case "false", "0", "no": settings.limitsServiceCaller = false
            default: throw ConfigurationError("BUDPIPELINE_RATE_LIMIT_SERVICE=\(text) is not true or false")
            }
        }
        if let maximum = try APIConfiguration.integer("BUDPIPELINE_RATE_LIMIT_MAX_KEYS", in: environment, range: maximumKeysRange) {
            settings.maximumKeys = maximum
        }
        if let hops = try APIConfiguration.integer("BUDPIPELINE_RATE_LIMIT_PROXY_HOPS", in: environment, range: trustedProxyHopsRange) {
            settings.trustedProxyHops = hops
        }
        return settings
    }
}
