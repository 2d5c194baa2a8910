import BudJSON
import Foundation
import PipelineEngine
import PluginSchema
import Testing

/// A machine rebuilt from what the runtime stores (the steps and the execution record) must behave
/// exactly like the machine that kept running: same actions for every later input.
@Suite struct ExecutionRestoreTests {
    /// Drives `json` to its end, answering each plugin call with `answer` and firing timers in due
    /// order. Before every input, a machine restored from the current state must produce the same
    /// actions and end in the same state as the original.
    private func simulate(
        _ json: String,
        params: JSONObject = [:],
        answer: (StepDispatch) -> ExecutionInput,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> ExecutionStateMachine {
        let pipeline = try EngineFixtures.pipeline(json)
        let bound = try ParameterBinding.bind(pipeline.definition.parameters, provided: params)
        var machine = ExecutionStateMachine(pipeline: pipeline, executionID: "exec-1", params: bound)
        var now = EngineFixtures.start
        var calls: [StepDispatch] = []
        var awaiting: [String] = []
        var timers: [String: (timer: EngineTimer, due: Date)] = [:]
        var next: ExecutionInput? = .start
        var inputs = 0
        while let input = next, inputs < 500 {
            inputs += 1
            var restored = try ExecutionStateMachine(
                restoring: pipeline, executionID: "exec-1", params: bound, steps: machine.steps, execution: machine.execution)
            let original = machine.handle(input, at: now)
            let replayed = restored.handle(input, at: now)
            #expect(replayed == original, "input \(inputs): \(input)", sourceLocation: sourceLocation)
            #expect(restored.steps == machine.steps, sourceLocation: sourceLocation)
            #expect(restored.execution == machine.execution, sourceLocation: sourceLocation)
            for action in original {
                switch action {
                case .dispatch(let dispatch): calls.append(dispatch)
                case .abandon(let abandonment):
                    calls.removeAll { $0.stepID == abandonment.stepID }
                    awaiting.removeAll { $0 == abandonment.stepID }
                case .setTimer(let timer, let due): timers[timer.key] = (timer, due)
                case .cancelTimer(let timer): timers[timer.key] = nil
                case .stepChanged(let state) where state.status == .awaitingEvent && state.action != "wait_until":
                    if !awaiting.contains(state.stepID) { awaiting.append(state.stepID) }
                default: break
                }
            }
            now = now.addingTimeInterval(1)
            if !calls.isEmpty {
                next = answer(calls.removeFirst())
            } else if !awaiting.isEmpty {
                next = .eventCompletedStep(stepID: awaiting.removeFirst(), status: .completed, outputs: ["event": true], error: nil)
            } else if let earliest = timers.values.min(by: { $0.due < $1.due }) {
                timers[earliest.timer.key] = nil
                now = max(now, earliest.due)
                next = .timerFired(earliest.timer)
            } else {
                next = nil
            }
        }
        #expect(machine.execution.status.isFinished, "the simulation ends the execution", sourceLocation: sourceLocation)
        return machine
    }

    @Test func branchesRetriesAndToleratedFailuresRestoreExactly() throws {
        let machine = try simulate(
            #"""
            {"name": "mix", "parameters": [{"name": "size", "default": 7}],
             "settings": {"max_parallel_steps": 2, "fail_fast": false},
             "steps": [
               {"id": "start", "name": "Start", "action": "work"},
               {"id": "shaky", "name": "Shaky", "action": "work", "depends_on": ["start"], "on_failure": "retry",
                "retry": {"max_attempts": 3, "backoff_seconds": 5}},
               {"id": "optional", "name": "Optional", "action": "work", "depends_on": ["start"], "on_failure": "continue"},
               {"id": "choose", "name": "Choose", "action": "conditional", "depends_on": ["start"], "params": {"branches": [
                 {"id": "small", "condition": "{{ params.size < 5 }}", "target_step": "small_path"},
                 {"id": "big", "condition": "{{ params.size >= 5 }}", "target_step": "big_path"}]}},
               {"id": "small_path", "name": "Small", "action": "work", "depends_on": ["choose", "shaky"]},
               {"id": "big_path", "name": "Big", "action": "work", "depends_on": ["choose", "shaky"]},
               {"id": "deploy", "name": "Deploy", "action": "deploy", "depends_on": ["big_path"], "params": {"model": "m", "slo": "s"}},
               {"id": "join", "name": "Join", "action": "work", "depends_on": ["small_path", "big_path", "optional", "deploy"]}
             ],
             "outputs": {"attempts": "{{ steps.shaky.outputs.attempt }}"}}
            """#
        ) { dispatch in
            switch dispatch.stepID {
            case "shaky" where dispatch.attempt < 2:
                .stepFailed(stepID: "shaky", attempt: dispatch.attempt, failure: .retryable("not yet"), outputs: [:])
            case "optional":
                .stepFailed(stepID: "optional", attempt: 0, failure: .permanent("optional failed"), outputs: [:])
            case "deploy":
                .stepAwaitingEvent(stepID: "deploy", attempt: 0, externalWorkflowID: "wf-1", timeoutSeconds: 60, outputs: ["started": true])
            default:
                .stepSucceeded(stepID: dispatch.stepID, attempt: dispatch.attempt, outputs: ["attempt": .int(dispatch.attempt)])
            }
        }
        #expect(machine.execution.status == .completed)
        #expect(machine.execution.outputs == ["attempts": 2])
        #expect(machine.step("small_path")?.status == .skipped)
        #expect(machine.step("optional")?.failureTolerated == true)
    }

    @Test func aFailureWithoutFailFastIsRememberedAcrossARestore() throws {
        let machine = try simulate(
            #"""
            {"name": "late-failure", "settings": {"fail_fast": false},
             "steps": [
               {"id": "bad", "name": "Bad", "action": "work"},
               {"id": "slow1", "name": "Slow 1", "action": "work"},
               {"id": "slow2", "name": "Slow 2", "action": "work", "depends_on": ["slow1"]},
               {"id": "after_bad", "name": "After bad", "action": "work", "depends_on": ["bad"]}
             ]}
            """#
        ) { dispatch in
            dispatch.stepID == "bad"
                ? .stepFailed(stepID: "bad", attempt: 0, failure: .permanent("broken"), outputs: [:])
                : .stepSucceeded(stepID: dispatch.stepID, attempt: dispatch.attempt, outputs: [:])
        }
        #expect(machine.execution.status == .failed)
        #expect(machine.execution.errorInfo?["step_id"] == "bad")
        #expect(machine.step("slow2")?.status == .completed)
        #expect(machine.step("after_bad")?.status == .skipped)
    }

    @Test func timeoutsAndWaitsRestoreExactly() throws {
        let machine = try simulate(
            #"""
            {"name": "timers", "settings": {"timeout_seconds": 10000},
             "steps": [
               {"id": "pause", "name": "Pause", "action": "wait_until", "params": {"duration_hours": 0.5}},
               {"id": "slow", "name": "Slow", "action": "work", "timeout_seconds": 30},
               {"id": "deploy", "name": "Deploy", "action": "deploy", "depends_on": ["pause"], "params": {"model": "m", "slo": "s"}}
             ]}
            """#
        ) { dispatch in
            dispatch.stepID == "slow"
                ? .stepFailed(stepID: "slow", attempt: dispatch.attempt, failure: .timedOut("took too long"), outputs: [:])
                : .stepSucceeded(stepID: dispatch.stepID, attempt: dispatch.attempt, outputs: [:])
        }
        #expect(machine.execution.status == .failed)
        #expect(machine.step("slow")?.status == .timedOut)
    }

    @Test func storedStateThatDoesNotFitIsRefused() throws {
        let pipeline = try EngineFixtures.pipeline(
            #"{"name": "two", "steps": [{"id": "a", "name": "A", "action": "work"}, {"id": "b", "name": "B", "action": "work"}]}"#)
        let machine = ExecutionStateMachine(pipeline: pipeline, executionID: "e", params: [:])
        let execution = machine.execution
        #expect(throws: ExecutionRestoreError.missingStep("b")) {
            _ = try ExecutionStateMachine(
                restoring: pipeline, executionID: "e", params: [:], steps: [machine.steps[0]], execution: execution)
        }
        let stranger = StepState(stepID: "z", name: "Z", action: "work", sequence: 3)
        #expect(throws: ExecutionRestoreError.unknownStep("z")) {
            _ = try ExecutionStateMachine(
                restoring: pipeline, executionID: "e", params: [:], steps: machine.steps + [stranger], execution: execution)
        }
        #expect(throws: ExecutionRestoreError.duplicateStep("a")) {
            _ = try ExecutionStateMachine(
                restoring: pipeline, executionID: "e", params: [:], steps: machine.steps + [machine.steps[0]], execution: execution)
        }
    }
}
