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
        // `budpipeline plugin new` points this at the BudPipeline package it was run from.
        .package(name: "budpipeline", path: "../..")
    ],
    targets: [
        .target(
            name: "MyPlugin",
            dependencies: [.product(name: "PluginKit", package: "budpipeline")],
            linkerSettings: [
                .unsafeFlags(
                    ["-Xlinker", "--no-undefined", "-Xlinker", "--version-script=\(exportsFile)"],
                    .when(platforms: [.linux])
                )
            ]
        ),
        // The tests load the built library through the host's own loader, as the server does.
        .testTarget(
            name: "MyPluginTests",
            dependencies: [.product(name: "PluginTesting", package: "budpipeline")]
        ),
    ]
)
