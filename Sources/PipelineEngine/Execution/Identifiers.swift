import Foundation

/// An id that crosses the store, the runtime and the HTTP layer as its own type, so that an id of
/// one kind cannot be passed where another is expected.
///
/// The text is what is stored and sent: a lowercase UUID for every record this server creates.
/// Ids read back from storage are kept as they are; ``init(parsing:)`` is the checked way in for
/// text from a client.
public protocol TextIdentifier: Hashable, Comparable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    var rawValue: String { get }
    /// Wraps text known to name such a record (read back from storage, or a test's literal).
    init(_ rawValue: String)
}

extension TextIdentifier {
    public init(stringLiteral value: String) { self.init(value) }

    /// The id in `text` when it is a UUID (as ``UUIDText/normalized(_:)`` reads one), lowercased
    /// as stored; `nil` otherwise.
    public init?(parsing text: String) {
        guard let normalized = UUIDText.normalized(text) else { return nil }
        self.init(normalized)
    }

    /// A fresh id for a new record.
    public static func generate() -> Self { Self(UUIDText.random()) }

    public var description: String { rawValue }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The identity of one execution.
public struct ExecutionID: TextIdentifier {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
}

/// The identity of one saved pipeline definition.
public struct PipelineID: TextIdentifier {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
}

/// Reading the UUIDs that name executions, pipelines and triggers in paths and bodies, and making
/// new ones.
public enum UUIDText {
    /// A new random (version 4) UUID, lower-case, from the system's secure random source.
    ///
    /// Foundation's `UUID()` on Linux opens and reads `/dev/urandom` for every id; a server
    /// making a dozen ids per execution spent more time in those system calls than in making the
    /// text. This asks the kernel for the 16 bytes directly (`getrandom`).
    public static func random() -> String {
        var generator = SystemRandomNumberGenerator()
        var high = generator.next() as UInt64
        var low = generator.next() as UInt64
        high = (high & ~0xF000) | 0x4000  // version 4 in bits 12–15 of the third group
        low = (low & ~(0xC000 << 48)) | (0x8000 << 48)  // variant 10 in the top bits of the fourth group
        let digits = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(36)
        for (index, word) in [high, low].enumerated() {
            for nibble in 0..<16 {
                let position = index * 16 + nibble
                if position == 8 || position == 12 || position == 16 || position == 20 { text.append(UInt8(ascii: "-")) }
                text.append(digits[Int((word >> UInt64(60 - 4 * nibble)) & 0xF)])
            }
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// A UUID in its `8-4-4-4-12` hexadecimal form, any case, surrounding blanks ignored; written
    /// lower-case. Strict: Foundation's parser on Linux also takes signs such as `-3` for digits.
    public static func normalized(_ text: String) -> String? {
        let padded = text.first?.isWhitespace == true || text.last?.isWhitespace == true
        var utf8 = Array((padded ? text.trimmingCharacters(in: .whitespaces) : text).utf8)
        guard utf8.count == 36 else { return nil }
        for index in utf8.indices {
            let byte = utf8[index]
            let dash = index == 8 || index == 13 || index == 18 || index == 23
            switch byte {
            case UInt8(ascii: "-"):
                guard dash else { return nil }
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"):
                guard !dash else { return nil }
            case UInt8(ascii: "A")...UInt8(ascii: "F"):
                guard !dash else { return nil }
                utf8[index] = byte + 32
            default: return nil
            }
        }
        return String(decoding: utf8, as: UTF8.self)
    }
}
