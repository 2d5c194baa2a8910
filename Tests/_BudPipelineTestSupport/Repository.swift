public import Foundation
import PluginTesting

/// Paths of the repository and its build products, for tests.
public enum Repository {
    /// The repository root (found from this file's location at compile time).
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..")
        .standardizedFileURL

    /// The directory holding the built executables and plugin libraries of this build.
    public static var productsDirectory: String { BuildProducts.directory }

    /// The built `budpipeline` executable.
    public static var executable: String {
        URL(fileURLWithPath: productsDirectory).appendingPathComponent("budpipeline").path
    }

    public static func path(_ relative: String) -> String {
        root.appendingPathComponent(relative).path
    }
}
