import BudJSON
import Foundation
import PipelineEngine
import PluginSchema
import Runtime
import Storage
import Testing
import _BudPipelineTestSupport

/// What the runtime reports when inputs or requests race: whether an input was taken, whether a
/// retry started a new execution.
@Suite("Race outcomes", .serialized)
struct RaceOutcomeTests {
    @Test("a retry starts one execution; asked again it answers with that one", arguments: TestBackend.available)
    func retryOnce(backend: TestBackend) async throws {
        try await RuntimeHarness.with(backend) { harness in
            let (failed, _) = try await harness.run(RuntimeTests.dag([RuntimeTests.step("f", "fail", params: ["message": "boom"])]))
            #expect(failed.status == .failed)
            guard case .started(let retry) = try await harness.runtime.retry(executionID: failed.id) else {
                Issue.record("the first retry did not start an execution")
                return
            }
            #expect(retry.retryOf == failed.id)
            // The retry runs meanwhile: compare which execution, not its state.
            let again = try await harness.runtime.retry(executionID: failed.id)
            #expect(again == .alreadyRetried(again.execution) && again.execution.id == retry.id, "\(again)")
        }
    }
}
