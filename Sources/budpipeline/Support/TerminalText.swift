/// Text from outside (a DAG's step ids, names, error messages) made safe to show on a terminal,
/// and measured in terminal columns. Pure functions, no I/O.
enum TerminalText {
    /// `text` without anything a terminal would act on: control characters (C0, DEL, C1 — so no
    /// escape sequence can start), bidirectional overrides and isolates, and line or paragraph
    /// separators. Tabs, newlines and separators become one space each; the rest is dropped. At
    /// most `limit` Unicode scalars are kept (a `…` marks the cut), so that huge input costs
    /// little afterwards.
    static func clean(_ text: String, limit: Int = 300) -> String {
        var result = String.UnicodeScalarView()
        var kept = 0
        for scalar in text.unicodeScalars {
            guard kept < max(0, limit) else {
                result.append("…")
                break
            }
            switch scalar.value {
            case 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x85, 0x2028, 0x2029:
                result.append(" ")
            case 0x00...0x1F, 0x7F...0x9F, 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069:
                continue
            default:
                result.append(scalar)
            }
            kept += 1
        }
        return String(result)
    }

    /// The columns `character` takes on a terminal: 2 for East Asian wide and full-width
    /// characters and for emoji shown as pictures, else 1. When unsure it answers the larger
    /// width, so a line measured with it never takes more columns than counted (it may take fewer).
    static func width(of character: Character) -> Int {
        let scalars = character.unicodeScalars
        guard let first = scalars.first else { return 0 }
        if first.properties.isEmojiPresentation { return 2 }
        if first.properties.isEmoji, scalars.contains(where: { $0.value == 0xFE0F }) { return 2 }
        return isWide(first.value) ? 2 : 1
    }

    /// The columns `text` takes (see ``width(of:)``).
    static func width(_ text: String) -> Int {
        text.reduce(0) { $0 + width(of: $1) }
    }

    /// `text` cut to at most `columns` columns, whole characters only, ending with `ellipsis`
    /// when something was cut (left out when even it does not fit). Never longer than `columns`.
    static func truncate(_ text: String, to columns: Int, ellipsis: String = "…") -> String {
        guard columns > 0 else { return "" }
        var used = 0
        var end = text.startIndex
        for index in text.indices {
            let next = used + width(of: text[index])
            if next > columns { break }
            used = next
            end = text.index(after: index)
        }
        if end == text.endIndex { return text }
        let room = columns - width(ellipsis)
        guard !ellipsis.isEmpty, room >= 0 else { return String(text[..<end]) }
        return truncate(text, to: room, ellipsis: "") + ellipsis
    }

    /// `text` cut (see ``truncate(_:to:ellipsis:)``) or padded with spaces to exactly `columns`
    /// columns, as ``width(_:)`` counts them.
    static func fit(_ text: String, to columns: Int, ellipsis: String = "…") -> String {
        let cut = truncate(text, to: columns, ellipsis: ellipsis)
        return cut + String(repeating: " ", count: max(0, columns - width(cut)))
    }

    /// East Asian Wide and Fullwidth ranges (Unicode's EastAsianWidth.txt, grouped generously:
    /// a few narrow code points inside them count 2, which errs on the safe side).
    private static func isWide(_ value: UInt32) -> Bool {
        switch value {
        case 0x1100...0x115F, 0x231A...0x231B, 0x2329...0x232A, 0x23E9...0x23EC, 0x23F0, 0x23F3, 0x25FD...0x25FE,
            0x2614...0x2615, 0x2648...0x2653, 0x267F, 0x2693, 0x26A1, 0x26AA...0x26AB, 0x26BD...0x26BE, 0x26C4...0x26C5,
            0x26CE, 0x26D4, 0x26EA, 0x26F2...0x26F5, 0x26FA, 0x26FD, 0x2705, 0x270A...0x270B, 0x2728, 0x274C, 0x274E,
            0x2753...0x2755, 0x2757, 0x2795...0x2797, 0x27B0, 0x27BF, 0x2B1B...0x2B1C, 0x2B50, 0x2B55,
            0x2E80...0x303E, 0x3041...0x33FF, 0x3400...0x4DBF, 0x4E00...0x9FFF, 0xA000...0xA4CF, 0xA960...0xA97F,
            0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE10...0xFE19, 0xFE30...0xFE6F, 0xFF00...0xFF60, 0xFFE0...0xFFE6,
            0x16FE0...0x16FE4, 0x17000...0x18CFF, 0x1AFF0...0x1B2FF, 0x1F000...0x1FAFF, 0x20000...0x3FFFD:
            true
        default:
            false
        }
    }
}
