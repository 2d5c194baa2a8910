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
    /// A new UUID for a record, lower-case: version 7 (RFC 9562), the Unix time in milliseconds
    /// followed by 74 bits from the system's secure random source.
    ///
    /// Ids made later sort after those made earlier (to the millisecond), so a new row's key goes
    /// to the end of its table's primary-key index, on a page that is in memory already, instead
    /// of to a random page that must be read and then written back whole (measured: see
    /// docs/performance.md, "End to end"). The random bits come straight from `getrandom`:
    /// Foundation's `UUID()` on Linux opens and reads `/dev/urandom` for every id.
    public static func random() -> String {
        var generator = SystemRandomNumberGenerator()
        // 0 before 1970 (or on a clock that cannot be read), at most 48 bits.
        let now = Date().timeIntervalSince1970 * 1000
        let milliseconds: UInt64 = now.isFinite && now > 0 ? UInt64(Swift.min(now, 281_474_976_710_655)) : 0
        let randomHigh = generator.next() as UInt64
        let randomLow = generator.next() as UInt64
        // unix_ts_ms (48 bits) | version 7 (4 bits) | rand_a (12 bits)
        let high = (milliseconds & 0xFFFF_FFFF_FFFF) << 16 | 0x7000 | (randomHigh & 0x0FFF)
        // variant 0b10 (2 bits) | rand_b (62 bits)
        let low = (randomLow & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
        return text(high: high, low: low)
    }

    /// A new UUID that tells nothing and cannot be guessed, lower-case: version 4 (RFC 9562), 122
    /// bits from the system's secure random source. For records whose id may be all a caller
    /// needs to use them — a webhook without authentication is called by its id alone — and that
    /// are few, so that where their keys land in the index does not matter.
    public static func unguessable() -> String {
        var generator = SystemRandomNumberGenerator()
        let high = ((generator.next() as UInt64) & 0xFFFF_FFFF_FFFF_0FFF) | 0x4000
        let low = ((generator.next() as UInt64) & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
        return text(high: high, low: low)
    }

    /// The `8-4-4-4-12` form of the UUID whose 128 bits are `high` then `low`.
    private static func text(high: UInt64, low: UInt64) -> String {
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
