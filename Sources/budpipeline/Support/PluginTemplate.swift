import ArgumentParser
import Foundation

/// The languages `plugin new` writes a plugin in: each is a directory of `plugin-template/`.
enum PluginLanguage: String, CaseIterable, ExpressibleByArgument {
    case swift, c, rust

    /// This executable, which a Swift plugin's tests call.
    private static var executable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? "budpipeline"
    }

    /// What to run in the new plugin's directory first.
    var nextSteps: String {
        switch self {
        case .swift: "swift build && BUDPIPELINE=\(Self.executable) swift test"
        case .c: "make && make check"
        case .rust: "cargo test --offline && cargo build --offline --release"
        }
    }
}

/// Renders a language's directory of `plugin-template/` into a new plugin.
///
/// Each directory is a working plugin called `my_plugin`; rendering renames it (`my_plugin`,
/// `MyPlugin`, `My Plugin` in file names and contents). The language's SDK is copied into Swift
/// and Rust plugins (`vendor/`; the Swift package's dependency `path: "../../sdk/swift"` is
/// pointed at the copy), so that they build offline on their own, with no package cache and no
/// BudPipeline checkout; a C plugin finds the installed C SDK with pkg-config.
struct PluginTemplate {
    /// The directory of one language.
    let directory: URL
    let language: PluginLanguage

    init(root: URL, language: PluginLanguage) {
        self.directory = root.appendingPathComponent(language.rawValue)
        self.language = language
    }

    /// Finds `plugin-template/`: an explicit directory, `BUDPIPELINE_TEMPLATE_DIR`, the installed
    /// copy beside the executable, or the source checkout this binary was built from.
    static func locate(explicit: String?) throws -> URL {
        let environment = ProcessInfo.processInfo.environment["BUDPIPELINE_TEMPLATE_DIR"]
        let executable = Bundle.main.executableURL?.resolvingSymlinksInPath().deletingLastPathComponent()
        let candidates: [URL?] = [
            explicit.map { URL(fileURLWithPath: $0) },
            environment.map { URL(fileURLWithPath: $0) },
            executable?.appendingPathComponent("../share/budpipeline/plugin-template"),
            sourceCheckout.appendingPathComponent("plugin-template"),
        ]
        for candidate in candidates.compactMap({ $0?.standardizedFileURL }) {
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("swift/Package.swift").path) {
                return candidate
            }
            if explicit != nil { break }
        }
        throw CLIError("cannot find plugin-template/ (pass --template DIR or set BUDPIPELINE_TEMPLATE_DIR)")
    }

    /// The root of the source checkout this binary was compiled from.
    private static var sourceCheckout: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../..").standardizedFileURL
    }

    /// The SDK a rendered plugin of `language` gets a copy of, and where in the plugin: beside the
    /// template, as in the source checkout (`sdk/swift`, `sdk/rust/budpipeline-plugin`) and the
    /// installed layout. `nil` for C, whose SDK is installed once (`scripts/install-sdk.sh`).
    static func sdk(for language: PluginLanguage, template: URL) throws -> (source: URL, vendored: String)? {
        let sdk = template.deletingLastPathComponent().appendingPathComponent("sdk")
        let found: (URL, String, String)
        switch language {
        case .c: return nil
        case .swift: found = (sdk.appendingPathComponent("swift"), "Package.swift", "vendor/budpipeline-plugin-sdk")
        case .rust: found = (sdk.appendingPathComponent("rust/budpipeline-plugin"), "Cargo.toml", "vendor/budpipeline-plugin")
        }
        let source = found.0.standardizedFileURL
        guard FileManager.default.fileExists(atPath: source.appendingPathComponent(found.1).path) else {
            throw CLIError("cannot find the \(language.rawValue) plugin SDK at \(source.path)")
        }
        return (source, found.2)
    }

    /// Writes the renamed template into `destination`, with a copy of `sdk` (links followed);
    /// returns the number of files written.
    func render(names: PluginNames, sdk: (source: URL, vendored: String)?, into destination: URL) throws -> Int {
        let fileManager = FileManager.default
        var isDirectory: ObjCBool = false
        if fileManager.fileExists(atPath: destination.path, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw CLIError("\(destination.path) already exists and is not a directory")
        }
        if let existing = try? fileManager.contentsOfDirectory(atPath: destination.path), !existing.isEmpty {
            throw CLIError("\(destination.path) already exists and is not empty")
        }
        let replacements = [("my_plugin", names.snake), ("MyPlugin", names.camel), ("My Plugin", names.title)]
        let files = try Self.files(under: directory)
        for relativePath in files {
            let source = directory.appendingPathComponent(relativePath)
            let target = destination.appendingPathComponent(Self.replace(relativePath, replacements))
            try fileManager.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            var contents = Self.replace(try String(contentsOf: source, encoding: .utf8), replacements)
            if relativePath == "Package.swift", let sdk {
                let dependency = "path: \"../../sdk/swift\""
                guard contents.contains(dependency) else {
                    throw CLIError("\(source.path) has no `\(dependency)` dependency to point at the SDK")
                }
                contents = contents.replacingOccurrences(of: dependency, with: "path: \"\(sdk.vendored)\"")
            }
            try contents.write(to: target, atomically: true, encoding: .utf8)
        }
        var written = files.count
        if let sdk {
            written += try Self.copyFollowingLinks(from: sdk.source, to: destination.appendingPathComponent(sdk.vendored))
        }
        return written
    }

    /// Copies the files under `source` (links followed: the Swift SDK links the server's sources)
    /// to `target`, without build output; returns how many.
    private static func copyFollowingLinks(from source: URL, to target: URL) throws -> Int {
        let fileManager = FileManager.default
        try fileManager.createDirectory(at: target, withIntermediateDirectories: true)
        var copied = 0
        for name in try fileManager.contentsOfDirectory(atPath: source.path).sorted() where !isBuildOutput(name) {
            let entry = source.appendingPathComponent(name).resolvingSymlinksInPath()
            var isDirectory: ObjCBool = false
            guard fileManager.fileExists(atPath: entry.path, isDirectory: &isDirectory) else { continue }
            if isDirectory.boolValue {
                copied += try copyFollowingLinks(from: entry, to: target.appendingPathComponent(name))
            } else {
                try fileManager.copyItem(at: entry, to: target.appendingPathComponent(name))
                copied += 1
            }
        }
        return copied
    }

    private static func isBuildOutput(_ name: String) -> Bool {
        name.hasPrefix(".build") || name == ".swiftpm" || name == "Package.resolved" || name == "target" || name == "libmy_plugin.so"
    }

    /// Files under `directory`, relative to it, without build output.
    private static func files(under directory: URL) throws -> [String] {
        guard let enumerator = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: [.isRegularFileKey])
        else { throw CLIError("cannot read \(directory.path)") }
        var files: [String] = []
        let root = directory.resolvingSymlinksInPath().path + "/"
        for case let url as URL in enumerator {
            let name = url.lastPathComponent
            if isBuildOutput(name) {
                enumerator.skipDescendants()
                continue
            }
            guard (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true else { continue }
            let path = url.resolvingSymlinksInPath().path
            guard path.hasPrefix(root) else { continue }
            files.append(String(path.dropFirst(root.count)))
        }
        return files.sorted()
    }

    private static func replace(_ text: String, _ replacements: [(String, String)]) -> String {
        replacements.reduce(text) { $0.replacingOccurrences(of: $1.0, with: $1.1) }
    }
}
