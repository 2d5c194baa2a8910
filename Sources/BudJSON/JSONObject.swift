/// A JSON object: members keep the order in which they were read or inserted; a key appears once.
///
/// Equality ignores member order, as JSON does. Members are stored in order in an array; objects
/// with more than ``indexThreshold`` members also keep a hash index, so small objects (the common
/// case for parameters and outputs) cost no hashing at all.
public struct JSONObject: Sendable {
    /// Objects larger than this keep a key index for lookups.
    static let indexThreshold = 12

    private var members: [(key: String, value: JSONValue)]
    private var index: [String: Int]?

    /// An empty object.
    public init() {
        members = []
    }

    /// An object with `pairs` in order; a repeated key keeps its first position and its last value.
    public init(_ pairs: some Sequence<(String, JSONValue)>) {
        members = []
        members.reserveCapacity(pairs.underestimatedCount)
        for (key, value) in pairs { self[key] = value }
    }

    /// The value of `key`; setting `nil` removes the member, setting a new key appends it.
    public subscript(key: String) -> JSONValue? {
        get {
            position(of: key).map { members[$0].value }
        }
        set {
            if let position = position(of: key) {
                if let newValue {
                    members[position].value = newValue
                } else {
                    removeMember(at: position)
                }
            } else if let newValue {
                members.append((key, newValue))
                if index != nil {
                    index?[key] = members.count - 1
                } else if members.count > Self.indexThreshold {
                    rebuildIndex()
                }
            }
        }
    }

    /// The keys, in order.
    public var keys: [String] { members.map(\.key) }

    /// The values, in key order.
    public var values: [JSONValue] { members.map(\.value) }

    public var count: Int { members.count }

    public var isEmpty: Bool { members.isEmpty }

    /// Removes `key` and returns its value.
    @discardableResult
    public mutating func removeValue(forKey key: String) -> JSONValue? {
        guard let position = position(of: key) else { return nil }
        let value = members[position].value
        removeMember(at: position)
        return value
    }

    /// Adds the members of `other`; its values win for keys both have.
    public mutating func merge(_ other: JSONObject) {
        for (key, value) in other.members { self[key] = value }
    }

    /// A copy with the members of `other` added; its values win for keys both have.
    public func merging(_ other: JSONObject) -> JSONObject {
        var merged = self
        merged.merge(other)
        return merged
    }

    private func position(of key: String) -> Int? {
        if let index { return index[key] }
        let length = key.utf8.count
        return members.firstIndex { $0.key.utf8.count == length && $0.key == key }
    }

    private mutating func removeMember(at position: Int) {
        members.remove(at: position)
        if members.count > Self.indexThreshold {
            rebuildIndex()
        } else {
            index = nil
        }
    }

    private mutating func rebuildIndex() {
        var rebuilt: [String: Int] = [:]
        rebuilt.reserveCapacity(members.count)
        for (position, member) in members.enumerated() { rebuilt[member.key] = position }
        index = rebuilt
    }
}

extension JSONObject: Sequence {
    /// Iterates `(key, value)` pairs in order.
    public struct Iterator: IteratorProtocol {
        fileprivate var base: IndexingIterator<[(key: String, value: JSONValue)]>

        public mutating func next() -> (key: String, value: JSONValue)? {
            base.next()
        }
    }

    public func makeIterator() -> Iterator {
        Iterator(base: members.makeIterator())
    }

    public var underestimatedCount: Int { members.count }
}

extension JSONObject: Equatable {
    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        lhs.count == rhs.count && lhs.members.allSatisfy { member in rhs[member.key] == member.value }
    }
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(elements)
    }
}

extension JSONObject: CustomStringConvertible {
    /// The compact JSON text of the object.
    public var description: String { JSONValue.object(self).serializedString() }
}
