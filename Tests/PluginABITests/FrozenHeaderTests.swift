import Foundation
import Testing
import _BudPipelineTestSupport

/// Compares the current header with the frozen copy of the v1 header, field by field, in C.
@Suite struct FrozenHeaderTests {
    private func probe(include: String) async throws -> String {
        let binary = FileManager.default.temporaryDirectory.appendingPathComponent("layout-probe-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: binary) }
        let compile = try await ProcessRunner.run(
            ProcessInfo.processInfo.environment["CC"] ?? "/usr/bin/cc",
            ["-std=c11", "-Wall", "-Werror", "-I", include, "-o", binary, Repository.path("Tests/ABI/layout_probe.c")]
        )
        #expect(compile.status == 0, "\(compile.standardError)")
        let run = try await ProcessRunner.run(binary, [])
        #expect(run.status == 0)
        return run.standardOutput
    }

    @Test func everyReleasedFieldAndConstantIsUnchanged() async throws {
        let frozen = try await probe(include: Repository.path("Tests/ABI/v1"))
        let current = try await probe(include: Repository.path("Sources/PluginABI/include"))
        #expect(frozen.split(separator: "\n").count == 73)
        #expect(current == frozen)
    }

    @Test func theCurrentHeaderCompilesAsC11AndCPlusPlus() async throws {
        let source = FileManager.default.temporaryDirectory.appendingPathComponent("include-\(UUID().uuidString).cpp")
        try "#include \"budpipeline_plugin.h\"\nint main() { return sizeof(bp_host_api_v1) > 0 ? 0 : 1; }\n"
            .write(to: source, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: source) }
        let output = source.deletingPathExtension().path
        let result = try await ProcessRunner.run(
            "/usr/bin/c++",
            ["-std=c++11", "-Wall", "-Werror", "-pedantic", "-I", Repository.path("Sources/PluginABI/include"), "-o", output, source.path]
        )
        defer { try? FileManager.default.removeItem(atPath: output) }
        #expect(result.status == 0, "\(result.standardError)")
    }
}
