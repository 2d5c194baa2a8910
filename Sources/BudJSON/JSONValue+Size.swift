extension JSONValue {
    /// What ``measure(limit:)`` found.
    public enum Measure: Sendable, Equatable {
        /// The compact JSON text would be this many bytes.
        case fits(bytes: Int)
        /// The text would be longer than the limit.
        case tooLarge
        /// Containers nest deeper than ``maximumNestingDepth``, which the reader refuses.
        case tooDeep
    }

    /// The length in bytes of the value's compact JSON text, as ``serialized(options:)`` writes it,
    /// counted without writing it. Stops as soon as the count passes `limit` or a container nests
    /// deeper than ``maximumNestingDepth``; works without recursion, so any value can be measured.
    public func measure(limit: Int) -> Measure {
        var total = 0
        var pending: [(value: JSONValue, depth: Int)] = [(self, 0)]
        while let (value, depth) = pending.popLast() {
            switch value {
            case .null: total += 4
            case .bool(let flag): total += flag ? 4 : 5
            case .int(let number): total += Self.decimalLength(number)
            case .double(let number): total += number.isFinite ? number.description.utf8.count : 4
            case .string(let text):
                guard let length = Self.encodedLength(text, limit: limit - total) else { return .tooLarge }
                total += length
            case .array(let elements):
                guard depth < Self.maximumNestingDepth else { return .tooDeep }
                // Each element takes at least one byte: refuse a long list before looking inside.
                guard elements.count <= limit, total + 2 * elements.count + 1 <= limit else { return .tooLarge }
                total += elements.isEmpty ? 2 : elements.count + 1
                for element in elements { pending.append((element, depth + 1)) }
            case .object(let members):
                guard depth < Self.maximumNestingDepth else { return .tooDeep }
                // Each member takes at least five bytes (`"":0,`).
                guard members.count <= limit, total + 5 * members.count + 1 <= limit else { return .tooLarge }
                total += members.isEmpty ? 2 : members.count + 1
                for member in members {
                    guard let length = Self.encodedLength(member.key, limit: limit - total) else { return .tooLarge }
                    total += length + 1
                    pending.append((member.value, depth + 1))
                }
            }
            guard total <= limit else { return .tooLarge }
        }
        return .fits(bytes: total)
    }

    private static func decimalLength(_ number: Int) -> Int {
        var magnitude = number.magnitude
        var length = number < 0 ? 2 : 1
        while magnitude >= 10 {
            magnitude /= 10
            length += 1
        }
        return length
    }

    /// The length of `text` as a JSON string literal (quotes and escapes included), or `nil`
    /// when it is longer than `limit`.
    private static func encodedLength(_ text: String, limit: Int) -> Int? {
        var length = 2
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), 0x08, 0x09, 0x0A, 0x0C, 0x0D: length += 2
            case 0..<0x20: length += 6
            default: length += 1
            }
            if length > limit { return nil }
        }
        return length <= limit ? length : nil
    }
}
