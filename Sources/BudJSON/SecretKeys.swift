/// Which JSON keys hold secrets, and JSON values with those keys' values masked.
///
/// A key is read as words: lower-cased, split at `_`, `-`, `.`, spaces and camelCase boundaries
/// (`accessToken`, `X-Api-Key` and `DB_PASSWORD` are `access token`, `x api key` and
/// `db password`). A key is secret when its words end with the words of an entry: of the built-in
/// ``builtInEntries`` or of the operator's own. So `password` makes `db_password` secret,
/// `api_key` makes `x-api-key` and `openaiApiKey` secret, and `token` makes `hf_token` secret,
/// while `max_tokens`, `token_count` and `secret_name` stay readable: their last word is no entry.
///
/// Masking replaces the value of every secret key (whatever its type, but `null`) with
/// ``redactionMarker``, in objects at any depth, including objects inside arrays. It never
/// changes anything else, and returns the very value it was given when there is nothing to mask.
public struct SecretKeys: Sendable, Equatable {
    /// What a secret value is replaced with; the marker never changes, so clients can recognise it.
    public static let redactionMarker = "***REDACTED***"

    /// The entries every set has: the common names of passwords, tokens, keys and credentials (every
    /// key masked before is masked still) and the names of the tokens and headers BudPipeline itself
    /// handles.
    public static let builtInEntries: [String] = [
        "password", "passwd", "pwd", "passphrase", "secret", "token", "api_key", "apikey", "auth_token", "access_token",
        "refresh_token", "private_key", "secret_key", "client_secret", "credential", "credentials", "bearer", "authorization",
        "cookie", "set_cookie", "x_webhook_secret", "dapr_api_token", "app_api_token", "connection_string",
        "aws_secret_access_key", "aws_session_token", "cookies", "jwt", "access_key", "auth_key",
    ]

    /// The built-in entries only.
    public static let builtIn = SecretKeys(normalizedEntries: Set(builtInEntries.map { words(of: $0).joined(separator: "_") }))

    /// The most entries a set may have beyond the built-in ones.
    public static let maximumAdditionalEntries = 256
    /// The longest entry accepted, in bytes.
    public static let maximumEntryLength = 128

    /// Entries as their words joined by `_`.
    private let entries: Set<String>
    /// The last word of each entry: a key whose last word is none of these is not secret, which
    /// settles most keys without splitting them into words.
    private let lastWords: Set<String>
    /// The most words an entry has: longer suffixes of a key are never looked up.
    private let longestEntryWordCount: Int

    private init(normalizedEntries: Set<String>) {
        entries = normalizedEntries
        lastWords = Set(normalizedEntries.compactMap { $0.split(separator: "_").last.map(String.init) })
        longestEntryWordCount = normalizedEntries.map { $0.split(separator: "_").count }.max() ?? 0
    }

    /// The built-in entries plus `additional` ones, each read as words like a key is.
    ///
    /// Throws when an entry is empty, longer than ``maximumEntryLength``, holds anything but ASCII
    /// letters, digits, `_`, `-` and `.`, or when there are more than ``maximumAdditionalEntries``.
    public init(adding additional: some Sequence<String>) throws(SecretKeysError) {
        var entries = Self.builtIn.entries
        var added = 0
        for entry in additional {
            added += 1
            guard added <= Self.maximumAdditionalEntries else {
                throw SecretKeysError("more than \(Self.maximumAdditionalEntries) entries")
            }
            guard !entry.isEmpty else { throw SecretKeysError("an entry is empty") }
            guard entry.utf8.count <= Self.maximumEntryLength else {
                throw SecretKeysError("an entry is longer than \(Self.maximumEntryLength) characters")
            }
            guard entry.utf8.allSatisfy(Self.isEntryByte) else {
                throw SecretKeysError("'\(entry)' may hold letters, digits, '_', '-' and '.' only")
            }
            let words = Self.words(of: entry)
            guard !words.isEmpty else { throw SecretKeysError("'\(entry)' has no letters or digits") }
            entries.insert(words.joined(separator: "_"))
        }
        self.init(normalizedEntries: entries)
    }

