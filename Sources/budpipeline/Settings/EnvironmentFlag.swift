/// A true/false setting from the environment: `true`, `1`, `yes` or `false`, `0`, `no` (any case);
/// unset or empty is `nil`; anything else is an error naming the variable — never a silent false.
enum EnvironmentFlag {
    static func value(_ name: String, in environment: [String: String]) throws -> Bool? {
        guard let text = environment[name], !text.isEmpty else { return nil }
        switch text.lowercased() {
        case "true", "1", "yes": return true
        case "false", "0", "no": return false
        default: throw CLIError("\(name)=\(text.prefix(40)) is not true or false")
        }
    }
}
