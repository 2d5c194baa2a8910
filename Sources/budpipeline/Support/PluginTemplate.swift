import Foundation

/// Renders `plugin-template/` into a new plugin package.
///
/// The template is a working package for a plugin called `my_plugin`; rendering renames it
/// (`my_plugin`, `MyPlugin`, `My Plugin` in file names and contents) and points its dependency
/// `path: ".."` at the BudPipeline package.
struct PluginTemplate {
    let directory: URL

    /// Finds the template: an explicit directory, `BUDPIPELINE_TEMPLATE_DIR`, the installed copy
    /// beside the executable, or the source checkout this binary was built from.
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
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("Package.swift").path) {
                return candidate
            }
            if explicit != nil { break }
        }
        throw CLIError("cannot find plugin-template/ (pass --template DIR or set BUDPIPELINE_TEMPLATE_DIR)")
    }

    /// The BudPipeline package a rendered plugin depends on: explicit, or the template's parent
    /// when the template sits in a BudPipeline checkout.
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

    /// Writes the renamed template into `destination`; returns the number of files written.
    func render(names: PluginNames, budpipelinePackage: URL, into destination: URL) throws -> Int {
        let fileManager = FileManager.default
        if let existing = try? fileManager.contentsOfDirectory(atPath: destination.path), !existing.isEmpty {
            throw CLIError("\(destination.path) already exists and is not empty")
        }
        let replacements = [("my_plugin", names.snake), ("MyPlugin", names.camel), ("My Plugin", names.title)]
        let files = try templateFiles()
        for relativePath in files {
            let source = directory.appendingPathComponent(relativePath)
            let target = destination.appendingPathComponent(Self.replace(relativePath, replacements))
            try fileManager.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            var contents = Self.replace(try String(contentsOf: source, encoding: .utf8), replacements)
            if relativePath == "Package.swift" {
                let dependency = "path: \"..\""
                guard contents.contains(dependency) else {
                    throw CLIError("\(source.path) has no `\(dependency)` dependency to point at BudPipeline")
                }
                contents = contents.replacingOccurrences(of: dependency, with: "path: \"\(budpipelinePackage.path)\"")
            }
            try contents.write(to: target, atomically: true, encoding: .utf8)
        }
        return files.count
    }

    /// Template files relative to the template directory, without build output.
    private func templateFiles() throws -> [String] {
        guard let enumerator = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: [.isRegularFileKey])
        else { throw CLIError("cannot read \(directory.path)") }
        var files: [String] = []
        let root = directory.resolvingSymlinksInPath().path + "/"
        for case let url as URL in enumerator {
            let name = url.lastPathComponent
            if name.hasPrefix(".build") || name == ".swiftpm" || name == "Package.resolved" {
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
