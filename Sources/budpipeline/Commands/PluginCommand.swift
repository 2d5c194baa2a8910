import ArgumentParser
import Foundation

/// `budpipeline plugin`: work on one plugin.
struct PluginCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugin",
        abstract: "Create plugins.",
        subcommands: [New.self]
    )

    struct New: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a plugin from plugin-template/, in Swift, C or Rust.",
            discussion: """
                NAME becomes the plugin and action name (snake_case) and, in UpperCamelCase, the \
                Swift module and library product. The new plugin builds and passes its checks \
                offline with no edits: `swift build && swift test` (Swift, with the SDK package \
                copied in; the tests need `budpipeline` on PATH or in BUDPIPELINE), `make && make \
                check` (C, with the C SDK installed by scripts/install-sdk.sh), or `cargo test \
                --offline && cargo build --offline --release` (Rust, with the SDK crate copied in).
                """
        )

        @Argument(help: "Plugin name: lowercase letters, digits and underscores, starting with a letter (e.g. acme_resize).")
        var name: String

        @Option(help: "Directory to create (default: ./NAME). Must not exist or be empty.")
        var output: String?

        @Option(help: "The plugin's language: swift, c or rust.")
        var lang: PluginLanguage = .swift

        @Option(help: "The template directory (default: BUDPIPELINE_TEMPLATE_DIR, the installed copy, or the source checkout's).")
        var template: String?

        func run() throws {
            let names = try PluginNames(name)
            let root = try PluginTemplate.locate(explicit: template)
            let sdk = try PluginTemplate.sdk(for: lang, template: root)
            let destination = URL(fileURLWithPath: output ?? name).standardizedFileURL
            let files = try PluginTemplate(root: root, language: lang).render(names: names, sdk: sdk, into: destination)
            print("Created plugin \(names.snake) in \(destination.path) (\(files) files).")
            print("Next: cd \(destination.path) && \(lang.nextSteps)")
        }
    }
}

/// The spellings of a plugin name the template uses.
struct PluginNames: Equatable {
    /// `acme_resize`: plugin name and action type.
    let snake: String
    /// `AcmeResize`: module, product and type names.
    let camel: String
    /// `Acme Resize`: display name.
    let title: String

    init(_ name: String) throws {
        let bytes = Array(name.utf8)
        let valid =
            (1...64).contains(bytes.count) && (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(bytes[0])
            && bytes.allSatisfy {
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
                    || $0 == UInt8(ascii: "_")
            }
        guard valid, !name.hasSuffix("_"), !name.contains("__") else {
            throw CLIError(
                "invalid plugin name \(Self.quoted(name)): use 1 to 64 lowercase letters, digits and single underscores, starting with a letter"
            )
        }
        let words = name.split(separator: "_").map { $0.prefix(1).uppercased() + $0.dropFirst() }
        snake = name
        camel = words.joined()
        title = words.joined(separator: " ")
        if Self.reservedModules.contains(camel) {
            throw CLIError("invalid plugin name '\(name)': its module name \(camel) is a BudPipeline module")
        }
    }

    /// `name` as it goes into a one-line error: quoted, at most 64 characters, control
    /// characters escaped.
    static func quoted(_ name: String) -> String {
        let shown = name.count > 64 ? String(name.prefix(64)) + "…" : name
        var escaped = ""
        for scalar in shown.unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7F {
                escaped += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                escaped.unicodeScalars.append(scalar)
            }
        }
        return "'\(escaped)'"
    }

    /// Modules of the BudPipeline package a plugin module must not shadow.
    static let reservedModules: Set<String> = [
        "BudJSON", "BudPipelineHost", "PluginABI", "PluginKit", "PluginSchema", "PluginTesting",
    ]
}
