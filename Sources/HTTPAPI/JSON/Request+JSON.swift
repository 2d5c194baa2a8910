import BudJSON
import Hummingbird
import NIOCore

extension Request {
    /// The body as a JSON object. A missing or empty body is `{}` when `emptyAllowed` (routes that
    /// budapp calls without a body), a 422 otherwise; a body over `limit` bytes is a 413; text that
    /// is not a JSON object is a 422 naming what is wrong.
    mutating func jsonObject(limit: Int, emptyAllowed: Bool = false) async throws -> JSONObject {
        try Self.jsonObject(from: try await bodyBytes(limit: limit), emptyAllowed: emptyAllowed)
    }

    /// The whole body; one over `limit` bytes is a 413.
    mutating func bodyBytes(limit: Int) async throws -> ByteBuffer {
        do {
            return try await collectBody(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, code: "BODY_TOO_LARGE", message: "The request body is larger than \(limit) bytes")
        }
    }

    /// `buffer` read as ``jsonObject(limit:emptyAllowed:)`` reads a body.
    static func jsonObject(from buffer: ByteBuffer, emptyAllowed: Bool) throws(APIError) -> JSONObject {
        let bytes = buffer.readableBytesView
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            if emptyAllowed { return [:] }
            throw APIError.unprocessable(["body"], "Field required", type: "missing")
        }
        let value: JSONValue
        do {
            value = try JSONValue(parsing: Array(bytes))
        } catch {
            throw APIError.unprocessable(["body", .int(error.offset)], "JSON decode error: \(error.reason)", type: "json_invalid")
        }
        // PostgreSQL text cannot hold NUL: refuse it rather than store a truncated value.
        guard !Self.containsNUL(value) else {
            throw APIError.unprocessable(["body"], "Strings must not contain NUL (\\u0000) characters", type: "string_nul")
        }
        guard let object = value.objectValue else {
            throw APIError.unprocessable(["body"], "Input should be a valid dictionary or object", type: "model_attributes_type")
        }
        return object
    }

    private static func containsNUL(_ value: JSONValue) -> Bool {
        switch value {
        case .string(let text): text.utf8.contains(0)
        case .array(let items): items.contains(where: containsNUL)
        case .object(let object): object.keys.contains { $0.utf8.contains(0) } || object.values.contains(where: containsNUL)
        default: false
        }
    }
}
