import Foundation

/// The secrets written in a libpq connection string, so that text quoting it can be cleaned.
///
/// libpq's error messages quote parts of the connection string it could not use: a whole URI it
/// rejects, a percent-encoded token it cannot decode, or a host name — which, when a password holds
/// an unencoded `@`, is the end of the password. Every message built from a connection attempt goes
/// through ``scrub(_:)`` before anyone (a log, a terminal) sees it.
struct ConnectionSecrets: Sendable {
    /// Texts to hide, longest first (so that no shorter piece leaves part of a longer one shown).
    let secrets: [String]

    /// Pieces shorter than this are not hidden on their own: they cannot give much away, and
    /// hiding them would make every message unreadable.
    static let shortestPiece = 3

    init(connectionInfo: String) {
        var found: Set<String> = []
        for password in Self.passwords(in: connectionInfo) {
            found.insert(password)
            if let decoded = password.removingPercentEncoding { found.insert(decoded) }
            // With an unencoded '@', libpq takes the password to end at the first '@' and the
            // host to start after it: each side of every '@' can be quoted on its own.
            var rest = Substring(password)
            while let at = rest.firstIndex(of: "@") {
                found.insert(String(password[..<at]))
                rest = rest[rest.index(after: at)...]
                found.insert(String(rest))
            }
        }
        secrets = found.filter { $0.count >= Self.shortestPiece }.sorted { $0.count > $1.count }
    }

    /// `text` with every secret replaced by `***`.
    func scrub(_ text: String) -> String {
        var text = text
        for secret in secrets { text = text.replacingOccurrences(of: secret, with: "***") }
        return text
    }

    /// The passwords a connection string may carry: the user-info password of a URI (read both as
    /// ending at the last '@' and at the first), and `password` / `sslpassword` values of its
    /// query or of a keyword string.
    private static func passwords(in info: String) -> [String] {
        var passwords: [String] = []
        if let schemeEnd = info.range(of: "://") {
            let authorityEnd = info[schemeEnd.upperBound...].firstIndex { "/?#".contains($0) } ?? info.endIndex
            let authority = info[schemeEnd.upperBound..<authorityEnd]
            if let lastAt = authority.lastIndex(of: "@"), let colon = authority[..<lastAt].firstIndex(of: ":") {
                passwords.append(String(authority[authority.index(after: colon)..<lastAt]))
            }
            if let firstAt = authority.firstIndex(of: "@"), let colon = authority[..<firstAt].firstIndex(of: ":") {
                passwords.append(String(authority[authority.index(after: colon)..<firstAt]))
            }
        }
        // `password=…` in a URI query (`&`-separated) or a keyword string (space-separated, values
        // possibly in single quotes).
        for piece in info.split(whereSeparator: { $0 == "&" || $0 == "?" || $0 == " " }) {
            guard let equals = piece.firstIndex(of: "=") else { continue }
            let name = piece[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            guard name.hasSuffix("password") else { continue }
            var value = String(piece[piece.index(after: equals)...])
            if value.hasPrefix("'") { value.removeFirst() }
            if value.hasSuffix("'") { value.removeLast() }
            passwords.append(value)
        }
        return passwords
    }
}
