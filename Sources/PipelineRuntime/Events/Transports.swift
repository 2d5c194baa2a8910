public import BudJSON
public import Foundation
public import PipelineEngine
import Synchronization

/// One message for one topic.
public struct OutgoingMessage: Sendable, Equatable {
    public var topic: String
    public var body: JSONObject
    /// The internal event type (`step_completed`, …): the CloudEvent `type`.
    public var eventType: String
    /// Stable across redeliveries of the same outbox event to the same topic: the CloudEvent `id`.
    public var messageID: String
    public var executionID: ExecutionID?
    /// The W3C trace context the message carries (`traceparent`, and `tracestate` when there is
    /// one), sent as publish metadata: every event of an execution is in the execution's trace
    /// without a new top-level key in the body (see ``ExecutionTracing``).
    public var traceContext: [String: String]

    public init(
        topic: String, body: JSONObject, eventType: String, messageID: String, executionID: ExecutionID?,
        traceContext: [String: String] = [:]
    ) {
        self.topic = topic
        self.body = body
        self.eventType = eventType
        self.messageID = messageID
        self.executionID = executionID
        self.traceContext = traceContext
    }
}

/// Why a message was not accepted.
public struct PublishError: Error, Sendable, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// Where published messages go.
public protocol MessageTransport: Sendable {
    /// Publishes one message; returns once it was accepted, throws otherwise.
    func publish(_ message: OutgoingMessage) async throws(PublishError)
}

/// Dapr's HTTP publish API: `POST {endpoint}/v1.0/publish/{pubsub}/{topic}` with the body as a
/// CloudEvent (`application/cloudevents+json`, so Dapr does not wrap it) and the CloudEvent id,
/// source, type and traceparent as publish metadata — not in the body, whose consumers reject
/// unknown keys.
public struct DaprTransport: MessageTransport {
    public let endpoint: String
    /// Sent as `dapr-api-token`; never shown (see ``SecretText``).
    public let apiToken: SecretText?
    public let pubsubName: String
    public let timeout: TimeInterval

    public init(endpoint: String, apiToken: SecretText?, pubsubName: String, timeout: TimeInterval = 10) {
        self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        self.apiToken = apiToken
        self.pubsubName = pubsubName
        self.timeout = timeout
    }

    public func publish(_ message: OutgoingMessage) async throws(PublishError) {
        guard var components = URLComponents(string: "\(endpoint)/v1.0/publish/\(pubsubName)/\(message.topic)") else {
            throw PublishError("cannot build a publish URL from \(endpoint), \(pubsubName) and \(message.topic)")
        }
        var metadata = [
            URLQueryItem(name: "metadata.cloudevent.id", value: message.messageID),
            URLQueryItem(name: "metadata.cloudevent.source", value: "budpipeline"),
            URLQueryItem(name: "metadata.cloudevent.type", value: message.eventType),
        ]
        for key in ["traceparent", "tracestate"] {
            if let value = message.traceContext[key] { metadata.append(URLQueryItem(name: "metadata.cloudevent.\(key)", value: value)) }
        }
        components.queryItems = metadata
        guard let url = components.string else { throw PublishError("cannot build a publish URL for topic \(message.topic)") }
        var headers = [("Content-Type", "application/cloudevents+json")]
        if let apiToken { headers.append(("dapr-api-token", apiToken.revealed)) }
        let answer: OutboundHTTP.Answer
        do {
            answer = try await OutboundHTTP.send(
                "POST", to: url, headers: headers, body: JSONValue.object(message.body).serialized(), timeout: .seconds(timeout),
                maximumAnswerBytes: 64 * 1024)
        } catch {
            throw PublishError("Dapr did not answer the publish to \(message.topic): \(error)")
        }
        guard (200..<300).contains(answer.status) else {
            let text = String(decoding: answer.body.prefix(300), as: UTF8.self)
            throw PublishError("Dapr answered \(answer.status) to the publish to \(message.topic): \(text)")
        }
    }
}

