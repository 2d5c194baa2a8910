import Foundation
import Testing
import _BudPipelineTestSupport

/// A PluginKit handler's optional functions are protocol requirements of the protocol it adopts
/// for them, so a mis-typed one is a compile error instead of a function the host never calls
/// (before, an `onEvent` with another argument label compiled and events were answered
/// `step_completed: false` forever). Type-checks small handlers against the built PluginKit.
@Suite struct HandlerShapeTests {
    static func typecheck(_ source: String) async throws -> ProcessOutput {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("handler-\(UUID().uuidString).swift")
        try source.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let products = URL(fileURLWithPath: Repository.productsDirectory)
        return try await ProcessRunner.run(
            "/usr/bin/env",
            [
                "swiftc", "-typecheck", "-I", products.appendingPathComponent("Modules").path,
                "-Xcc", "-fmodule-map-file=" + products.appendingPathComponent("PluginABI.build/module.modulemap").path,
                "-Xcc", "-I" + Repository.path("Sources/PluginABI/include"), file.path,
            ],
            timeout: .seconds(300))
    }

    static func handler(adopting protocols: String, onEvent signature: String) -> String {
        """
        import BudJSON
        import PluginKit
        import PluginSchema

        struct Waiter: \(protocols) {
            static let metadata = ActionMetadata(
                type: "waiter", name: "Waiter", category: "Tests", description: "Waits.", executionMode: .eventDriven)
            init(configuration: PluginConfiguration) throws {}
            func execute(_ request: ExecuteRequest, context: StepContext) throws -> StepOutcome {
                .awaitingEvent(externalWorkflowID: "x")
            }
            \(signature) { .ignore }
        }
        """
    }

    @Test func aMislabelledOnEventDoesNotCompile() async throws {
        let wrong = try await Self.typecheck(
            Self.handler(
                adopting: "EventHandling", onEvent: "func onEvent(event: EventRequest, context: StepContext) throws -> EventOutcome"))
        #expect(wrong.status != 0)
        #expect(
            wrong.standardError.contains("different argument labels from those required by protocol 'EventHandling'"),
            "\(wrong.standardError)")
        let right = try await Self.typecheck(
            Self.handler(
                adopting: "EventHandling", onEvent: "func onEvent(_ event: EventRequest, context: StepContext) throws -> EventOutcome"))
        #expect(right.status == 0, "\(right.standardError)")
    }

    /// Builds `source` into a plugin library against the built PluginKit (its object files).
    static func library(_ source: String) async throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("handler-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent("plugin.swift")
        try source.write(to: file, atomically: true, encoding: .utf8)
        let products = URL(fileURLWithPath: Repository.productsDirectory)
        var objects: [String] = []
        for module in ["PluginKit", "BudJSON", "PluginSchema", "PluginABI"] {
            let build = products.appendingPathComponent("\(module).build")
            objects += try FileManager.default.contentsOfDirectory(atPath: build.path).filter { $0.hasSuffix(".o") }.sorted()
                .map { build.appendingPathComponent($0).path }
        }
        let output = directory.appendingPathComponent("libWaiter.so").path
        let result = try await ProcessRunner.run(
            "/usr/bin/env",
            [
                "swiftc", "-emit-library", "-parse-as-library", "-module-name", "Waiter", "-I",
                products.appendingPathComponent("Modules").path, "-Xcc",
                "-fmodule-map-file=" + products.appendingPathComponent("PluginABI.build/module.modulemap").path, "-Xcc",
                "-I" + Repository.path("Sources/PluginABI/include"), file.path, "-o", output,
            ] + objects,
            timeout: .seconds(300))
        guard result.status == 0 else { throw FixtureError("swiftc failed: \(result.standardError)") }
        return output
    }

    @Test func anEventDrivenHandlerWithoutEventHandlingIsRefusedAtInit() async throws {
        let entry = """

            @c(bp_plugin_entry_v1)
            public func waiterEntry(_ host: UnsafeRawPointer?) -> UnsafeRawPointer? {
                PluginExport.entry(host: host, manifest: PluginManifest(name: "waiter", version: "1.0.0"), handlers: [Waiter.self])
            }
            """
        // The same handler without an onEvent at all: it compiles (the protocol does not ask for
        // one), but the host could never finish its steps, so the plugin refuses to start.
        let eventless = Self.handler(adopting: "StepHandler", onEvent: "func unrelated() -> EventOutcome") + entry
        let refused = try await ProcessRunner.run(Repository.executable, ["plugins", "check", try await Self.library(eventless)])
        #expect(refused.status == 1)
        #expect(
            refused.standardOutput.contains(
                "refused: init failed (FATAL_ERROR): action 'waiter' is event_driven but its handler Waiter does not adopt EventHandling"),
            "\(refused.standardOutput)")
        let waiting = Self.handler(
            adopting: "EventHandling", onEvent: "func onEvent(_ event: EventRequest, context: StepContext) throws -> EventOutcome")
        let loaded = try await ProcessRunner.run(Repository.executable, ["plugins", "check", try await Self.library(waiting + entry)])
        #expect(loaded.status == 0, "\(loaded.standardOutput)")
    }
}
