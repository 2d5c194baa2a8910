import BudJSON
import Foundation
import PipelineEngine
import PluginSchema
import Testing

/// The step transition table: every transition in it is taken by some scenario here, each
/// scenario lands where the table says, and no scenario makes a move the table does not allow.
@Suite("Step transitions")
struct StepTransitionTests {
    let t0 = EngineFixtures.start

    private func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

    /// The moves the engine reported as faults in `actions`.
    private func faults(_ actions: [ExecutionAction]) -> [String] {
        actions.compactMap { action in
            guard case .log(let line) = action, line.message.hasPrefix("engine fault") else { return nil }
            return line.message
        }
    }

    /// Runs `inputs` in order, checking that no input makes a move outside the table; returns the
    /// transitions taken.
    private func run(
        _ json: String, _ inputs: [(ExecutionInput, Double)], sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> (StepTransitions, ExecutionStateMachine) {
        var machine = try EngineFixtures.machine(json)
        var all = machine.handle(.start, at: t0)
        for (input, seconds) in inputs { all += machine.handle(input, at: at(seconds)) }
        #expect(faults(all) == [], sourceLocation: sourceLocation)
        return (machine.transitionsTaken, machine)
    }

    @Test func theTableNamesEachTargetOnceAndLeavesNoSettledStatus() {
        for transition in StepTransition.allCases {
            #expect(!transition.sources.isEmpty)
            #expect(!transition.sources.contains(transition.target), "\(transition) moves somewhere else")
            // Nothing leaves a settled status: a completed, failed, skipped, timed-out or
            // cancelled step stays so.
            #expect(transition.sources.allSatisfy { !$0.isSettled }, "\(transition) leaves a settled status")
        }
    }

    @Test func everyTransitionIsTakenAndNoneOutsideTheTable() throws {
        var taken = StepTransitions()
        // start, complete, skip (condition false), skip (upstream failed), fail.
        let (plain, plainMachine) = try run(
            #"{"name": "p", "steps": [{"id": "a", "name": "A", "action": "work"}, {"id": "no", "name": "N", "action": "log", "condition": "{{ false }}"}, {"id": "b", "name": "B", "action": "work", "depends_on": ["a"]}, {"id": "c", "name": "C", "action": "work", "depends_on": ["b"]}]}"#,
            [
                (.stepSucceeded(stepID: "a", attempt: 0, outputs: [:]), 1),
                (.stepFailed(stepID: "b", attempt: 0, failure: .permanent("no"), outputs: [:]), 2),
            ])
        #expect(plainMachine.step("c")?.status == .skipped)
        taken.formUnion(plain)
        // awaitEvent, then complete from awaiting; scheduleRetry, retryDue, then timeOut.
        let (waiting, waitingMachine) = try run(
            #"{"name": "w", "steps": [{"id": "d", "name": "D", "action": "work", "on_failure": "retry", "retry": {"max_attempts": 2, "backoff_seconds": 1}}]}"#,
            [
                (.stepAwaitingEvent(stepID: "d", attempt: 0, externalWorkflowID: "x-1", timeoutSeconds: 60, outputs: [:]), 1),
                (.eventCompletedStep(stepID: "d", status: .failed, outputs: [:], error: "quota"), 2),
                (.timerFired(EngineTimer(kind: .retry, stepID: "d", attempt: 1)), 4),
                (.stepFailed(stepID: "d", attempt: 1, failure: .timedOut("slow"), outputs: [:]), 5),
            ])
        #expect(waitingMachine.step("d")?.status == .timedOut)
        taken.formUnion(waiting)
        // abandon (running and retrying) and skipUnstarted: a cancel while steps run, wait for a
        // retry, and wait their turn.
        let (cancelled, cancelledMachine) = try run(
            #"{"name": "c", "steps": [{"id": "r", "name": "R", "action": "work"}, {"id": "t", "name": "T", "action": "work", "on_failure": "retry", "retry": {"max_attempts": 3, "backoff_seconds": 100}}, {"id": "later", "name": "L", "action": "work", "depends_on": ["r"]}]}"#,
            [
                (.stepFailed(stepID: "t", attempt: 0, failure: .retryable("flaky"), outputs: [:]), 1),
                (.cancel(reason: "stop"), 2),
            ])
        #expect(cancelledMachine.step("r")?.status == .cancelled)
        #expect(cancelledMachine.step("t")?.status == .cancelled)
        #expect(cancelledMachine.step("later")?.status == .skipped)
        taken.formUnion(cancelled)

        let missing = StepTransition.allCases.filter { !taken.contains($0) }
        #expect(missing == [], "transitions no scenario takes")
    }

    @Test func anInterruptedRetryFailsWithinTheTableAndLateResultsMoveNothing() throws {
        // The process kept dying on a step that was due for a retry: it fails from RETRYING,
        // which the table allows; a result for a step that is not running moves nothing.
        var machine = try EngineFixtures.machine(
            #"{"name": "i", "steps": [{"id": "a", "name": "A", "action": "work", "on_failure": "retry", "retry": {"max_attempts": 3, "backoff_seconds": 100}}]}"#
        )
        var actions = machine.handle(.start, at: t0)
        actions += machine.handle(.stepFailed(stepID: "a", attempt: 0, failure: .retryable("x"), outputs: [:]), at: at(1))
        actions += machine.handle(.stepInterrupted(stepID: "a", error: "died"), at: at(2))
        actions += machine.handle(.stepSucceeded(stepID: "a", attempt: 0, outputs: [:]), at: at(3))
        #expect(faults(actions) == [])
        #expect(machine.step("a")?.status == .failed)
        #expect(machine.transitionsTaken.members == [.start, .scheduleRetry, .fail])
    }
}

extension StepTransitionTests {
    @Test func eachTransitionHasItsOwnPlaceInTheSet() {
        var all = StepTransitions()
        for transition in StepTransition.allCases {
            var one = StepTransitions()
            one.insert(transition)
            #expect(one.members == [transition])
            all.insert(transition)
        }
        #expect(all.members == StepTransition.allCases)
    }
}