/// The in-process bus: live events for subscribers in this process (the execution stream), and,
/// without Dapr, the callback-topic messages too. Best effort: a subscriber that falls more than
/// 1,000 messages behind loses the oldest.
public final class EventBus: Sendable {
    /// A message on the bus: an execution's internal event, or (with `topic`) a notification.
    public struct Message: Sendable, Equatable {
        public var topic: String?
        public var executionID: ExecutionID?
        public var eventType: String
        public var payload: JSONValue
        /// The execution's version after the transition that made the event, when known: a stream
        /// that finds the execution at a later version without its events read it again.
        public var version: Int? = nil

        public init(topic: String?, executionID: ExecutionID?, eventType: String, payload: JSONValue, version: Int? = nil) {
            self.topic = topic
            self.executionID = executionID
            self.eventType = eventType
            self.payload = payload
            self.version = version
        }

        /// The event type of ``resync(_:)``.
        public static let resyncEventType = "budpipeline.resync"

        /// Tells the streams of `executionID` that events may have been missed: they read the
        /// execution again and send it as a `snapshot`.
        public static func resync(_ executionID: ExecutionID) -> Message {
            Message(topic: nil, executionID: executionID, eventType: resyncEventType, payload: .null)
        }
    }

    /// Identifies one subscription, for ``unsubscribe(_:)``.
    public typealias SubscriptionID = UInt64

    /// Subscribers by the execution they follow, so that a message reaches its execution's
    /// subscribers without a look at everyone else's.
    private struct Subscribers {
        var lastID: SubscriptionID = 0
        var toEverything: [SubscriptionID: AsyncStream<Message>.Continuation] = [:]
        var byExecution: [ExecutionID: [SubscriptionID: AsyncStream<Message>.Continuation]] = [:]
        var executionOf: [SubscriptionID: ExecutionID] = [:]
    }

    private let subscribers = Mutex(Subscribers())

    public init() {}

    /// Messages from now on, of one execution or of all; the stream ends when `unsubscribe` is
    /// called with the returned id.
    public func subscribe(executionID: ExecutionID?) -> (id: SubscriptionID, messages: AsyncStream<Message>) {
        let (stream, continuation) = AsyncStream<Message>.makeStream(bufferingPolicy: .bufferingNewest(1000))
        let id = subscribers.withLock { subscribers in
            subscribers.lastID &+= 1
            let id = subscribers.lastID
            if let executionID {
                subscribers.byExecution[executionID, default: [:]][id] = continuation
                subscribers.executionOf[id] = executionID
            } else {
                subscribers.toEverything[id] = continuation
            }
            return id
        }
        continuation.onTermination = { [weak self] _ in self?.unsubscribe(id) }
        return (id, stream)
    }

    public func unsubscribe(_ id: SubscriptionID) {
        let removed = subscribers.withLock { subscribers -> AsyncStream<Message>.Continuation? in
            guard let executionID = subscribers.executionOf.removeValue(forKey: id) else {
                return subscribers.toEverything.removeValue(forKey: id)
            }
            let continuation = subscribers.byExecution[executionID]?.removeValue(forKey: id)
            if subscribers.byExecution[executionID]?.isEmpty == true { subscribers.byExecution[executionID] = nil }
            return continuation
        }
        removed?.finish()
    }

    public func publish(_ message: Message) {
        let receivers = subscribers.withLock { subscribers in
            var receivers = Array(subscribers.toEverything.values)
            if let executionID = message.executionID, let following = subscribers.byExecution[executionID] {
                receivers += following.values
            }
            return receivers
        }
        for receiver in receivers { receiver.yield(message) }
    }

    /// How many subscribers are listening.
    public var subscriberCount: Int { subscribers.withLock { $0.toEverything.count + $0.executionOf.count } }
}
