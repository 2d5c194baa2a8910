public import BudJSON
public import BudPipelineHost
import Foundation

/// Where and how outbox events are published.
public struct PublishingConfiguration: Sendable, Equatable {
    /// The Dapr sidecar's HTTP endpoint; without one, messages go to the in-process bus only.
    public var daprEndpoint: String?
    /// `DAPR_API_TOKEN`: sent to the sidecar; never shown (see ``SecretText``).
    public var daprAPIToken: SecretText?
    public var pubsubName: String
    /// budnotify's topic: executions with `subscriber_ids` also publish there.
    public var notifyTopic: String?
    /// Attempts before an event is given up on (kept with status `DEAD`).
    public var maximumAttempts: Int
    /// The longest wait between two attempts (the wait doubles from half a second).
    public var maximumBackoff: Duration
    /// How often the outbox is looked at for events other processes wrote or left behind.
    public var pollInterval: Duration

    public init(
        daprEndpoint: String? = nil, daprAPIToken: SecretText? = nil, pubsubName: String = "pubsub", notifyTopic: String? = nil,
        maximumAttempts: Int = 20, maximumBackoff: Duration = .seconds(60), pollInterval: Duration = .seconds(1)
    ) {
        self.daprEndpoint = daprEndpoint
        self.daprAPIToken = daprAPIToken
        self.pubsubName = pubsubName
        self.notifyTopic = notifyTopic
        self.maximumAttempts = maximumAttempts
        self.maximumBackoff = maximumBackoff
        self.pollInterval = pollInterval
    }

    /// `DAPR_HTTP_ENDPOINT` (none; `DAPR_HTTP_PORT` alone means `http://127.0.0.1:<port>`),
    /// `DAPR_API_TOKEN`, `PUBSUB_NAME` (`pubsub`), `NOTIFY_SERVICE_TOPIC`,
    /// `BUDPIPELINE_PUBLISH_MAX_ATTEMPTS` (20), `BUDPIPELINE_PUBLISH_MAX_BACKOFF_SECONDS` (60).
    public static func from(environment: [String: String]) throws(ConfigurationError) -> PublishingConfiguration {
        var configuration = PublishingConfiguration()
        let reader = EnvironmentReader(environment)
        if let endpoint = environment["DAPR_HTTP_ENDPOINT"], !endpoint.isEmpty {
            guard endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://") else {
                throw ConfigurationError("DAPR_HTTP_ENDPOINT=\(endpoint) is not an http:// or https:// URL")
            }
            configuration.daprEndpoint = endpoint
        } else if environment["DAPR_HTTP_PORT"]?.isEmpty == false {
            configuration.daprEndpoint = "http://127.0.0.1:\(try reader.integer("DAPR_HTTP_PORT", default: 3500, range: 1...65_535))"
        }
        if let token = environment["DAPR_API_TOKEN"], !token.isEmpty { configuration.daprAPIToken = SecretText(token) }
        if let name = environment["PUBSUB_NAME"], !name.isEmpty {
            guard Self.isName(name) else { throw ConfigurationError("PUBSUB_NAME=\(name) may hold letters, digits, '.', '_' and '-' only") }
            configuration.pubsubName = name
        }
        if let topic = environment["NOTIFY_SERVICE_TOPIC"], !topic.isEmpty {
            guard Self.isName(topic) else {
                throw ConfigurationError("NOTIFY_SERVICE_TOPIC=\(topic) may hold letters, digits, '.', '_' and '-' only")
            }
            configuration.notifyTopic = topic
        }
        configuration.maximumAttempts = try reader.integer("BUDPIPELINE_PUBLISH_MAX_ATTEMPTS", default: 20, range: 1...1000)
        configuration.maximumBackoff = .milliseconds(
            Int(try reader.number("BUDPIPELINE_PUBLISH_MAX_BACKOFF_SECONDS", default: 60, range: 0.1...86_400) * 1000))
        return configuration
    }

    /// The wait before attempt `attempt + 1` after `attempt` failures: 0.5 s doubling, at most
    /// `maximumBackoff`, with up to a fifth taken off at random so that retries spread out.
    public func backoff(afterFailures attempt: Int, random: Double = Double.random(in: 0..<1)) -> Duration {
        let seconds = min(maximumBackoff / .seconds(1), 0.5 * pow(2, Double(max(0, attempt - 1))))
        return .milliseconds(Int(seconds * (1 - 0.2 * random) * 1000))
    }

    /// Whether `text` can name a pub/sub component or topic: 1–255 ASCII letters, digits, `.`,
    /// `_` or `-` (safe in a publish URL's path).
    public static func isName(_ text: String) -> Bool {
        // "." and ".." would be read as path steps by HTTP clients, leaving the topic's segment.
        text != "." && text != ".." && (1...255).contains(text.count)
            && text.unicodeScalars.allSatisfy {
                $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0))
            }
    }
}
