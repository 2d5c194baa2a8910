import ArgumentParser
import BudJSON
import BudPipelineHost
import Foundation
import Logging
import PluginSchema
import PluginTesting
import WorkMarks

/// The cost of calling a plugin's `execute` with a small JSON request and result.
struct PluginCallBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugin-call",
        abstract: "Plugin call overhead: ABI crossing, JSON both ways, PluginKit, and the thread-pool hop."
    )

    @Option(help: "Calls per round.")
    var iterations = 200_000

    func run() async throws {
        var logger = Logger(label: "benchmark")
        logger.logLevel = .error
        let configuration = PluginHostConfiguration(
            pluginDirectories: [],
            pluginFiles: [try Self.compileNoopPlugin(), try BuildProducts.library(named: "Greeter")]
        )
        let host = await PluginHost.load(configuration: configuration, logger: logger)
        guard host.refusals.isEmpty, let noop = host.action("noop"), let greet = host.action("greet") else {
            throw ValidationError("the benchmark plugins did not load: \(host.refusals)")
        }
        print("plugin call overhead (\(iterations) calls per round, median of 7 rounds)")
        for (label, action, params) in [
            ("C plugin `noop` (no work of its own)", noop, ["text": "hello", "count": 3] as JSONObject),
            (
                "Swift plugin `greet` (PluginKit: decodes the request, builds a greeting, encodes outputs)", greet,
                ["name": "Ada"] as JSONObject
            ),
        ] {
            let request = ExecuteRequest(
                action: action.metadata.type, executionID: "3f2b8c1e-0000-4000-8000-000000000001", stepID: "step_1",
                idempotencyKey: "3f2b8c1e-0000-4000-8000-000000000001/step_1/0", params: params
            )
            let bytes = request.json.serialized()
            print("\n\(label); request \(bytes.count) bytes")
            let crossing = Measurement.run(
                "ABI crossing: host calls execute, plugin writes its result, host copies it", iterations: iterations
            ) {
                precondition(host.rawExecuteOnCurrentThread(action: action, input: bytes).status == .ok)
            }
            print(crossing.line)
            let inProcess = try Measurement.run(
                "in-process execute: + host encodes the request and decodes the outcome", iterations: iterations
            ) {
                guard case .completed = try host.executeOnCurrentThread(request) else { fatalError("unexpected outcome") }
            }
            print(inProcess.line)
            let pooled = try await Measurement.run(
                "PluginHost.execute: + hop to a plugin thread and back", iterations: max(1, iterations / 20)
            ) {
                guard case .completed = try await host.execute(request) else { fatalError("unexpected outcome") }
            }
            print(pooled.line)
        }
        await host.shutdown()
        try await measureIsolation(logger: logger)

        // What a server pays per plugin call and per transition to survive crash loops.
        let marks = FileManager.default.temporaryDirectory.appendingPathComponent("budpipeline-bench-marks-\(getpid())").path
        try WorkMarks.open(directory: marks, worker: "benchmark")
        print("\nwork marks (docs/operations.md, Crash loops)")
        let mark = Measurement.run("a work mark: build its record, begin and end", iterations: iterations) {
            WorkMarks.during(
                WorkMark(
                    kind: .execute, executionID: "3f2b8c1e-0000-4000-8000-000000000001", stepIDs: ["step_1"], plugin: "noop",
                    action: "noop")
            ) {}
        }
        print(mark.line)
        WorkMarks.closeCleanly()
        try? FileManager.default.removeItem(atPath: marks)
    }

    /// One `execute` at a time through `PluginHost.execute`, in the server and in a plugin process:
    /// the latency of each call, p50 and p99 (docs/plugins.md, "Isolation").
    private func measureIsolation(logger: Logger) async throws {
        let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("budpipeline").path
        guard FileManager.default.isExecutableFile(atPath: runner) else {
            throw ValidationError("\(runner) is missing: build the budpipeline product too (swift build -c release)")
        }
        let calls = max(1000, iterations / 20)
        print("\nisolation: PluginHost.execute, one call at a time, \(calls) calls (p50 / p99 per call)")
        for isolation in PluginIsolation.allCases {
            var configuration = PluginHostConfiguration(pluginDirectories: [], pluginFiles: [try Self.compileNoopPlugin()])
            configuration.isolation = isolation
            configuration.processSettings.runner = [runner, "plugin-process"]
            let host = await PluginHost.load(configuration: configuration, logger: logger)
            guard host.refusals.isEmpty, host.action("noop") != nil else { throw ValidationError("noop did not load: \(host.refusals)") }
            let request = ExecuteRequest(
                action: "noop", executionID: "3f2b8c1e-0000-4000-8000-000000000001", stepID: "step_1",
                idempotencyKey: "3f2b8c1e-0000-4000-8000-000000000001/step_1/0", params: ["text": "hello", "count": 3])
            for _ in 0..<(calls / 10) { _ = try await host.execute(request) }
            var latencies: [Duration] = []
            latencies.reserveCapacity(calls)
            for _ in 0..<calls {
                let started = ContinuousClock.now
                guard case .completed = try await host.execute(request) else { throw ValidationError("unexpected outcome") }
                latencies.append(ContinuousClock.now - started)
            }
            latencies.sort()
            func microseconds(_ fraction: Double) -> String {
                let value = latencies[min(latencies.count - 1, Int(Double(latencies.count) * fraction))]
                return String(format: "%.1f µs", Double(value.components.attoseconds) / 1e12 + Double(value.components.seconds) * 1e6)
            }
            print(
                "  \(isolation.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0)) p50 \(microseconds(0.5))  p99 \(microseconds(0.99))"
            )
            await host.shutdown()
        }
    }

    /// Compiles Benchmarks/Plugins/noop.c with the system C compiler into a temporary directory.
    static func compileNoopPlugin() throws -> String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("budpipeline-bench-\(getpid())-libnoop.so").path
        let compiler = Process()
        compiler.executableURL = URL(fileURLWithPath: ProcessInfo.processInfo.environment["CC"] ?? "/usr/bin/cc")
        compiler.arguments = [
            "-std=c11", "-O2", "-shared", "-fPIC", "-fvisibility=hidden", "-I",
            root.appendingPathComponent("Sources/PluginABI/include").path,
            "-o", output, root.appendingPathComponent("Benchmarks/Plugins/noop.c").path,
        ]
        try compiler.run()
        compiler.waitUntilExit()
        guard compiler.terminationStatus == 0 else { throw ValidationError("compiling Benchmarks/Plugins/noop.c failed") }
        return output
    }
}
