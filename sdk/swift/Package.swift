// swift-tools-version:6.1
import PackageDescription

/// The BudPipeline plugin SDK for Swift: PluginKit (write a plugin) and PluginKitTesting (test it
/// through the BudPipeline host), with no package dependencies, so that a plugin builds offline
/// with an empty package cache. Its sources are the server's own (linked here); `budpipeline
/// plugin new` copies the package into each new Swift plugin (see docs/plugins.md, "Writing a
/// plugin in Swift").
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "budpipeline-plugin-sdk",
    products: [
        .library(name: "PluginKit", targets: ["PluginKit"]),
        .library(name: "PluginKitTesting", targets: ["PluginKitTesting"]),
    ],
    targets: [
        .target(name: "PluginABI", path: "Sources/PluginABI"),
        .target(name: "BudJSON", swiftSettings: swiftSettings),
        .target(name: "PluginSchema", dependencies: ["BudJSON", "PluginABI"], swiftSettings: swiftSettings),
        .target(name: "PluginKit", dependencies: ["BudJSON", "PluginABI", "PluginSchema"], swiftSettings: swiftSettings),
        .target(name: "PluginKitTesting", dependencies: ["BudJSON", "PluginSchema"], swiftSettings: swiftSettings),
    ]
)
