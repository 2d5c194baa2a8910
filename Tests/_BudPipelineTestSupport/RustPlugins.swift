import Foundation

/// Builds the Rust example plugin of `sdk/rust/examples/word-count` with cargo (offline: the SDK
/// uses std only), once per test process.
public struct RustPlugins: Sendable {
    public static let shared = RustPlugins()

    private let example = BuildOnce { try await compile() }

    /// The path of `libword_count.so`.
    public func wordCount() async throws -> String {
        try await example.path()
    }

    /// cargo on PATH, else rustup's.
    static var cargo: String {
        let candidates =
            (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { "\($0)/cargo" }
            + [NSHomeDirectory() + "/.cargo/bin/cargo"]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? "cargo"
    }

    private static func compile() async throws -> String {
        let target = FileManager.default.temporaryDirectory.appendingPathComponent("budpipeline-rust-\(getpid())").path
        let result = try await ProcessRunner.run(
            cargo,
            [
                "build", "--offline", "--release", "--quiet", "--manifest-path",
                Repository.path("sdk/rust/examples/word-count/Cargo.toml"), "--target-dir", target,
            ],
            timeout: .seconds(600))
        guard result.status == 0 else { throw FixtureError("cargo build of the Rust example failed: \(result.standardError)") }
        return target + "/release/libword_count.so"
    }
}
