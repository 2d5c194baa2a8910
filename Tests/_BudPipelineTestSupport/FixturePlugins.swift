import Foundation

/// Builds the C fixture plugins of `Tests/Fixtures/plugins` into shared libraries with the system
/// C compiler, once per test process.
public actor FixturePlugins {
    public static let shared = FixturePlugins()

    /// Which copy of the ABI header a fixture is compiled against.
    public enum Header: Sendable {
        /// `Sources/PluginABI/include`: the header as it is now.
        case current
        /// `Tests/ABI/v1`: the frozen copy of the v1 header as released.
        case frozenV1
    }

    private var builds: [String: Task<String, any Error>] = [:]
    private let directory: URL

    init() {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("budpipeline-fixtures-\(getpid())")
    }

    /// The path of `lib<name>.so`, compiled from `Tests/Fixtures/plugins/<name>.c`.
    public func library(_ name: String, header: Header = .current) async throws -> String {
        if let build = builds[name] { return try await build.value }
        let directory = directory
        let build = Task { try await Self.compile(name, header: header, into: directory) }
        builds[name] = build
        return try await build.value
    }

    private static func compile(_ name: String, header: Header, into directory: URL) async throws -> String {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let output = directory.appendingPathComponent("lib\(name).so").path
        let include = header == .current ? Repository.path("Sources/PluginABI/include") : Repository.path("Tests/ABI/v1")
        let compiler = ProcessInfo.processInfo.environment["CC"] ?? "/usr/bin/cc"
        let result = try await ProcessRunner.run(
            compiler,
            [
                "-std=c11", "-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-fvisibility=hidden", "-Wl,--no-undefined",
                "-I", include, "-I", Repository.path("Tests/Fixtures/plugins"),
                "-o", output, Repository.path("Tests/Fixtures/plugins/\(name).c"),
            ]
        )
        guard result.status == 0 else {
            throw FixtureError("compiling fixture \(name) failed: \(result.standardError)")
        }
        return output
    }

    /// A new directory holding the named fixtures (symbolic links), for loading them as a plugin directory.
    public func directory(with names: [String]) async throws -> String {
        let target = FileManager.default.temporaryDirectory.appendingPathComponent("budpipeline-plugin-dir-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        for name in names {
            let library = try await library(name)
            try FileManager.default.createSymbolicLink(
                atPath: target.appendingPathComponent(URL(fileURLWithPath: library).lastPathComponent).path,
                withDestinationPath: library
            )
        }
        return target.path
    }
}

public struct FixtureError: Error, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
