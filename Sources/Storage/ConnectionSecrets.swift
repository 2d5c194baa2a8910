import Foundation

/// The passwords written in a database connection string, for showing it and text quoting it
/// without them.
///
/// A connection string is a URI (`postgresql://user:password@host/db?sslpassword=…`) or a libpq
/// keyword string (`host=db password='…'`). Passwords are found without a URL parser, so that a
/// string no parser accepts — a password with an unencoded `@`, `/`, `?`, `#` or `%` — is masked
/// too: the user information runs to the **last** `@` of the string, and in it the password
/// follows the first `:`.
public struct ConnectionSecrets: Sendable {
    /// Texts to hide in free text, longest first (so that no shorter piece leaves part of a
    /// longer one shown).
    public let secrets: [String]

    /// Pieces shorter than this are not hidden in free text on their own: they cannot give much
    /// away, and hiding them would make every message unreadable. (``redacted(_:)`` hides a
    /// password of any length where it stands.)
    public static let shortestPiece = 3

    public init(connectionInfo: String) {
        var found: Set<String> = []
        for password in Self.passwordRanges(in: connectionInfo).map({ String(connectionInfo[$0]) }) {
            found.insert(password)
            if let decoded = password.removingPercentEncoding { found.insert(decoded) }
            // libpq reads the password as ending at the first '@' (or ':' or '/') and the host as
            // starting after it: each side of every such character can be quoted on its own.
            var start = password.startIndex
            for index in password.indices where "@:/?#".contains(password[index]) {
                found.insert(String(password[start..<index]))
                found.insert(String(password[password.index(after: index)...]))
                start = password.index(after: index)
            }
        }
        secrets = found.filter { $0.count >= Self.shortestPiece }.sorted { $0.count > $1.count }
    }

    /// `text` with every secret replaced by `***`.
    public func scrub(_ text: String) -> String {
        var text = text
        for secret in secrets { text = text.replacingOccurrences(of: secret, with: "***") }
        return text
    }

    /// `info` with each password replaced by `***` where it stands.
    public static func redacted(_ info: String) -> String {
        // Overlapping readings of one password (up to the first or the last '@') are one range.
        var merged: [Range<String.Index>] = []
        for range in passwordRanges(in: info).filter({ !$0.isEmpty }).sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = merged.last, range.lowerBound <= last.upperBound {
                merged[merged.count - 1] = last.lowerBound..<max(last.upperBound, range.upperBound)
            } else {
                merged.append(range)
            }
        }
        var text = info
        for range in merged.reversed() { text.replaceSubrange(range, with: "***") }
        return text
    }

    /// `text` with the user information of a URL in it (`scheme://user:password@host…`) replaced
    /// by `***`, for settings that are URLs but not database URLs (a Dapr endpoint, a public URL).
    public static func withoutURLCredentials(_ text: String) -> String {
        guard let schemeEnd = text.range(of: "://") else { return text }
        let authorityEnd = text[schemeEnd.upperBound...].firstIndex { "/?#".contains($0) } ?? text.endIndex
        guard let at = text[schemeEnd.upperBound..<authorityEnd].lastIndex(of: "@") else { return text }
        var shown = text
        shown.replaceSubrange(schemeEnd.upperBound..<at, with: "***")
        return shown
    }

    /// Where the passwords of `info` stand: the user-information password of a URI (read as
    /// ending at the last `@`, and — as libpq may read it — at the first), and the values of
    /// `password` / `sslpassword` (any key ending in `password`) in a URI query or a keyword
    /// string, single-quoted values included.
    static func passwordRanges(in info: String) -> [Range<String.Index>] {
        var ranges: [Range<String.Index>] = []
        var queryStart = info.startIndex
        if let schemeEnd = info.range(of: "://") {
            let afterScheme = info[schemeEnd.upperBound...]
            if let lastAt = afterScheme.lastIndex(of: "@") {
                let userInfo = afterScheme[..<lastAt]
                if let colon = userInfo.firstIndex(of: ":") {
                    ranges.append(info.index(after: colon)..<lastAt)
                    if let firstAt = userInfo.firstIndex(of: "@"), firstAt > colon { ranges.append(info.index(after: colon)..<firstAt) }
                }
                queryStart = lastAt
            }
        }
        // key=value pairs: after '?' or '&' in a URI, after a blank in a keyword string.
        var index = queryStart
        while index < info.endIndex {
            guard let equals = info[index...].firstIndex(of: "=") else { break }
            // libpq allows blanks around '=' in a keyword string: `password = secret`.
            var keyEnd = equals
            while keyEnd > index, " \t".contains(info[info.index(before: keyEnd)]) { keyEnd = info.index(before: keyEnd) }
            let keyStart = info[index..<keyEnd].lastIndex { " \t?&".contains($0) }.map { info.index(after: $0) } ?? index
            let key = info[keyStart..<keyEnd].lowercased()
            var valueStart = info.index(after: equals)
            while valueStart < info.endIndex, " \t".contains(info[valueStart]) { valueStart = info.index(after: valueStart) }
            var valueEnd: String.Index
            if valueStart < info.endIndex, info[valueStart] == "'" {
                valueStart = info.index(after: valueStart)
                valueEnd = valueStart
                while valueEnd < info.endIndex, info[valueEnd] != "'" {
                    if info[valueEnd] == "\\", info.index(after: valueEnd) < info.endIndex { valueEnd = info.index(after: valueEnd) }
                    valueEnd = info.index(after: valueEnd)
                }
            } else {
                valueEnd = info[valueStart...].firstIndex { " \t&#".contains($0) } ?? info.endIndex
            }
            if key.hasSuffix("password") { ranges.append(valueStart..<valueEnd) }
            index = valueEnd < info.endIndex ? info.index(after: valueEnd) : valueEnd
        }
        return ranges
    }
}
