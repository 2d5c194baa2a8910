import Foundation
import Testing
import _BudPipelineTestSupport

/// The plugin headers — the ABI (`budpipeline_plugin.h`) and the C SDK's jansson helpers
/// (`budpipeline_plugin_helpers.h`) — compile cleanly as C11 and as C++11, with every warning an
/// error, as docs/plugins.md promises.
@Suite struct HeaderLanguageTests {
    @Test(arguments: [("/usr/bin/cc", "c", "-std=c11"), ("/usr/bin/c++", "c++", "-std=c++11")])
    func headersCompile(compiler: String, language: String, standard: String) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bp-headers-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let source = directory.appendingPathComponent(language == "c" ? "use.c" : "use.cpp")
        try """
        #include <budpipeline_plugin.h>
        #include <budpipeline_plugin_helpers.h>
        int uses_them(const bp_host_api_v1 *host, bp_call *call) {
            bp_bytes text = bp_text("x");
            return (int)text.len + (int)bp_complete(host, call, NULL) + (int)BP_HAS_FIELD(host, bp_host_api_v1, is_cancelled);
        }
        """.write(to: source, atomically: true, encoding: .utf8)
        let result = try await ProcessRunner.run(
            compiler,
            [
                standard, "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-fsyntax-only", "-I", Repository.path("Sources/PluginABI/include"),
                "-I", Repository.path("sdk/c/include"), source.path,
            ])
        #expect(result.status == 0, "\(language): \(result.standardError)")
    }
}
