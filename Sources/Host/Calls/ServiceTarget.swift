/// Where a plugin's service call goes: one app, and a method path (with an optional query) under
/// that app's service-invocation API — checked so that nothing a plugin passes, nor any value a
/// step put into the path, can reach another Dapr API or another app.
///
/// The invoker sends the call to `<sidecar>/v1.0/invoke/<app>/method/<path>[?<query>]`
/// (``invocationPath``); a target exists only when:
/// - the app id is a Dapr app id: 1–253 ASCII letters, digits, `-`, `_` and `.`, starting and
///   ending with a letter or digit;
/// - the path (one leading `/` allowed) is at most ``maximumPathBytes`` long, holds only
///   characters a URI path may hold unencoded (RFC 3986 `pchar` and `/`) and well-formed `%XX`
///   escapes, no `#` (fragment), `\` or control character, and does not begin with a URL scheme
///   (`http:`) — so it is never an absolute URL;
/// - percent-decoded again and again until nothing changes (at most ``maximumDecodingRounds``
///   times: double-encoded `%252e` counts as `.`), the path still holds no control character,
///   `\`, `?` or `#`, and none of its `/`-separated segments is empty, `.` or `..` (nor `.;x` or
///   `..;x`, which some servers read as `.` and `..`);
/// - the query, when there is one (after the first `?`), holds only characters a URI query may
///   hold unencoded and well-formed escapes, and no control character even once decoded.
///
/// A refusal names the problem, not the value, so that it can be logged and returned safely.
public struct ServiceTarget: Sendable, Equatable {
    /// The target app's Dapr id.
    public let appID: String
    /// The method path as sent: percent-encoded as the plugin wrote it, without a leading `/`.
    public let methodPath: String
    /// The query as sent, without its `?`; `nil` when there is none.
    public let query: String?

    /// The longest path (with its query) accepted, in bytes.
    public static let maximumPathBytes = 8192
    /// How many times over a path may be percent-encoded.
    public static let maximumDecodingRounds = 8
    /// The longest Dapr app id (a DNS name, for `app.namespace`).
    public static let maximumAppIDBytes = 253

    /// Checks `appID` and `path` (`models/42?user_id=u`, as the ABI's `bp_service_request.path`
    /// carries it); throws a refusal naming the problem.
    public init(appID: String, path: String) throws(ServiceRequestRefusal) {
        try Self.checkAppID(appID)
        let bytes = Array(path.utf8)
        guard bytes.count <= Self.maximumPathBytes else {
            throw ServiceRequestRefusal("the path is longer than \(Self.maximumPathBytes) bytes")
        }
        let split = bytes.firstIndex(of: UInt8(ascii: "?"))
        var pathBytes = Array(bytes[..<(split ?? bytes.endIndex)])
        let queryBytes = split.map { Array(bytes[($0 + 1)...]) }
        if pathBytes.first == UInt8(ascii: "/") { pathBytes.removeFirst() }
        try Self.checkPath(pathBytes)
        if let queryBytes { try Self.checkQuery(queryBytes) }
        self.appID = appID
        methodPath = String(decoding: pathBytes, as: UTF8.self)
        query = queryBytes.flatMap { $0.isEmpty ? nil : String(decoding: $0, as: UTF8.self) }
    }

    /// `v1.0/invoke/<app>/method/<path>[?<query>]`: the only Dapr API a target reaches.
    public var invocationPath: String {
        "v1.0/invoke/\(appID)/method/\(pathWithQuery)"
    }

    /// The method path with its query, as the plugin gave it (without a leading `/`).
    public var pathWithQuery: String {
        query.map { "\(methodPath)?\($0)" } ?? methodPath
    }

    // MARK: Checks

