/// A failure reported to the user as one line (`Error: <message>`) with exit status 1.
///
/// The message is kept to one line of at most 2,000 characters whatever it quotes (a value from
/// a file or the environment): control characters are shown as `\u{…}`.
struct CLIError: Error, CustomStringConvertible {
    let description: String

    init(_ message: String) {
        let line = EscapingLogHandler.escaped(String(String.UnicodeScalarView(message.unicodeScalars.prefix(2000))))
        description = message.unicodeScalars.count > 2000 ? line + "…" : line
    }
}
