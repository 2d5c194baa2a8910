public import BudJSON
public import PipelineEngine
import Storage

/// What one process tells the others over the group's channel (see docs/operations.md,
/// "Scaling out"): one compact JSON object per message, small enough for the channel.
///
/// Every message names its sender (`w`), which ignores its own.
public struct ClusterMessage: Sendable, Equatable {
    public enum Body: Sendable, Equatable {
        /// Work any process may take became available (a start left to any process, claims
        /// released by a process that stopped): look for it now instead of at the next poll.
        case wake
        /// A process joined: the others tell it which executions they stream.
        case hello
        /// The sender streams these executions; it says so again while it does (the others forget
        /// a watch not repeated within ``ClusterRelay/watchLifetime``).
        case watch([ExecutionID])
        /// The sender stopped streaming these executions.
        case unwatch([ExecutionID])
        /// An event of an execution whose transition the sender committed, as streams show it
        /// (secrets masked), with the execution's version after that transition. `payload` is
        /// `nil` when the event did not fit in a message: a stream then reads the execution again.
        case live(executionID: ExecutionID, version: Int?, eventType: String, payload: JSONValue?)
    }

    public var sender: String
    public var body: Body

    public init(sender: String, body: Body) {
        self.sender = sender
        self.body = body
    }

    /// The message as sent. A live event too large for the channel goes without its payload.
    public func encoded() -> String {
        var object: JSONObject = ["w": .string(sender)]
        switch body {
        case .wake: object["k"] = "wake"
        case .hello: object["k"] = "hello"
        case .watch(let ids):
            object["k"] = "watch"
            object["x"] = .array(ids.map { .string($0.rawValue) })
        case .unwatch(let ids):
            object["k"] = "unwatch"
            object["x"] = .array(ids.map { .string($0.rawValue) })
        case .live(let executionID, let version, let eventType, let payload):
            object["k"] = "live"
            object["x"] = .string(executionID.rawValue)
            object["t"] = .string(eventType)
            if let version { object["v"] = .int(version) }
            if let payload {
                var full = object
                full["p"] = payload
                let text = JSONValue.object(full).serializedString()
                if text.utf8.count <= maximumClusterPayloadBytes { return text }
            }
        }
        return JSONValue.object(object).serializedString()
    }

    /// Reads a message; `nil` for anything that is not one. Any session of the database can send on
    /// the channel, so nothing is taken on trust: execution ids must be UUIDs, an event type a
    /// short name of lower-case letters, digits, `_` and `.` (it becomes an `event:` line of a
    /// stream, where a line break would forge events), not the streams' own resync marker.
    public init?(decoding text: String) {
        guard text.utf8.count <= maximumClusterPayloadBytes, let value = try? JSONValue(parsing: text),
            let sender = value["w"]?.stringValue, sender.utf8.count <= 300, let kind = value["k"]?.stringValue
        else { return nil }
        func identifiers() -> [ExecutionID]? {
            guard case .array(let items)? = value["x"] else { return nil }
            return items.compactMap { $0.stringValue.flatMap(ExecutionID.init(parsing:)) }
        }
        let body: Body
        switch kind {
        case "wake": body = .wake
        case "hello": body = .hello
        case "watch":
            guard let ids = identifiers() else { return nil }
            body = .watch(ids)
        case "unwatch":
            guard let ids = identifiers() else { return nil }
            body = .unwatch(ids)
        case "live":
            guard let id = value["x"]?.stringValue.flatMap(ExecutionID.init(parsing:)), let eventType = value["t"]?.stringValue,
                Self.isEventType(eventType)
            else { return nil }
            let version: Int? =
                switch value["v"] {
                case .int(let number)?: number
                default: nil
                }
            body = .live(executionID: id, version: version, eventType: eventType, payload: value["p"])
        default: return nil
        }
        self.init(sender: sender, body: body)
    }

    /// Whether `text` may name an event: 1–64 of `a-z`, `0-9`, `_`, `.`, and not the resync marker.
    static func isEventType(_ text: String) -> Bool {
        (1...64).contains(text.utf8.count) && text != EventBus.Message.resyncEventType
            && text.utf8.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x5F || $0 == 0x2E }
    }
}
