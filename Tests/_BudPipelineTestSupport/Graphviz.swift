import Foundation

/// Graphviz's `dot`, which the SVG tests need: with `BUDPIPELINE_REQUIRE_GRAPHVIZ=1` (the test
/// command sets it and installs Graphviz) a missing `dot` fails them instead of skipping them.
public enum Graphviz {
    public static var isUsable: Bool {
        isInstalled || ProcessInfo.processInfo.environment["BUDPIPELINE_REQUIRE_GRAPHVIZ"] == "1"
    }

    /// Whether `dot` is on `PATH`.
    public static var isInstalled: Bool {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/dot") }
    }
}
