import Foundation
import Testing
import _BudPipelineTestSupport

/// `budpipeline plugin new`: rendering. (scripts/test.sh builds and tests a rendered plugin.)
@Suite struct PluginNewCommandTests {
    private func temporaryDirectory() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("plugin-new-\(UUID().uuidString)")
    }

    @Test func rendersARenamedPackageWithTheSDKCopiedIn() async throws {
        let output = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: output) }
        let result = try await ProcessRunner.run(Repository.executable, ["plugin", "new", "acme_resize", "--output", output.path])
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.hasPrefix("Created plugin acme_resize in \(output.path) ("), "\(result.standardOutput)")
        #expect(result.standardOutput.contains("swift build && BUDPIPELINE="), "\(result.standardOutput)")
        let files = try FileManager.default.subpathsOfDirectory(atPath: output.path).sorted()
        let own = files.filter { !$0.hasPrefix("vendor") }
        #expect(
            own == [
                ".gitignore", "Package.swift", "README.md", "Sources", "Sources/AcmeResize", "Sources/AcmeResize/AcmeResize.swift", "Tests",
                "Tests/AcmeResizeTests", "Tests/AcmeResizeTests/AcmeResizeTests.swift", "plugin.exports",
            ]
        )
        // The SDK is a real copy (no links back into the checkout) of every module a plugin needs.
        for file in [
            "vendor/budpipeline-plugin-sdk/Package.swift", "vendor/budpipeline-plugin-sdk/Sources/PluginKit/StepHandler.swift",
            "vendor/budpipeline-plugin-sdk/Sources/PluginABI/include/budpipeline_plugin.h",
            "vendor/budpipeline-plugin-sdk/Sources/PluginKitTesting/PluginTestHost.swift",
        ] {
            let attributes = try FileManager.default.attributesOfItem(atPath: output.appendingPathComponent(file).path)
            #expect(attributes[.type] as? FileAttributeType == .typeRegular, "\(file)")
        }
        let manifest = try String(contentsOf: output.appendingPathComponent("Package.swift"), encoding: .utf8)
        #expect(manifest.contains("name: \"AcmeResize\""))
        #expect(manifest.contains(".package(name: \"budpipeline-plugin-sdk\", path: \"vendor/budpipeline-plugin-sdk\")"))
        let source = try String(contentsOf: output.appendingPathComponent("Sources/AcmeResize/AcmeResize.swift"), encoding: .utf8)
        #expect(source.contains("type: \"acme_resize\""))
        #expect(source.contains("name: \"Acme Resize\""))
        #expect(source.contains("struct AcmeResizeHandler: ParameterValidating"))
        #expect(!source.contains("MyPlugin") && !source.contains("my_plugin"))
    }

    @Test func rendersCAndRustPlugins() async throws {
        let output = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: output) }
        let c = try await ProcessRunner.run(
            Repository.executable, ["plugin", "new", "acme_resize", "--lang", "c", "--output", output.appendingPathComponent("c").path])
        #expect(c.status == 0, "\(c.standardError)")
        #expect(c.standardOutput.hasSuffix("&& make && make check\n"), "\(c.standardOutput)")
        let cFiles = try FileManager.default.subpathsOfDirectory(atPath: output.appendingPathComponent("c").path).sorted()
        #expect(cFiles == [".gitignore", "Makefile", "README.md", "acme_resize.c"])
        let source = try String(contentsOf: output.appendingPathComponent("c/acme_resize.c"), encoding: .utf8)
        #expect(source.contains("static bp_status acme_resize_execute(") && !source.contains("my_plugin"))

        let rust = try await ProcessRunner.run(
            Repository.executable,
            ["plugin", "new", "acme_resize", "--lang", "rust", "--output", output.appendingPathComponent("rust").path])
        #expect(rust.status == 0, "\(rust.standardError)")
        let rustFiles = try FileManager.default.subpathsOfDirectory(atPath: output.appendingPathComponent("rust").path).sorted()
        #expect(rustFiles.contains("vendor/budpipeline-plugin/src/lib.rs") && rustFiles.contains("src/lib.rs"), "\(rustFiles)")
        #expect(!rustFiles.contains { $0.hasPrefix("vendor/budpipeline-plugin/target") })
        let manifest = try String(contentsOf: output.appendingPathComponent("rust/Cargo.toml"), encoding: .utf8)
        #expect(manifest.contains("name = \"acme_resize\"") && manifest.contains("path = \"vendor/budpipeline-plugin\""))

        let unknown = try await ProcessRunner.run(Repository.executable, ["plugin", "new", "acme", "--lang", "go"])
        #expect(unknown.status != 0 && unknown.standardError.contains("go"), "\(unknown.standardError)")
    }

    @Test(arguments: [
        ("Acme", "invalid plugin name 'Acme': use 1 to 64 lowercase letters, digits and single underscores, starting with a letter"),
        (
            "acme-resize",
            "invalid plugin name 'acme-resize': use 1 to 64 lowercase letters, digits and single underscores, starting with a letter"
        ),
        ("9lives", "invalid plugin name '9lives': use 1 to 64 lowercase letters, digits and single underscores, starting with a letter"),
        ("a__b", "invalid plugin name 'a__b': use 1 to 64 lowercase letters, digits and single underscores, starting with a letter"),
        ("plugin_kit", "invalid plugin name 'plugin_kit': its module name PluginKit is a BudPipeline module"),
    ])
    func rejectsInvalidNames(name: String, message: String) async throws {
        let output = temporaryDirectory()
        let result = try await ProcessRunner.run(Repository.executable, ["plugin", "new", name, "--output", output.path])
        #expect(result.status == 1)
        #expect(result.standardError == "Error: \(message)\n")
        #expect(!FileManager.default.fileExists(atPath: output.path))
    }

    @Test func refusesAFileAndShowsHostileNamesOnOneLine() async throws {
        let output = temporaryDirectory()
        try "a file".write(to: output, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: output) }
        let file = try await ProcessRunner.run(Repository.executable, ["plugin", "new", "acme", "--output", output.path])
        #expect(file.status == 1 && file.standardError == "Error: \(output.path) already exists and is not a directory\n")
        let newline = try await ProcessRunner.run(Repository.executable, ["plugin", "new", "a\nb", "--output", output.path + "-x"])
        #expect(
            newline.status == 1 && newline.standardError.hasPrefix("Error: invalid plugin name 'a\\u{a}b':"), "\(newline.standardError)")
        #expect(newline.standardError.split(separator: "\n").count == 1)
        let long = try await ProcessRunner.run(
            Repository.executable, ["plugin", "new", String(repeating: "x", count: 5000), "--output", output.path + "-y"])
        #expect(long.status == 1 && long.standardError.count < 300, "\(long.standardError.count)")
    }

    @Test func refusesANonEmptyDirectory() async throws {
        let output = temporaryDirectory()
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        try "keep me".write(to: output.appendingPathComponent("notes.txt"), atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: output) }
        let result = try await ProcessRunner.run(Repository.executable, ["plugin", "new", "acme", "--output", output.path])
        #expect(result.status == 1)
        #expect(result.standardError == "Error: \(output.path) already exists and is not empty\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: output.path) == ["notes.txt"])
    }
}
