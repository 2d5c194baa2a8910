public import BudJSON

/// An event delivered to `POST /workflow-events`, unwrapped from its envelope.
///
/// Three shapes arrive: a structured CloudEvent whose notification fields sit at the top level
/// (budmicroframe publishes this way), a CloudEvent that wraps the event in `data`, and bare JSON
/// (budapp's flat `workflow_completed`). The event is `data` when the delivery has an object there
/// (or a string holding one), else the delivery itself.
public struct InboundEvent: Sendable, Equatable {
    /// The delivery's id (the CloudEvent `id`), used to recognise a redelivery.
    public let id: String?
    /// The CloudEvent `source`, when given.
    public let source: String?
    /// The event's own `type` (not the envelope's, when wrapped); `unknown` when absent.
    public let type: String
    /// The event itself.
    public let body: JSONObject
    /// The correlation id of the awaited work, looked up in the four places producers put it.
    public let workflowID: String?

    /// Reads a delivery; throws when it holds no event object.
    public init(delivery: JSONValue) throws(InboundEventError) {
        guard let envelope = delivery.objectValue else { throw .malformed("the event must be a JSON object") }
        let body: JSONObject
        switch envelope["data"] {
        case nil, .null?:
            body = envelope
        case .object(let data)?:
            body = data
        case .string(let text)?:
            guard let data = (try? JSONValue(parsing: text))?.objectValue else {
                throw .malformed("'data' must be a JSON object or a string holding one")
            }
            body = data
        case _?:
            throw .malformed("'data' must be a JSON object or a string holding one")
        }
        id = Self.text(envelope["id"]) ?? Self.text(body["id"])
        source = Self.text(envelope["source"]) ?? Self.text(body["source"])
        type = Self.text(body["type"]) ?? "unknown"
        self.body = body
        workflowID = Self.workflowID(in: body)
    }

    /// An event read before, kept with the workflow id it was read with.
    public init(id: String?, source: String?, body: JSONObject, workflowID: String) {
        self.id = id
        self.source = source
        type = Self.text(body["type"]) ?? "unknown"
        self.body = body
        self.workflowID = workflowID
    }

    /// `workflow_id` → `payload.workflow_id` → `notification_metadata.workflow_id` →
    /// `payload.content.result.workflow_id`; numbers are read as their text.
    public static func workflowID(in event: JSONObject) -> String? {
        let paths: [[String]] = [
            ["workflow_id"], ["payload", "workflow_id"], ["notification_metadata", "workflow_id"],
            ["payload", "content", "result", "workflow_id"],
        ]
        for path in paths {
            if let value = text(value(at: path, in: event)), !value.isEmpty { return value }
        }
        return nil
    }

    /// The user the event is about: its `user_id`, else (when that is absent or null)
    /// `payload.user_id`; a UUID, lower-cased. `nil` when the first of them present is not a UUID
    /// or neither is. Event triggers a user owns fire only for events about that user
    /// (docs/security.md).
    public var userID: String? {
        for path in [["user_id"], ["payload", "user_id"]] {
            guard let value = Self.value(at: path, in: body), !value.isNull else { continue }
            guard let text = Self.text(value) else { return nil }
            let lowered = text.lowercased()
            guard lowered.utf8.count == 36, UUIDText.isCanonical(lowered) else { return nil }
            return lowered
        }
        return nil
    }

    /// The value at a dotted path of the event (`payload.content.status`), `nil` when absent.
    public func value(atDottedPath path: String) -> JSONValue? {
        Self.value(at: path.split(separator: ".").map(String.init), in: body)
    }

    private static func value(at path: [String], in object: JSONObject) -> JSONValue? {
        var current: JSONValue = .object(object)
        for key in path {
            guard let next = current.objectValue?[key] else { return nil }
            current = next
        }
        return current
    }

    private static func text(_ value: JSONValue?) -> String? {
        switch value {
        case .string(let text)?: text
        case .int(let number)?: String(number)
        case .double(let number)?: number.rounded() == number && abs(number) < 1e15 ? String(Int(number)) : String(number)
        default: nil
        }
    }
}

/// Why an inbound event was not handled.
public enum InboundEventError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The delivery can never be handled (not an event); it should be dropped.
    case malformed(String)
    /// Handling failed for now (the database, or a plugin asked for redelivery); deliver it again.
    case retryLater(String)

    public var description: String {
        switch self {
        case .malformed(let message), .retryLater(let message): message
        }
    }
}

/// Checks the canonical text form of a UUID (8-4-4-4-12 hexadecimal digits, lower case).
enum UUIDText {
    static func isCanonical(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count == 36 else { return false }
        for (index, byte) in bytes.enumerated() {
            switch index {
            case 8, 13, 18, 23: guard byte == UInt8(ascii: "-") else { return false }
            default:
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
                else { return false }
            }
        }
        return true
    }
}
