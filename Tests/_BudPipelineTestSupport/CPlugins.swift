import Foundation

/// Installs the plugin C SDK (`scripts/install-sdk.sh`) under a fresh prefix and builds the C
/// example of `sdk/c/examples/word-count` the way its comment says, with the flags pkg-config
/// gives for `budpipeline-plugin` and `jansson`; once per test process.
public struct CPlugins: Sendable {
    public static let shared = CPlugins()

    private let example = BuildOnce { try await compile() }

    /// The path of the C `libword_count.so`.
    public func wordCount() async throws -> String {
        try await example.path()
    }

    private static func compile() async throws -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("budpipeline-c-sdk-\(getpid())-\(UUID().uuidString)")
        let prefix = root.appendingPathComponent("prefix").path
        let install = try await ProcessRunner.run("/bin/bash", [Repository.path("scripts/install-sdk.sh"), prefix])
        guard install.status == 0 else { throw FixtureError("install-sdk.sh failed: \(install.standardError)") }
        let environment = ["PKG_CONFIG_PATH": prefix + "/lib/pkgconfig"]
        let cflags = try await ProcessRunner.run(
            "/usr/bin/pkg-config", ["--cflags", "budpipeline-plugin", "jansson"], environment: environment)
        let libs = try await ProcessRunner.run("/usr/bin/pkg-config", ["--libs", "jansson"], environment: environment)
        guard cflags.status == 0, libs.status == 0 else {
            throw FixtureError("pkg-config failed: \(cflags.standardError)\(libs.standardError)")
        }
        let output = root.appendingPathComponent("libword_count.so").path
        let split = { (text: String) in text.split(whereSeparator: \.isWhitespace).map(String.init) }
        let compiler = ProcessInfo.processInfo.environment["CC"] ?? "/usr/bin/cc"
        let result = try await ProcessRunner.run(
            compiler,
            ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-fvisibility=hidden", "-Wl,--no-undefined"]
                + split(cflags.standardOutput) + ["-o", output, Repository.path("sdk/c/examples/word-count/word_count.c")]
                + split(libs.standardOutput))
        guard result.status == 0 else { throw FixtureError("compiling the C example failed: \(result.standardError)") }
        return output
    }
}