    private static func checkAppID(_ appID: String) throws(ServiceRequestRefusal) {
        let bytes = Array(appID.utf8)
        let allowed = bytes.allSatisfy {
            isAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".")
        }
        guard !bytes.isEmpty, bytes.count <= maximumAppIDBytes, allowed, let first = bytes.first, let last = bytes.last,
            isAlphanumeric(first), isAlphanumeric(last)
        else {
            throw ServiceRequestRefusal(
                "the app id is not a Dapr app id (1 to \(maximumAppIDBytes) letters, digits, '-', '_' and '.', "
                    + "starting and ending with a letter or digit)")
        }
    }

    private static func checkPath(_ raw: [UInt8]) throws(ServiceRequestRefusal) {
        guard !raw.isEmpty else { throw ServiceRequestRefusal("the path is empty") }
        try checkCharacters(raw, allowing: isPathByte, part: "path")
        if startsWithScheme(raw) { throw ServiceRequestRefusal("the path is an absolute URL, not a method path") }
        let decoded = try fullyDecoded(raw, part: "path")
        if let problem = forbiddenByte(in: decoded, forbidding: [UInt8(ascii: "\\"), UInt8(ascii: "?"), UInt8(ascii: "#")]) {
            throw ServiceRequestRefusal("the path holds \(problem) once percent-decoded")
        }
        if startsWithScheme(decoded) { throw ServiceRequestRefusal("the path is an absolute URL once percent-decoded") }
        for segment in decoded.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            guard !segment.isEmpty else { throw ServiceRequestRefusal("the path has an empty segment ('//' or a trailing '/')") }
            let name = segment.prefix { $0 != UInt8(ascii: ";") }
            if name.elementsEqual([UInt8(ascii: ".")]) {
                throw ServiceRequestRefusal("the path has a '.' segment")
            }
            if name.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) {
                throw ServiceRequestRefusal("the path has a '..' segment, which would leave the app's methods")
            }
        }
    }

    private static func checkQuery(_ raw: [UInt8]) throws(ServiceRequestRefusal) {
        try checkCharacters(raw, allowing: isQueryByte, part: "query")
        if let problem = forbiddenByte(in: try fullyDecoded(raw, part: "query"), forbidding: []) {
            throw ServiceRequestRefusal("the query holds \(problem) once percent-decoded")
        }
    }

    /// Refuses control characters, `\`, `#` and any other byte `allowed` does not take, and `%`
    /// not followed by two hexadecimal digits.
    private static func checkCharacters(
        _ raw: [UInt8], allowing allowed: (UInt8) -> Bool, part: String
    ) throws(ServiceRequestRefusal) {
        if let problem = forbiddenByte(in: raw, forbidding: [UInt8(ascii: "\\"), UInt8(ascii: "#")]) {
            throw ServiceRequestRefusal("the \(part) holds \(problem)")
        }
        var position = 0
        while position < raw.count {
            let byte = raw[position]
            if byte == UInt8(ascii: "%") {
                guard position + 2 < raw.count, hexValue(raw[position + 1]) != nil, hexValue(raw[position + 2]) != nil else {
                    throw ServiceRequestRefusal("the \(part) has a '%' that does not start a %XX escape")
                }
                position += 3
                continue
            }
            guard allowed(byte) else {
                throw ServiceRequestRefusal("the \(part) holds \(describe(byte)), which must be percent-encoded")
            }
            position += 1
        }
    }

    /// The first control character or byte of `forbidden` in `bytes`, described; `nil` when none.
    private static func forbiddenByte(in bytes: [UInt8], forbidding forbidden: Set<UInt8>) -> String? {
        guard let byte = bytes.first(where: { $0 < 0x20 || $0 == 0x7F || forbidden.contains($0) }) else { return nil }
        return describe(byte)
    }

    private static func describe(_ byte: UInt8) -> String {
        switch byte {
        case UInt8(ascii: "\\"): "a backslash"
        case UInt8(ascii: "#"): "a fragment ('#')"
        case UInt8(ascii: "?"): "a '?'"
        case 0..<0x20, 0x7F: "a control character (0x\(String(byte, radix: 16, uppercase: true)))"
        case 0x20: "a space"
        case 0x80...: "a non-ASCII byte"
        default: "'\(Character(Unicode.Scalar(byte)))'"
        }
    }

    /// `bytes` percent-decoded until decoding changes nothing more; a `%` that does not start an
    /// escape stays as it is. More than ``maximumDecodingRounds`` rounds are refused.
    private static func fullyDecoded(_ bytes: [UInt8], part: String) throws(ServiceRequestRefusal) -> [UInt8] {
        var current = bytes
        for _ in 0..<maximumDecodingRounds {
            let decoded = decodedOnce(current)
            if decoded == current { return current }
            current = decoded
        }
        guard decodedOnce(current) == current else {
            throw ServiceRequestRefusal("the \(part) is percent-encoded more than \(maximumDecodingRounds) times over")
        }
        return current
    }

    private static func decodedOnce(_ bytes: [UInt8]) -> [UInt8] {
        var decoded: [UInt8] = []
        decoded.reserveCapacity(bytes.count)
        var position = 0
        while position < bytes.count {
            if bytes[position] == UInt8(ascii: "%"), position + 2 < bytes.count, let high = hexValue(bytes[position + 1]),
                let low = hexValue(bytes[position + 2])
            {
                decoded.append(high << 4 | low)
                position += 3
            } else {
                decoded.append(bytes[position])
                position += 1
            }
        }
        return decoded
    }

    /// Whether `bytes` begin with `scheme:` (RFC 3986: a letter, then letters, digits, `+`, `-`
    /// or `.`), before any `/`.
    private static func startsWithScheme(_ bytes: [UInt8]) -> Bool {
        guard let first = bytes.first, isLetter(first) else { return false }
        for byte in bytes.dropFirst() {
            if byte == UInt8(ascii: ":") { return true }
            guard isAlphanumeric(byte) || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") else {
                return false
            }
        }
        return false
    }

    /// RFC 3986 `pchar` (without `%`, checked apart) and `/`.
    private static func isPathByte(_ byte: UInt8) -> Bool {
        isAlphanumeric(byte) || "-._~!$&'()*+,;=:@/".utf8.contains(byte)
    }

    /// RFC 3986 query characters (without `%`): `pchar`, `/` and `?`.
    private static func isQueryByte(_ byte: UInt8) -> Bool {
        isPathByte(byte) || byte == UInt8(ascii: "?")
    }

    private static func isLetter(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        isLetter(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// A service call the host will not make; the message names the problem in one line.
public struct ServiceRequestRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
