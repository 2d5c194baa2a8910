/// Finding text in text the way Python does: by code points, in linear time (Knuth–Morris–Pratt),
/// whatever the text holds (NUL, unpaired replacement characters, combining marks).
struct ScalarSearch {
    private let pattern: [Unicode.Scalar]
    /// For each prefix of the pattern, the length of its longest proper prefix that is also a suffix.
    private let fallback: [Int]

    init(_ pattern: String) {
        self.pattern = Array(pattern.unicodeScalars)
        var fallback = Array(repeating: 0, count: self.pattern.count)
        var length = 0
        var index = 1
        while index < self.pattern.count {
            if self.pattern[index] == self.pattern[length] {
                length += 1
                fallback[index] = length
                index += 1
            } else if length > 0 {
                length = fallback[length - 1]
            } else {
                index += 1
            }
        }
        self.fallback = fallback
    }

    /// The offsets (in code points of `text`) where the pattern starts, left to right and not
    /// overlapping, at most `limit` of them. An empty pattern matches before every code point and
    /// at the end, as Python's `str.replace` sees it.
    func matches(in text: [Unicode.Scalar], limit: Int = .max) -> [Int] {
        guard limit > 0 else { return [] }
        guard !pattern.isEmpty else { return Array((0...text.count).prefix(limit)) }
        var found: [Int] = []
        var matched = 0
        var index = 0
        while index < text.count {
            if text[index] == pattern[matched] {
                matched += 1
                index += 1
                if matched == pattern.count {
                    found.append(index - matched)
                    if found.count == limit { break }
                    matched = 0
                }
            } else if matched > 0 {
                matched = fallback[matched - 1]
            } else {
                index += 1
            }
        }
        return found
    }
}
