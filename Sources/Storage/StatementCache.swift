/// The statements a connection has prepared, by SQL text, at most `capacity` of them: when full,
/// the least recently used eighth is evicted and handed back, for the backend to release on the
/// server or in the library. Memory per connection is therefore bounded however many distinct
/// statements the process runs, and a statement used often stays prepared.
///
/// A value type owned by one connection (and so by one thread).
package struct StatementCache<Value> {
    private struct Entry {
        var value: Value
        var lastUse: UInt64
    }

    package let capacity: Int
    private var entries: [String: Entry] = [:]
    private var clock: UInt64 = 0

    package init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    package var count: Int { entries.count }

    /// The value prepared for `sql`, marked as just used.
    package mutating func value(for sql: String) -> Value? {
        guard var entry = entries[sql] else { return nil }
        clock &+= 1
        entry.lastUse = clock
        entries[sql] = entry
        return entry.value
    }

    /// Remembers `value` for `sql` and returns the values evicted to make room (and the value
    /// `sql` had before, if any), which the caller releases.
    @discardableResult
    package mutating func insert(_ value: Value, for sql: String) -> [Value] {
        var released: [Value] = []
        if let previous = entries[sql] {
            released.append(previous.value)
        } else if entries.count >= capacity {
            let evicting = max(1, capacity / 8)
            let oldest = entries.sorted { $0.value.lastUse < $1.value.lastUse }.prefix(evicting)
            for (sql, entry) in oldest {
                entries[sql] = nil
                released.append(entry.value)
            }
        }
        clock &+= 1
        entries[sql] = Entry(value: value, lastUse: clock)
        return released
    }

    /// Forgets every statement and returns their values, for the caller to release.
    package mutating func removeAll() -> [Value] {
        defer { entries = [:] }
        return entries.values.map(\.value)
    }
}
