// swift-tools-version:6.1
import PackageDescription

/// Upcoming language features every Swift target of the package enables.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

/// Linker flags of every bundled plugin: no undefined symbols (plugins never link to host
/// symbols) and, for Swift plugins, only the entry symbol exported.
let pluginExportsFile = Context.packageDirectory + "/Plugins/plugin.exports"
let swiftPluginLinkerSettings: [LinkerSetting] = [
    .unsafeFlags(["-Xlinker", "--no-undefined", "-Xlinker", "--version-script=\(pluginExportsFile)"])
]
let cPluginLinkerSettings: [LinkerSetting] = [.unsafeFlags(["-Xlinker", "--no-undefined"])]

let package = Package(
    name: "budpipeline",
    products: [
        .executable(name: "budpipeline", targets: ["budpipeline"]),
        .library(name: "PluginKit", targets: ["PluginKit"]),
        .library(name: "PluginTesting", targets: ["PluginTesting"]),
        .library(name: "BudPipelineHost", targets: ["BudPipelineHost"]),
        .library(name: "TextStats", type: .dynamic, targets: ["TextStats"]),
        .library(name: "Greeter", type: .dynamic, targets: ["Greeter"]),
        .library(name: "Notification", type: .dynamic, targets: ["Notification"]),
        .library(name: "ClusterDeploy", type: .dynamic, targets: ["ClusterDeploy"]),
        .library(name: "ModelBenchmark", type: .dynamic, targets: ["ModelBenchmark"]),
        .library(name: "ModelOperations", type: .dynamic, targets: ["ModelOperations"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        // OTLP export of traces: only the HTTP/protobuf exporter (the gRPC one would add
        // grpc-swift and minutes of clean build).
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0", traits: ["OTLPHTTP"]),
        // Running Graphviz's dot for graph pictures (no Foundation Process: async, deadlines,
        // output limits).
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2", traits: []),
    ],
    targets: [
        // The plugin C ABI: one header, nothing else.
        .target(name: "PluginABI", path: "Sources/PluginABI"),

        .target(name: "BudJSON", swiftSettings: swiftSettings),
        // The product's metrics: their names, help and labels in one catalog, and families of
        // labelled series with a bounded number of series each (swift-metrics only: the backend is
        // chosen by the process).
        .target(
            name: "Telemetry", dependencies: [.product(name: "CoreMetrics", package: "swift-metrics")], swiftSettings: swiftSettings),
        // The Prometheus backend: the catalog's metrics in a registry, rendered as text.
        .target(
            name: "MetricsExport",
            dependencies: [
                "Telemetry", .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings),
        // What the fuzz targets do with one input; the ordinary tests run the committed corpus
        // through it too (the fuzzing driver itself is added below with BUDPIPELINE_FUZZ=1).
        .target(
            name: "FuzzHarness", dependencies: ["BudJSON", "InboundEvents", "PipelineEngine", "Scheduling"],
            swiftSettings: swiftSettings),
        // The events other services send to POST /workflow-events, as read from their delivery.
        .target(name: "InboundEvents", dependencies: ["BudJSON"], swiftSettings: swiftSettings),
        // Durable records of the work in flight, read back after the process dies (crash loops).
        .target(name: "CWorkMarks", path: "Sources/CWorkMarks"),
        .target(name: "WorkMarks", dependencies: ["BudJSON", "CWorkMarks"], swiftSettings: swiftSettings),
        // What a plugin process does to itself before it opens an untrusted library: its own user,
        // a system call filter; and what the server does so that its plugin processes cannot read it.
        .target(name: "CPluginSandbox", path: "Sources/CPluginSandbox"),
        .target(name: "PluginSchema", dependencies: ["BudJSON", "PluginABI"], swiftSettings: swiftSettings),
        .target(name: "PluginKit", dependencies: ["BudJSON", "PluginABI", "PluginSchema"], swiftSettings: swiftSettings),
        // What the domain plugins share about the bud services: calls, settings, event shapes.
        .target(name: "BudServices", dependencies: ["PluginKit"], swiftSettings: swiftSettings),
        .target(
            name: "PipelineEngine",
            dependencies: [
                "BudJSON", "PluginSchema",
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BudPipelineHost",
            dependencies: [
                "BudJSON", "CPluginSandbox", "PluginABI", "PluginSchema", "WorkMarks",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Host",
            swiftSettings: swiftSettings
        ),
        // Storage: one store over two backends.
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite"),
        .systemLibrary(name: "CLibPQ", path: "Sources/CLibPQ"),
        .target(
            name: "Storage",
            dependencies: [
                "BudJSON", "PipelineEngine", "Telemetry", .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            // The migrations' SQL, one file per dialect and version, compiled into the binary.
            resources: [.embedInCode("Migrations/SQL")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "StorageSQLite", dependencies: ["Storage", "CSQLite", .product(name: "CoreMetrics", package: "swift-metrics")],
            swiftSettings: swiftSettings),
        .target(
            name: "StoragePostgres", dependencies: ["Storage", "CLibPQ", .product(name: "CoreMetrics", package: "swift-metrics")],
            swiftSettings: swiftSettings),
        .target(name: "Scheduling", swiftSettings: swiftSettings),
        .target(
            name: "PipelineRuntime",
            dependencies: [
                "BudJSON", "BudPipelineHost", "InboundEvents", "PipelineEngine", "PluginSchema", "Scheduling", "Storage", "StorageSQLite",
                "StoragePostgres", "Telemetry", "WorkMarks",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        // Pipelines and executions as graphs: DOT and Mermaid text, SVG laid out by Graphviz's dot.
        .target(
            name: "PipelineGraph",
            dependencies: ["BudJSON", "PipelineEngine", .product(name: "Subprocess", package: "swift-subprocess")],
            swiftSettings: swiftSettings
        ),
        // The web console's page, script and stylesheet, compiled into the binary (served at /ui).
        .target(name: "Console", resources: [.embedInCode("Assets")], swiftSettings: swiftSettings),
        .target(
            name: "HTTPAPI",
            dependencies: [
                "BudJSON", "BudPipelineHost", "Console", "InboundEvents", "MetricsExport", "PipelineEngine", "PipelineGraph",
                "PluginSchema",
                "PipelineRuntime", "Scheduling", "Storage", "Telemetry",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PluginTesting",
            dependencies: ["BudPipelineHost", "BudJSON", "PluginSchema", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "budpipeline",
            dependencies: [
                "BudPipelineHost", "BudJSON", "HTTPAPI", "MetricsExport", "PipelineEngine", "PipelineGraph", "PluginSchema",
                "PipelineRuntime",
                "Storage", "WorkMarks",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),

        // Bundled plugins, each its own shared library.
        .target(
            name: "TextStats",
            dependencies: ["PluginABI"],
            path: "Plugins/TextStats",
            cSettings: [.unsafeFlags(["-fvisibility=hidden"])],
            linkerSettings: cPluginLinkerSettings
        ),
        .target(
            name: "Greeter",
            dependencies: ["PluginKit"],
            path: "Plugins/Greeter",
            swiftSettings: swiftSettings,
            linkerSettings: swiftPluginLinkerSettings
        ),
        .target(
            name: "Notification",
            dependencies: ["BudServices", "PluginKit"],
            path: "Plugins/Notification",
            swiftSettings: swiftSettings,
            linkerSettings: swiftPluginLinkerSettings
        ),
        .target(
            name: "ClusterDeploy",
            dependencies: ["BudServices", "PluginKit"],
            path: "Plugins/ClusterDeploy",
            swiftSettings: swiftSettings,
            linkerSettings: swiftPluginLinkerSettings
        ),
        .target(
            name: "ModelBenchmark",
            dependencies: ["BudServices", "PluginKit"],
            path: "Plugins/ModelBenchmark",
            swiftSettings: swiftSettings,
            linkerSettings: swiftPluginLinkerSettings
        ),
        .target(
            name: "ModelOperations",
            dependencies: ["BudServices", "PluginKit"],
            path: "Plugins/ModelOperations",
            swiftSettings: swiftSettings,
            linkerSettings: swiftPluginLinkerSettings
        ),

        .executableTarget(
            name: "budpipeline-benchmarks",
            dependencies: [
                "BudPipelineHost", "BudJSON", "InboundEvents", "MetricsExport", "PipelineEngine", "PipelineGraph", "PluginSchema",
                "PluginTesting", "PipelineRuntime", "Storage", "StorageSQLite", "StoragePostgres", "WorkMarks",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Benchmarks",
            exclude: ["Plugins"],
            swiftSettings: swiftSettings
        ),

        // A stand-in for the Dapr sidecar (publish, service invocation, subscription delivery),
        // for end-to-end tests and local runs.
        .target(
            name: "DaprSidecar",
            dependencies: [
                "BudJSON",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),

        // A stand-in for the bud services the domain plugins call, behind the test sidecar.
        .target(
            name: "BudServicesSimulator",
            dependencies: ["BudJSON", "DaprSidecar"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "bud-simulator",
            dependencies: [
                "BudServicesSimulator", "DaprSidecar",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),

        // Test support and tests.
        .target(
            name: "_BudPipelineTestSupport",
            dependencies: [
                "BudPipelineHost", "PluginTesting", "BudJSON", "Storage", "StorageSQLite", "StoragePostgres",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            path: "Tests/_BudPipelineTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "BudJSONTests", dependencies: ["BudJSON"], swiftSettings: swiftSettings),
        .testTarget(name: "BudServicesTests", dependencies: ["BudServices"], swiftSettings: swiftSettings),
        .testTarget(name: "PluginSchemaTests", dependencies: ["PluginSchema", "BudJSON"], swiftSettings: swiftSettings),
        .testTarget(
            name: "PipelineEngineTests",
            dependencies: ["PipelineEngine", "PluginSchema", "BudJSON", "_BudPipelineTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PluginABITests",
            dependencies: ["PluginABI", "_BudPipelineTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PluginHostTests",
            dependencies: [
                "BudPipelineHost", "PluginSchema", "BudJSON", "PluginTesting", "_BudPipelineTestSupport",
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PluginKitTests",
            dependencies: [
                "PluginKit", "PluginSchema", "BudJSON", "BudPipelineHost", "DaprSidecar", "PluginTesting", "PipelineRuntime",
                "_BudPipelineTestSupport",
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "StorageTests",
            dependencies: ["Storage", "StorageSQLite", "StoragePostgres", "PipelineEngine", "BudJSON", "_BudPipelineTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RuntimeTests",
            dependencies: [
                "PipelineRuntime", "Storage", "PipelineEngine", "PluginSchema", "Scheduling", "BudJSON", "BudPipelineHost",
                "_BudPipelineTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "SchedulingTests", dependencies: ["Scheduling"], swiftSettings: swiftSettings),
        .testTarget(
            name: "PipelineGraphTests", dependencies: ["PipelineGraph", "PipelineEngine", "BudJSON", "_BudPipelineTestSupport"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "HTTPAPITests",
            dependencies: [
                "BudJSON", "BudPipelineHost", "BudServicesSimulator", "DaprSidecar", "HTTPAPI", "PipelineEngine", "PipelineRuntime",
                "Storage",
                "_BudPipelineTestSupport", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "CLITests", dependencies: ["_BudPipelineTestSupport", "BudJSON", "budpipeline"], swiftSettings: swiftSettings),
        .testTarget(name: "WorkMarksTests", dependencies: ["WorkMarks"], swiftSettings: swiftSettings),
        .testTarget(
            name: "TelemetryTests",
            dependencies: [
                "MetricsExport", "Telemetry", .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "FuzzCorpusTests", dependencies: ["FuzzHarness", "_BudPipelineTestSupport"], swiftSettings: swiftSettings),
    ]
)

// The libFuzzer driver exists only in fuzzing builds (scripts/fuzz.sh): its entry point needs
// `-sanitize=fuzzer`, which an ordinary build does not pass.
if Context.environment["BUDPIPELINE_FUZZ"] == "1" {
    package.targets.append(
        .executableTarget(name: "budpipeline-fuzz", dependencies: ["FuzzHarness"], path: "Fuzz/budpipeline-fuzz"))
    package.products.append(.executable(name: "budpipeline-fuzz", targets: ["budpipeline-fuzz"]))
}