    /// The built-in entries plus those of a comma-separated `list` (spaces around entries
    /// ignored), as an operator writes them in a setting. See ``init(adding:)`` for what is refused.
    public init(parsing list: String) throws(SecretKeysError) {
        let entries = list.split(separator: ",", omittingEmptySubsequences: false).map { part in
            String(part.drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
        }
        try self.init(adding: entries)
    }

    /// Whether the value of `key` is a secret.
    public func isSecret(_ key: String) -> Bool {
        guard let last = Self.lastWord(of: key), lastWords.contains(last) else { return false }
        let words = Self.words(of: key)
        guard !words.isEmpty else { return false }
        let longest = min(words.count, longestEntryWordCount)
        guard longest > 0 else { return false }
        for count in 1...longest where entries.contains(words.suffix(count).joined(separator: "_")) {
            return true
        }
        return false
    }

    /// `value` with the values of secret keys replaced by ``redactionMarker``.
    ///
    /// Nesting deeper than ``JSONValue/maximumNestingDepth`` (which parsed values never reach) is
    /// not looked into: such a part is replaced by the marker as a whole, so the walk is bounded
    /// and nothing it did not inspect is shown.
    public func masked(_ value: JSONValue) -> JSONValue {
        maskedIfChanged(value, depth: 0) ?? value
    }

    /// `object` with the values of secret keys replaced by ``redactionMarker``, at any depth.
    public func masked(_ object: JSONObject) -> JSONObject {
        maskedIfChanged(object, depth: 0) ?? object
    }

    /// `incoming` with every secret value a client sent back as it was shown (the marker)
    /// replaced by the value at the same place in `stored` (objects member by member, arrays of
    /// the same length element by element, at any depth): reading a
    /// record and writing it back leaves its secrets as they were, not the marker. A marker with
    /// nothing stored at its place stays as it is.
    public func restoringMasked(_ incoming: JSONObject, from stored: JSONObject) -> JSONObject {
        restoringMasked(incoming, from: stored, depth: 0)
    }

    private func restoringMasked(_ incoming: JSONObject, from stored: JSONObject, depth: Int) -> JSONObject {
        guard depth < JSONValue.maximumNestingDepth else { return incoming }
        var restored = incoming
        for (key, value) in incoming {
            guard let old = stored[key] else { continue }
            if isSecret(key), value == .string(Self.redactionMarker) {
                restored[key] = old
            } else {
                restored[key] = restoringMasked(value, from: old, depth: depth + 1)
            }
        }
        return restored
    }

    /// Objects are restored member by member, arrays of the same length element by element.
    private func restoringMasked(_ incoming: JSONValue, from stored: JSONValue, depth: Int) -> JSONValue {
        switch (incoming, stored) {
        case (.object(let inner), .object(let old)):
            return .object(restoringMasked(inner, from: old, depth: depth))
        case (.array(let items), .array(let old)) where items.count == old.count && depth < JSONValue.maximumNestingDepth:
            return .array(zip(items, old).map { restoringMasked($0, from: $1, depth: depth + 1) })
        default:
            return incoming
        }
    }

    /// The masked value, or `nil` when masking changes nothing (so that nothing is copied then).
    /// `depth` counts the containers around `value`.
    private func maskedIfChanged(_ value: JSONValue, depth: Int) -> JSONValue? {
        switch value {
        case .object(let object):
            guard depth < JSONValue.maximumNestingDepth else { return .string(Self.redactionMarker) }
            return maskedIfChanged(object, depth: depth).map(JSONValue.object)
        case .array(let elements):
            guard depth < JSONValue.maximumNestingDepth else { return .string(Self.redactionMarker) }
            var changed: [JSONValue]?
            for (position, element) in elements.enumerated() {
                guard let masked = maskedIfChanged(element, depth: depth + 1) else { continue }
                if changed == nil { changed = elements }
                changed?[position] = masked
            }
            return changed.map(JSONValue.array)
        case .null, .bool, .int, .double, .string:
            return nil
        }
    }

    private func maskedIfChanged(_ object: JSONObject, depth: Int) -> JSONObject? {
        var changed: JSONObject?
        for (key, value) in object {
            let replacement: JSONValue?
            if isSecret(key) {
                replacement = value.isNull || value == .string(Self.redactionMarker) ? nil : .string(Self.redactionMarker)
            } else {
                replacement = maskedIfChanged(value, depth: depth + 1)
            }
            guard let replacement else { continue }
            if changed == nil { changed = object }
            changed?[key] = replacement
        }
        return changed
    }

    /// The lower-case words of a key: split at `_`, `-`, `.`, spaces, and camelCase boundaries
    /// (before an upper-case letter that follows a lower-case letter or digit, and before the
    /// last capital of a run followed by a lower-case letter: `APIKey` is `api key`).
    static func words(of key: String) -> [String] {
        var words: [String] = []
        var current: [UInt8] = []
        let bytes = Array(key.utf8)
        func finishWord() {
            if !current.isEmpty { words.append(String(decoding: current, as: UTF8.self)) }
            current.removeAll(keepingCapacity: true)
        }
        for (position, byte) in bytes.enumerated() {
            switch byte {
            case _ where isSeparator(byte):
                finishWord()
            case UInt8(ascii: "A")...UInt8(ascii: "Z"):
                let previous = position > 0 ? bytes[position - 1] : nil
                let next = position + 1 < bytes.count ? bytes[position + 1] : nil
                let afterLowerOrDigit = previous.map { isLower($0) || isDigit($0) } ?? false
                let endsCapitalRun = (previous.map(isUpper) ?? false) && (next.map(isLower) ?? false)
                if afterLowerOrDigit || endsCapitalRun { finishWord() }
                current.append(byte | 0x20)
            default:
                current.append(byte)
            }
        }
        finishWord()
        return words
    }

    /// The last of ``words(of:)`` without splitting the rest of the key; `nil` when there is none.
    static func lastWord(of key: String) -> String? {
        let bytes = key.utf8
        var end = bytes.endIndex
        while end > bytes.startIndex, isSeparator(bytes[bytes.index(before: end)]) { end = bytes.index(before: end) }
        guard end > bytes.startIndex else { return nil }
        var start = bytes.index(before: end)
        while start > bytes.startIndex {
            let previous = bytes[bytes.index(before: start)]
            if isSeparator(previous) { break }
            let current = bytes[start]
            if isUpper(current) {
                let after = bytes.index(after: start)
                let endsCapitalRun = isUpper(previous) && after < end && isLower(bytes[after])
                if isLower(previous) || isDigit(previous) || endsCapitalRun { break }
            }
            start = bytes.index(before: start)
        }
        let word = bytes[start..<end]
        return String(unsafeUninitializedCapacity: word.count) { buffer in
            for (offset, byte) in word.enumerated() { buffer[offset] = isUpper(byte) ? byte | 0x20 : byte }
            return word.count
        }
    }

    private static func isSeparator(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: " ")
    }

    private static func isLower(_ byte: UInt8) -> Bool { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) }
    private static func isUpper(_ byte: UInt8) -> Bool { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) }
    private static func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }

    private static func isEntryByte(_ byte: UInt8) -> Bool {
        isLower(byte) || isUpper(byte) || isDigit(byte) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
            || byte == UInt8(ascii: ".")
    }
}

/// A list of secret keys that cannot be used; the message says why in one line.
public struct SecretKeysError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
