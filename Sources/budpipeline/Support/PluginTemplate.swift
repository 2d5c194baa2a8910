import ArgumentParser
import Foundation

/// The languages `plugin new` writes a plugin in: each is a directory of `plugin-template/`.
enum PluginLanguage: String, CaseIterable, ExpressibleByArgument {
    case swift, c, rust

    /// What to run in the new plugin's directory first.
    var nextSteps: String {
        switch self {
        case .swift: "swift build && swift test"
        case .c: "make && make check"
        case .rust: "cargo test --offline && cargo build --offline --release"
        }
    }
}

/// Renders a language's directory of `plugin-template/` into a new plugin.
///
/// Each directory is a working plugin called `my_plugin`; rendering renames it (`my_plugin`,
/// `MyPlugin`, `My Plugin` in file names and contents). The Swift package's dependency
/// `path: "../.."` is pointed at the BudPipeline package; the Rust SDK crate is copied into the
/// Rust plugin (`vendor/budpipeline-plugin`), so that it builds offline on its own.
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

    /// The BudPipeline package a rendered Swift plugin depends on: explicit, or the template's
    /// parent when the template sits in a BudPipeline checkout.
    static func budpipelinePackage(explicit: String?, template: URL) throws -> URL {
        let candidate = explicit.map { URL(fileURLWithPath: $0) } ?? template.deletingLastPathComponent()
        let manifest = candidate.standardizedFileURL.appendingPathComponent("Package.swift")
        guard let text = try? String(contentsOf: manifest, encoding: .utf8), text.contains("name: \"budpipeline\"") else {
            throw CLIError("\(candidate.path) is not the BudPipeline package (pass --budpipeline-package PATH)")
        }
        return candidate.standardizedFileURL
    }

    /// The root of the source checkout this binary was compiled from.
    private static var sourceCheckout: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../..").standardizedFileURL
    }

    /// The Rust SDK crate a rendered Rust plugin gets a copy of: beside the template, as in the
    /// source checkout (`sdk/rust/budpipeline-plugin`) and the installed layout.
    static func rustSDK(template: URL) throws -> URL {
        let crate = template.deletingLastPathComponent().appendingPathComponent("sdk/rust/budpipeline-plugin").standardizedFileURL
        guard FileManager.default.fileExists(atPath: crate.appendingPathComponent("Cargo.toml").path) else {
            throw CLIError("cannot find the Rust plugin SDK at \(crate.path)")
        }
        return crate
    }

    /// Writes the renamed template into `destination`; returns the number of files written.
    /// `budpipelinePackage` is for Swift, `rustSDK` for Rust.
    func render(names: PluginNames, budpipelinePackage: URL?, rustSDK: URL?, into destination: URL) throws -> Int {
        let fileManager = FileManager.default
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
            if relativePath == "Package.swift", let budpipelinePackage {
                let dependency = "path: \"../..\""
                guard contents.contains(dependency) else {
                    throw CLIError("\(source.path) has no `\(dependency)` dependency to point at BudPipeline")
                }
                contents = contents.replacingOccurrences(of: dependency, with: "path: \"\(budpipelinePackage.path)\"")
            }
            try contents.write(to: target, atomically: true, encoding: .utf8)
        }
        var written = files.count
        if let rustSDK {
            let vendored = destination.appendingPathComponent("vendor/budpipeline-plugin")
            for relativePath in try Self.files(under: rustSDK) {
                let target = vendored.appendingPathComponent(relativePath)
                try fileManager.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
                try fileManager.copyItem(at: rustSDK.appendingPathComponent(relativePath), to: target)
                written += 1
            }
        }
        return written
    }

    /// Files under `directory`, relative to it, without build output.
    private static func files(under directory: URL) throws -> [String] {
        guard let enumerator = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: [.isRegularFileKey])
        else { throw CLIError("cannot read \(directory.path)") }
        var files: [String] = []
        let root = directory.resolvingSymlinksInPath().path + "/"
        for case let url as URL in enumerator {
            let name = url.lastPathComponent
            if name.hasPrefix(".build") || name == ".swiftpm" || name == "Package.resolved" || name == "target"
                || name == "libmy_plugin.so"
            {
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
