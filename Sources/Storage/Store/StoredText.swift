/// Text cut to fit a `varchar(n)` column, counted as PostgreSQL counts: in code points.
///
/// Swift's `String.count` counts grapheme clusters; a few hundred clusters of combining marks can
/// hold thousands of code points, which PostgreSQL refuses. Both stores get the same text.
public enum StoredText {
    /// `text` cut to at most `limit` code points.
    public static func truncated(_ text: String, to limit: Int) -> String {
        guard text.unicodeScalars.count > limit else { return text }
        var cut = String.UnicodeScalarView()
        cut.append(contentsOf: text.unicodeScalars.prefix(max(0, limit)))
        return String(cut)
    }

    /// `text` when it fits in `limit` code points; otherwise its beginning and a hash of the whole
    /// (FNV-1a, 64 bits), so that different long keys stay different.
    public static func key(_ text: String, limit: Int = 255) -> String {
        guard text.unicodeScalars.count > limit else { return text }
        return truncated(text, to: limit - 18) + "~#" + fingerprint(text)
    }

    /// 16 hexadecimal digits that differ, but for a rare collision, between different texts
    /// (FNV-1a, 64 bits; the same in every process and version).
    public static func fingerprint(_ text: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        let digits = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
