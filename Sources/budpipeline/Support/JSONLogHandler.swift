import BudJSON
import Foundation
import Logging
import Storage
import Synchronization

/// Writes each log line to standard error as one JSON object (`LOG_FORMAT=json`), for log
/// collectors: `timestamp` (UTC, microseconds), `level`, `logger`, `message`, then every metadata
/// key, in order, as a field of its own (a key that would overwrite one of those four gets a `_` appended).
/// Values are strings, arrays and objects as the metadata holds them. A line never spans two
/// lines: JSON escapes every line break inside a value.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    /// Lines from several threads are written whole, one after another.
    private static let output = Mutex(())

    static let reserved: Set<String> = ["timestamp", "level", "logger", "message"]

    init(label: String, level: Logger.Level, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.logLevel = level
        self.metadataProvider = metadataProvider
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var line: JSONObject = [
            "timestamp": .string(SQLTimestamp.format(Date())), "level": .string(event.level.rawValue), "logger": .string(label),
            "message": .string(event.message.description),
        ]
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let given = event.metadata { merged.merge(given) { _, new in new } }
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            line[Self.reserved.contains(key) ? key + "_" : key] = Self.json(value)
        }
        var bytes = JSONValue.object(line).serialized()
        bytes.append(UInt8(ascii: "\n"))
        Self.output.withLock { _ in
            bytes.withUnsafeBytes { buffer in
                var offset = 0
                while offset < buffer.count, let base = buffer.baseAddress {
                    let written = write(STDERR_FILENO, base + offset, buffer.count - offset)
                    if written > 0 {
                        offset += written
                    } else if written < 0, errno == EINTR {
                        continue
                    } else {
                        return
                    }
                }
            }
        }
    }

    static func json(_ value: Logger.Metadata.Value) -> JSONValue {
        switch value {
        case .string(let text): .string(text)
        case .stringConvertible(let convertible): .string(convertible.description)
        case .array(let values): .array(values.map(json))
        case .dictionary(let entries): .object(JSONObject(entries.sorted { $0.key < $1.key }.map { ($0.key, json($0.value)) }))
        }
    }
}
