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
}
