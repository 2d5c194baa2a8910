// swift-tools-version:6.1
import PackageDescription

/// Only the plugin's entry symbol is exported; everything else stays private to the library.
let exportsFile = Context.packageDirectory + "/plugin.exports"

let package = Package(
    name: "MyPlugin",
    products: [
        // The plugin: a shared library the BudPipeline host loads with dlopen.
        .library(name: "MyPlugin", type: .dynamic, targets: ["MyPlugin"])
    ],
    dependencies: [
        // The BudPipeline plugin SDK, copied into vendor/ by `budpipeline plugin new`: it has no
        // dependencies of its own, so the plugin builds offline with an empty package cache.
        .package(name: "budpipeline-plugin-sdk", path: "../../sdk/swift")
    ],
    targets: [
        .target(
            name: "MyPlugin",
            dependencies: [.product(name: "PluginKit", package: "budpipeline-plugin-sdk")],
            linkerSettings: [
                .unsafeFlags(
                    ["-Xlinker", "--no-undefined", "-Xlinker", "--version-script=\(exportsFile)"],
                    .when(platforms: [.linux])
                )
            ]
        ),
        // The tests call the built library through the BudPipeline host (`budpipeline plugins call`:
        // set BUDPIPELINE=/path/to/budpipeline or put it on PATH), as the server does.
        .testTarget(
            name: "MyPluginTests",
            dependencies: [.product(name: "PluginKitTesting", package: "budpipeline-plugin-sdk")]
        ),
    ]
)
