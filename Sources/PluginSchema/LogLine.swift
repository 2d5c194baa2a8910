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

    /// `text` on one line: line breaks and other control characters are written as escapes
    /// (`\n`, `\r`, `\u{1B}`), so that a message cannot start a line of its own in the log and
    /// pass for another's (tabs stay).
    public static func singleLine(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var line = ""
        line.reserveCapacity(text.utf8.count + 16)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": line += "\\n"
            case "\r": line += "\\r"
            case _ where needsEscape(scalar): line += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            default: line.unicodeScalars.append(scalar)
            }
        }
        return line
    }

    private static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09: false
        case 0x00...0x1F, 0x7F...0x9F, 0x2028, 0x2029: true
        default: false
        }
    }
}
