/// One line of a log: plugins' messages and `log` steps' text are cut to a size before they are
/// written, so one call cannot flood the log (see docs/operations.md, "Limits").
public enum LogLine {
    /// `text` when it has at most `maximumBytes` bytes of UTF-8; otherwise its beginning (cut at a
    /// character boundary) and a marker saying how long it was.
    public static func truncated(_ text: String, maximumBytes: Int) -> String {
        let length = text.utf8.count
        guard length > maximumBytes else { return text }
        let marker = " … [truncated: \(length) bytes in all]"
        var kept = ""
        var used = 0
        let room = max(0, maximumBytes - marker.utf8.count)
        for scalar in text.unicodeScalars {
            let size = UTF8.width(scalar)
            guard used + size <= room else { break }
            kept.unicodeScalars.append(scalar)
            used += size
        }
        return kept + marker
    }
}
