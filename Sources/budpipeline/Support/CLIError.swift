/// A failure reported to the user as one line (`Error: <message>`) with exit status 1.
struct CLIError: Error, CustomStringConvertible {
    let description: String

    init(_ message: String) {
        description = message
    }
}
