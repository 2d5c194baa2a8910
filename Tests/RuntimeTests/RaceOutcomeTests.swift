import BudJSON
import Foundation
import PipelineEngine
import PipelineRuntime
import PluginSchema
import Storage
import Testing
import _BudPipelineTestSupport

/// What the runtime reports when inputs or requests race: whether an input was taken, whether a
/// retry started a new execution.
@Suite("Race outcomes", .serialized)
struct RaceOutcomeTests {
    @Test("of two completions of one awaiting step exactly one is taken; one after the end is not", arguments: TestBackend.available)
    func completionsRace(backend: TestBackend) async throws {
        try await RuntimeHarness.with(backend) { harness in
            let dag = RuntimeTests.dag([RuntimeTests.step("await", "probe_await")])
            let started = try await harness.runtime.startExecution(ExecutionRequest(dag: dag))
            _ = try await harness.waitForSteps(of: started.id) { $0.first?.state.status == .awaitingEvent }
            let completion = ExecutionInput.eventCompletedStep(stepID: "await", status: .completed, outputs: ["done": true], error: nil)
            async let first = harness.runtime.apply(completion, to: started.id)
            async let second = harness.runtime.apply(completion, to: started.id)
            let taken = try await [first, second]
            #expect(taken.filter { $0 }.count == 1, "\(taken)")
            #expect(try await harness.runtime.waitUntilFinished(executionID: started.id, timeout: .seconds(10)).status == .completed)
            #expect(try await harness.runtime.apply(completion, to: started.id) == false)
            #expect(try await harness.runtime.apply(.cancel(reason: "late"), to: started.id) == false)
        }
    }

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
