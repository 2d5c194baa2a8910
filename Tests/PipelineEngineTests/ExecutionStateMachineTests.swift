import BudJSON
import Foundation
import PipelineEngine
import PluginSchema
import Synchronization
import Testing

@Suite struct ExecutionStateMachineTests {
    let t0 = EngineFixtures.start

    private func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

    // MARK: Ordering and parallelism

    @Test func aChainRunsInOrderAndResolvesItsOutputs() throws {
        var machine = try EngineFixtures.machine(
            #"{"name": "chain", "parameters": [{"name": "who", "default": "Ada"}], "steps": [{"id": "a", "name": "A", "action": "work", "params": {"greeting": "Hi {{ params.who }}"}}, {"id": "b", "name": "B", "action": "work", "depends_on": ["a"], "params": {"previous": "{{ steps.a.outputs.n }}"}}], "outputs": {"total": "{{ steps.b.outputs.n + steps.a.outputs.n }}", "label": "{{ params.who }}!"}}"#
        )
        let started = machine.handle(.start, at: t0)
        #expect(started.dispatches.map(\.params) == [["greeting": "Hi Ada"]])
        #expect(started.dispatches.first?.idempotencyKey == "exec-1/a/0")
        #expect(started.events.first == .executionStarted)
        #expect(machine.execution.status == .running)
        #expect(machine.execution.startedAt == t0)

        let afterA = machine.handle(.stepSucceeded(stepID: "a", attempt: 0, outputs: ["n": 2]), at: at(1))
        #expect(afterA.dispatches.map(\.params) == [["previous": 2]], "a whole-string template keeps the number")
        #expect(afterA.dispatches.first?.stepOutputs == ["a": ["n": 2]])
        #expect(machine.step("a")?.status == .completed)
        #expect(machine.step("a")?.endedAt == at(1))

        let done = machine.handle(.stepSucceeded(stepID: "b", attempt: 0, outputs: ["n": 5]), at: at(3))
        #expect(done.dispatches.isEmpty)
        #expect(machine.execution.status == .completed)
        #expect(machine.execution.outputs == ["total": 7, "label": "Ada!"])
        #expect(machine.execution.progress == 100)
        #expect(machine.execution.endedAt == at(3))
        #expect(
            done.events.last == .executionCompleted(outputs: ["total": 7, "label": "Ada!"], stepOutputs: ["a": ["n": 2], "b": ["n": 5]]))
    }

    @Test func builtInStepsCompleteWithoutARoundTrip() throws {
        var machine = try EngineFixtures.machine(
            #"{"name": "inline", "steps": [{"id": "a", "name": "A", "action": "set_output", "params": {"outputs": {"x": 1}}}, {"id": "b", "name": "B", "action": "transform", "depends_on": ["a"], "params": {"input": "{{ steps.a.outputs.x }}", "operation": "count"}}], "outputs": {"r": "{{ steps.b.outputs.result }}"}}"#
        )
        let actions = machine.handle(.start, at: t0)
        #expect(actions.dispatches.isEmpty)
        #expect(machine.execution.status == .completed)
        #expect(machine.execution.outputs == ["r": 0])
        let stepChanges = actions.compactMap { if case .stepChanged(let step) = $0 { step.stepID } else { nil } }
        #expect(stepChanges == ["a", "b"], "each changed step is reported once per batch")
    }

    @Test func stepsSettledInlineGetTheirOwnTimesInOrder() throws {
        var machine = try EngineFixtures.machine(
            #"{"name": "inline", "steps": [{"id": "a", "name": "A", "action": "set_output", "params": {"outputs": {"x": 1}}}, {"id": "skip", "name": "S", "action": "log", "condition": "{{ false }}", "depends_on": ["a"]}, {"id": "b", "name": "B", "action": "transform", "depends_on": ["a"], "params": {"input": "hi", "operation": "uppercase"}}, {"id": "c", "name": "C", "action": "log", "depends_on": ["b"]}]}"#
        )
        // Each reading of the clock finds a millisecond more gone.
        let readings = Mutex(0)
        let actions = machine.handle(.start, at: t0) {
            .milliseconds(
                readings.withLock { reading in
                    reading += 1
                    return reading
                })
        }
        #expect(machine.execution.status == .completed)
        #expect(machine.execution.startedAt == t0)
        var previousEnd = t0
        for id in ["a", "b", "c"] {
            let step = try #require(machine.step(id))
            let started = try #require(step.startedAt)
            let ended = try #require(step.endedAt)
            #expect(started >= previousEnd && ended > started, "\(id) runs after what it depends on and takes time")
            previousEnd = ended
        }
        #expect(try #require(machine.step("skip")?.endedAt) > t0)
        #expect(try #require(machine.execution.endedAt) >= previousEnd, "the execution ends after its last step")
        let durations = actions.events.compactMap { if case .stepCompleted(_, _, _, let seconds) = $0 { seconds } else { nil } }
        #expect(durations.count == 3 && durations.allSatisfy { ($0 ?? 0) > 0 })

        var untimed = try EngineFixtures.machine(#"{"name": "one", "steps": [{"id": "a", "name": "A", "action": "log"}]}"#)
        _ = untimed.handle(.start, at: t0)
        #expect(untimed.step("a")?.startedAt == t0 && untimed.step("a")?.endedAt == t0, "without a clock every instant is `now`")
    }

    @Test func withoutDeclaredOutputsTheFinalOutputsAreEachCompletedStepsOutputs() throws {
        var machine = try EngineFixtures.machine(
            #"{"name": "plain", "steps": [{"id": "a", "name": "A", "action": "set_output", "params": {"outputs": {"x": 1}}}, {"id": "skip", "name": "S", "action": "log", "condition": "{{ false }}"}, {"id": "b", "name": "B", "action": "transform", "depends_on": ["a"], "params": {"input": "hi", "operation": "uppercase"}}]}"#
        )
        let actions = machine.handle(.start, at: t0)
        #expect(machine.execution.status == .completed)
        let expected: JSONObject = [
            "a": ["x": 1], "b": ["result": "HI", "operation": "uppercase", "input_type": "str", "output_type": "str"],
        ]
        #expect(machine.execution.outputs == expected, "skipped steps are left out")
        #expect(actions.events.last == .executionCompleted(outputs: expected, stepOutputs: expected))
    }

    @Test func anAwaitingBranchNeverBlocksAnIndependentOne() throws {
        // a → (wait, work) → d: "wait" awaits an event while "work" completes; d waits for both.
        var machine = try EngineFixtures.machine(
            #"{"name": "diamond", "settings": {"max_parallel_steps": 1}, "steps": [{"id": "a", "name": "A", "action": "log"}, {"id": "wait", "name": "Wait", "action": "deploy", "depends_on": ["a"], "params": {"model": "m", "slo": "fast"}}, {"id": "work", "name": "Work", "action": "work", "depends_on": ["a"]}, {"id": "d", "name": "D", "action": "work", "depends_on": ["wait", "work"], "params": {"endpoint": "{{ steps.wait.outputs.endpoint }}"}}]}"#
        )
        #expect(machine.handle(.start, at: t0).dispatchedSteps == ["wait"], "one slot: the first ready step goes first")
        let awaiting = machine.handle(
            .stepAwaitingEvent(
                stepID: "wait", attempt: 0, externalWorkflowID: "wf-1", timeoutSeconds: 300, outputs: ["phase": "deploying"]),
            at: at(1)
        )
        #expect(awaiting.dispatchedSteps == ["work"], "an awaiting step frees its slot")
        #expect(awaiting.timersSet.map(\.0.key) == ["step_deadline:wait:0"])
        #expect(awaiting.timersSet.first?.1 == at(301))
        #expect(machine.step("wait")?.status == .awaitingEvent)
        #expect(machine.step("wait")?.externalWorkflowID == "wf-1")

        #expect(machine.handle(.stepSucceeded(stepID: "work", attempt: 0, outputs: [:]), at: at(2)).dispatches.isEmpty, "d still waits")
        let completed = machine.handle(
            .eventCompletedStep(stepID: "wait", status: .completed, outputs: ["endpoint": "e-1"], error: nil),
            at: at(50)
        )
        #expect(completed.timersCancelled.map(\.key) == ["step_deadline:wait:0"])
        #expect(completed.dispatches.map(\.params) == [["endpoint": "e-1"]])
        #expect(machine.step("wait")?.outputs == ["phase": "deploying", "endpoint": "e-1"], "event outputs merge over the stored ones")
        _ = machine.handle(.stepSucceeded(stepID: "d", attempt: 0, outputs: [:]), at: at(51))
        #expect(machine.execution.status == .completed)
    }

    @Test func maxParallelStepsLimitsExecutingSteps() throws {
        let steps = (1...5).map { #"{"id": "s\#($0)", "name": "S\#($0)", "action": "work"}"# }.joined(separator: ",")
        var machine = try EngineFixtures.machine(#"{"name": "fan", "settings": {"max_parallel_steps": 2}, "steps": [\#(steps)]}"#)
        #expect(machine.handle(.start, at: t0).dispatchedSteps == ["s1", "s2"])
        #expect(machine.handle(.stepSucceeded(stepID: "s2", attempt: 0, outputs: [:]), at: at(1)).dispatchedSteps == ["s3"])
        #expect(
            machine.handle(.stepFailed(stepID: "s1", attempt: 0, failure: .permanent("x"), outputs: [:]), at: at(2)).dispatchedSteps
                == [])
        #expect(machine.execution.status == .failed, "fail_fast is the default")
    }

    // MARK: Conditions and branches

    @Test func aFalseConditionSkipsTheStepButNotItsDependants() throws {
        var machine = try EngineFixtures.machine(
            #"{"name": "cond", "parameters": [{"name": "go", "type": "boolean", "default": false}], "steps": [{"id": "maybe", "name": "Maybe", "action": "work", "condition": "{{ params.go }}"}, {"id": "after", "name": "After", "action": "work", "depends_on": ["maybe"], "params": {"value": "{{ steps.maybe.outputs.v | default('fallback') }}", "status": "{{ steps.maybe.status }}"}}]}"#
        )
        let actions = machine.handle(.start, at: t0)
        #expect(machine.step("maybe")?.status == .skipped)
        #expect(machine.step("maybe")?.error == "Condition not met")
        #expect(actions.events.contains(.stepSkipped(stepID: "maybe", name: "Maybe", reason: "Condition not met")))
        #expect(actions.dispatches.map(\.params) == [["value": "fallback", "status": "SKIPPED"]])
    }

    @Test func aConditionThatCannotBeEvaluatedFailsTheStep() throws {
        var machine = try EngineFixtures.machine(
            #"{"name": "bad", "parameters": [{"name": "n", "default": "text"}], "steps": [{"id": "a", "name": "A", "action": "work", "condition": "{{ params.n > 3 }}", "on_failure": "continue"}]}"#
        )
        _ = machine.handle(.start, at: t0)
        #expect(machine.step("a")?.status == .failed)
        #expect(machine.step("a")?.error == "condition: '>' not supported between instances of 'str' and 'int' at position 3")
        #expect(machine.execution.status == .completed, "on_failure: continue tolerates it")
    }

    @Test func conditionalBranchesSkipTheTargetsNotChosen() throws {
        var machine = try EngineFixtures.machine(
            #"{"name": "branch", "parameters": [{"name": "size", "default": 7}], "steps": [{"id": "choose", "name": "Choose", "action": "conditional", "params": {"branches": [{"id": "small", "label": "Small", "condition": "{{ params.size < 5 }}", "target_step": "small_path"}, {"id": "big", "label": "Big", "condition": "{{ params.size >= 5 }}", "target_step": "big_path"}]}}, {"id": "small_path", "name": "Small", "action": "work", "depends_on": ["choose"]}, {"id": "big_path", "name": "Big", "action": "work", "depends_on": ["choose"]}, {"id": "join", "name": "Join", "action": "work", "depends_on": ["small_path", "big_path"]}]}"#
        )
        let actions = machine.handle(.start, at: t0)
        #expect(actions.dispatchedSteps == ["big_path"])
        #expect(machine.step("small_path")?.status == .skipped)
        #expect(machine.step("small_path")?.error == "Branch condition not matched (matched: Big)")
        #expect(machine.step("choose")?.outputs?["target_step"] == "big_path")
        #expect(machine.handle(.stepSucceeded(stepID: "big_path", attempt: 0, outputs: [:]), at: at(1)).dispatchedSteps == ["join"])
    }

    // MARK: Failures

    @Test func failFastEndsTheExecutionAtTheFirstFailure() throws {
        var machine = try EngineFixtures.machine(
            #"{"name": "ff", "steps": [{"id": "a", "name": "A", "action": "work"}, {"id": "b", "name": "B", "action": "deploy", "params": {"model": "m", "slo": "s"}}, {"id": "c", "name": "C", "action": "work", "depends_on": ["a"]}]}"#
        )
        _ = machine.handle(.start, at: t0)
        _ = machine.handle(
            .stepAwaitingEvent(stepID: "b", attempt: 0, externalWorkflowID: "wf", timeoutSeconds: nil, outputs: [:]), at: at(1))
        let actions = machine.handle(
            .stepFailed(stepID: "a", attempt: 0, failure: .permanent("disk full"), outputs: ["partial": 1]), at: at(2))
        #expect(machine.execution.status == .failed)
        #expect(machine.execution.errorInfo == ["error": "disk full", "message": "disk full", "step_id": "a"])
        #expect(machine.step("a")?.status == .failed)
        #expect(machine.step("a")?.outputs == ["partial": 1], "outputs of a failed step are kept")
        #expect(machine.step("b")?.status == .cancelled)
        #expect(machine.step("c")?.status == .skipped)
        #expect(machine.step("c")?.error == "Workflow aborted")
        #expect(
            actions.abandonments == [
                StepAbandonment(stepID: "b", action: "deploy", attempt: 0, externalWorkflowID: "wf", reason: .cancelled)
            ])
        #expect(actions.timersCancelled.map(\.key) == ["step_deadline:b:0"])
        #expect(actions.events.contains(.executionFailed(error: "disk full")))
        let late = machine.handle(.eventCompletedStep(stepID: "b", status: .completed, outputs: [:], error: nil), at: at(3))
        #expect(late.ignored == ["event completion for step 'b' after the execution ended"])
    }

    @Test func withoutFailFastIndependentBranchesFinishFirst() throws {
        var machine = try EngineFixtures.machine(
            #"{"name": "nff", "settings": {"fail_fast": false}, "steps": [{"id": "a", "name": "A", "action": "work"}, {"id": "b", "name": "B", "action": "work"}, {"id": "a2", "name": "A2", "action": "work", "depends_on": ["a"]}, {"id": "a3", "name": "A3", "action": "work", "depends_on": ["a2"]}]}"#
        )
        _ = machine.handle(.start, at: t0)
        let failed = machine.handle(.stepFailed(stepID: "a", attempt: 0, failure: .permanent("boom"), outputs: [:]), at: at(1))
        #expect(machine.execution.status == .running, "b is still running")
        #expect(machine.step("a2")?.status == .skipped)
        #expect(machine.step("a2")?.error == "Upstream step 'a' did not succeed")
        #expect(machine.step("a3")?.error == "Upstream step 'a2' did not succeed")
        #expect(failed.abandonments.isEmpty)
        _ = machine.handle(.stepSucceeded(stepID: "b", attempt: 0, outputs: [:]), at: at(2))
        #expect(machine.execution.status == .failed)
        #expect(machine.execution.errorInfo?["error"] == "boom")
    }

    @Test func continueToleratesAFailure() throws {
        var machine = try EngineFixtures.machine(
            #"{"name": "cont", "steps": [{"id": "a", "name": "A", "action": "work", "on_failure": "continue"}, {"id": "b", "name": "B", "action": "work", "depends_on": ["a"], "params": {"upstream": "{{ steps.a.status }}", "why": "{{ steps.a.outputs.reason }}"}}]}"#
        )
        _ = machine.handle(.start, at: t0)
        let actions = machine.handle(
            .stepFailed(stepID: "a", attempt: 0, failure: .permanent("meh"), outputs: ["reason": "meh"]), at: at(1))
        #expect(actions.dispatches.map(\.params) == [["upstream": "FAILED", "why": "meh"]])
        #expect(machine.step("a")?.failureTolerated == true)
        _ = machine.handle(.stepSucceeded(stepID: "b", attempt: 0, outputs: [:]), at: at(2))
        #expect(machine.execution.status == .completed)
    }

    @Test func unregisteredActionsAndTemplateErrorsFailTheStep() throws {
        let pipeline = try EngineFixtures.pipeline(
            #"{"name": "u", "parameters": [{"name": "s", "default": "x"}], "steps": [{"id": "a", "name": "A", "action": "work", "params": {"n": "{{ params.s * [] }}"}, "on_failure": "continue"}]}"#
        )
        var machine = ExecutionStateMachine(pipeline: pipeline, executionID: "e", params: ["s": "x"])
        _ = machine.handle(.start, at: t0)
        #expect(machine.step("a")?.error == "params.n: unsupported operand type(s) for *: 'str' and 'list' at position 12")
        #expect(machine.step("a")?.status == .failed)

        let unknown = PipelineCompiler.compile(
            try JSONValue(parsing: #"{"name": "x", "steps": [{"id": "a", "name": "A", "action": "ghost"}]}"#),
            catalog: TestCatalog.catalog
        )
        #expect(unknown.report.warnings == ["Action 'ghost' is not registered"])
        var ghost = ExecutionStateMachine(pipeline: try #require(unknown.pipeline), executionID: "e", params: [:])
        _ = ghost.handle(.start, at: t0)
        #expect(ghost.step("a")?.error == "Action 'ghost' is not registered")
        #expect(ghost.execution.status == .failed)
    }

    // MARK: Retries

    @Test func retriesBackOffExponentiallyUpToACap() throws {
        var machine = try EngineFixtures.machine(
            #"{"name": "retry", "steps": [{"id": "a", "name": "A", "action": "work", "on_failure": "retry", "retry": {"max_attempts": 4, "backoff_seconds": 10, "backoff_multiplier": 2, "max_backoff_seconds": 25}}]}"#
        )
        _ = machine.handle(.start, at: t0)
        var now = 0.0
        var delays: [Double] = []
        for attempt in 0..<3 {
            let failed = machine.handle(
                .stepFailed(stepID: "a", attempt: attempt, failure: .retryable("flaky \(attempt)"), outputs: [:]), at: at(now))
            let (timer, due) = try #require(failed.timersSet.first)
            #expect(timer == EngineTimer(kind: .retry, stepID: "a", attempt: attempt + 1))
            #expect(machine.step("a")?.status == .retrying)
            delays.append(due.timeIntervalSince(at(now)))
            now = due.timeIntervalSince(t0)
            let retried = machine.handle(.timerFired(timer), at: at(now))
            #expect(retried.dispatches.first?.attempt == attempt + 1)
            #expect(retried.dispatches.first?.idempotencyKey == "exec-1/a/\(attempt + 1)")
        }
        #expect(delays == [10, 20, 25])
        _ = machine.handle(.stepFailed(stepID: "a", attempt: 3, failure: .retryable("flaky 3"), outputs: [:]), at: at(now))
        #expect(machine.step("a")?.status == .failed)
        #expect(machine.execution.status == .failed)
        #expect(machine.execution.errorInfo?["error"] == "flaky 3")
    }

    @Test func permanentFailuresAreNotRetried() throws {
        var machine = try EngineFixtures.machine(
            #"{"name": "np", "steps": [{"id": "a", "name": "A", "action": "work", "on_failure": "retry"}]}"#
        )
        _ = machine.handle(.start, at: t0)
        let actions = machine.handle(
            .stepFailed(stepID: "a", attempt: 0, failure: .permanent("invalid input"), outputs: [:]), at: at(1))
        #expect(actions.timersSet.isEmpty)
        #expect(machine.execution.status == .failed)
    }

    @Test func retrySettingsComeFromStepPipelineActionOrEngine() throws {
        func firstDelay(_ json: String, options: EngineOptions = EngineOptions()) throws -> Double? {
            var machine = try EngineFixtures.machine(json, params: ["tries": 5], options: options)
            _ = machine.handle(.start, at: t0)
            let actions = machine.handle(.stepFailed(stepID: "a", attempt: 0, failure: .retryable("x"), outputs: [:]), at: t0)
            return actions.timersSet.first.map { $0.1.timeIntervalSince(t0) }
        }
        #expect(
            try firstDelay(
                #"{"name": "p", "settings": {"retry_policy": {"backoff_seconds": 7}}, "steps": [{"id": "a", "name": "A", "action": "work", "on_failure": "retry"}]}"#
            ) == 7)
        #expect(try firstDelay(#"{"name": "p", "steps": [{"id": "a", "name": "A", "action": "flaky", "on_failure": "retry"}]}"#) == 5)
        #expect(try firstDelay(#"{"name": "p", "steps": [{"id": "a", "name": "A", "action": "work", "on_failure": "retry"}]}"#) == 60)
        #expect(
            try firstDelay(
                #"{"name": "p", "parameters": [{"name": "tries", "type": "integer"}], "steps": [{"id": "a", "name": "A", "action": "work", "on_failure": "retry", "retry": {"max_attempts": "{{ params.tries }}", "backoff_seconds": "{{ params.tries * 2 }}"}}]}"#
            ) == 10
        )
    }

    @Test func anEventReportingFailureRetriesTheStep() throws {
        var machine = try EngineFixtures.machine(
            #"{"name": "er", "steps": [{"id": "d", "name": "D", "action": "deploy", "params": {"model": "m", "slo": "s"}, "on_failure": "retry", "retry": {"backoff_seconds": 1}}]}"#
        )
        _ = machine.handle(.start, at: t0)
        _ = machine.handle(
            .stepAwaitingEvent(stepID: "d", attempt: 0, externalWorkflowID: "wf", timeoutSeconds: nil, outputs: [:]), at: at(1))
        let failed = machine.handle(.eventCompletedStep(stepID: "d", status: .failed, outputs: [:], error: "quota"), at: at(2))
        #expect(failed.timersSet.map(\.0.key) == ["retry:d:1"])
        let retried = machine.handle(.timerFired(EngineTimer(kind: .retry, stepID: "d", attempt: 1)), at: at(3))
        #expect(retried.dispatches.first?.idempotencyKey == "exec-1/d/1")
        let stale = machine.handle(.stepSucceeded(stepID: "d", attempt: 0, outputs: [:]), at: at(4))
        #expect(stale.ignored == ["result for step 'd' attempt 0 ignored: it is RUNNING at attempt 1"])
    }

    // MARK: Timeouts

    @Test func aStepRunningPastItsTimeoutTimesOut() throws {
        var machine = try EngineFixtures.machine(
            #"{"name": "to", "steps": [{"id": "a", "name": "A", "action": "work", "timeout_seconds": 30, "on_failure": "continue"}]}"#
        )
        let started = machine.handle(.start, at: t0)
        #expect(started.dispatches.first?.timeoutSeconds == 30)
        let deadline = try #require(started.timersSet.first)
        #expect(deadline.0.key == "step_deadline:a:0")
        #expect(deadline.1 == at(30))
        let fired = machine.handle(.timerFired(deadline.0), at: at(30.2))
        #expect(machine.step("a")?.status == .timedOut)
        #expect(machine.step("a")?.error == "Step timed out after 30 seconds")
        #expect(fired.abandonments.map(\.reason) == [.timedOut])
        #expect(machine.execution.status == .completed)
        #expect(machine.handle(.stepSucceeded(stepID: "a", attempt: 0, outputs: [:]), at: at(31)).ignored.count == 1)
    }

    @Test func anAwaitedEventThatNeverComesTimesOut() throws {
        var machine = try EngineFixtures.machine(
            #"{"name": "await", "steps": [{"id": "d", "name": "D", "action": "deploy", "params": {"model": "m", "slo": "s"}}]}"#,
            options: EngineOptions(defaultAwaitTimeoutSeconds: 120)
        )
        let started = machine.handle(.start, at: t0)
        #expect(started.timersSet.first?.1 == at(600), "the action's timeout bounds the call")
        let awaiting = machine.handle(
            .stepAwaitingEvent(stepID: "d", attempt: 0, externalWorkflowID: "wf-9", timeoutSeconds: nil, outputs: [:]), at: at(5))
        #expect(awaiting.timersSet.first?.1 == at(125), "the engine's default bounds the wait")
        _ = machine.handle(.timerFired(EngineTimer(kind: .stepDeadline, stepID: "d", attempt: 0)), at: at(125))
        #expect(machine.step("d")?.status == .timedOut)
        #expect(machine.step("d")?.error == "Step timed out waiting for event from workflow wf-9")
        #expect(machine.execution.status == .failed)
    }

    @Test func aStepsOwnTimeoutCapsTheWaitTheActionAsks() throws {
        let dag =
            #"{"name": "cap", "steps": [{"id": "d", "name": "D", "action": "deploy", "timeout_seconds": 40, "params": {"model": "m", "slo": "s"}}]}"#
        var capped = try EngineFixtures.machine(dag)
        _ = capped.handle(.start, at: t0)
        let asksLonger = capped.handle(
            .stepAwaitingEvent(stepID: "d", attempt: 0, externalWorkflowID: "wf-1", timeoutSeconds: 1200, outputs: [:]), at: at(5))
        #expect(asksLonger.timersSet.first?.1 == at(45), "the step's 40 s win over the action's 1,200 s")
        var shorter = try EngineFixtures.machine(dag)
        _ = shorter.handle(.start, at: t0)
        let asksShorter = shorter.handle(
            .stepAwaitingEvent(stepID: "d", attempt: 0, externalWorkflowID: "wf-1", timeoutSeconds: 10, outputs: [:]), at: at(5))
        #expect(asksShorter.timersSet.first?.1 == at(15), "the action's shorter wait stands")
    }

    @Test func theExecutionTimesOut() throws {
        var machine = try EngineFixtures.machine(
            #"{"name": "et", "settings": {"timeout_seconds": 100}, "steps": [{"id": "a", "name": "A", "action": "work"}, {"id": "b", "name": "B", "action": "work", "depends_on": ["a"]}]}"#
        )
        let started = machine.handle(.start, at: t0)
        #expect(started.timersSet.map(\.0.key) == ["execution_deadline"])
        let fired = machine.handle(.timerFired(EngineTimer(kind: .executionDeadline)), at: at(100))
        #expect(machine.execution.status == .failed)
        #expect(machine.execution.errorInfo?["error"] == "Execution timed out after 100 seconds")
        #expect(machine.step("a")?.status == .cancelled)
        #expect(machine.step("b")?.status == .skipped)
        #expect(fired.abandonments.map(\.reason) == [.timedOut])
    }

    // MARK: Cancellation

    @Test func cancellationStopsEverythingMidRun() throws {
        var machine = try EngineFixtures.machine(
            #"{"name": "c", "steps": [{"id": "run", "name": "Run", "action": "work"}, {"id": "wait", "name": "Wait", "action": "wait_until", "params": {"duration_hours": 1}}, {"id": "retry", "name": "Retry", "action": "work", "on_failure": "retry"}, {"id": "later", "name": "Later", "action": "work", "depends_on": ["run"]}]}"#
        )
        _ = machine.handle(.start, at: t0)
        _ = machine.handle(.stepFailed(stepID: "retry", attempt: 0, failure: .retryable("x"), outputs: [:]), at: at(1))
        let cancelled = machine.handle(.cancel(reason: "Cancelled by user"), at: at(2))
        #expect(machine.execution.status == .cancelled)
        #expect(machine.execution.errorInfo == ["error": "Cancelled by user", "message": "Cancelled by user"])
        #expect(machine.step("run")?.status == .cancelled)
        #expect(machine.step("wait")?.status == .cancelled)
        #expect(machine.step("retry")?.status == .cancelled)
        #expect(machine.step("later")?.status == .skipped)
        #expect(machine.step("later")?.error == "Execution cancelled")
        #expect(cancelled.abandonments.map(\.stepID) == ["run", "wait"])
        #expect(Set(cancelled.timersCancelled.map(\.key)) == ["wake_up:wait:0", "retry:retry:1"])
        #expect(cancelled.events.last == .executionCancelled(reason: "Cancelled by user"))
        #expect(machine.handle(.stepSucceeded(stepID: "run", attempt: 0, outputs: [:]), at: at(3)).ignored.count == 1)
        #expect(machine.handle(.cancel(reason: "again"), at: at(4)).ignored == ["cancel of a finished execution"])
    }

    // MARK: wait_until, progress, timers

    @Test func waitUntilIsATimer() throws {
        var machine = try EngineFixtures.machine(
            #"{"name": "w", "steps": [{"id": "nap", "name": "Nap", "action": "wait_until", "params": {"duration_hours": 0.5}}, {"id": "after", "name": "After", "action": "work", "depends_on": ["nap"], "params": {"slept": "{{ steps.nap.outputs.waited }}"}}]}"#
        )
        let started = machine.handle(.start, at: t0)
        #expect(started.dispatches.isEmpty)
        #expect(started.timersSet.map(\.0.key) == ["wake_up:nap:0"])
        #expect(started.timersSet.first?.1 == at(1800))
        #expect(machine.step("nap")?.status == .awaitingEvent)
        #expect(machine.step("nap")?.externalWorkflowID == "wait_until:exec-1/nap/0")
        #expect(machine.step("nap")?.outputs?["wait_duration_seconds"] == 1800)
        let woke = machine.handle(.timerFired(EngineTimer(kind: .wakeUp, stepID: "nap", attempt: 0)), at: at(1800.4))
        #expect(woke.dispatches.map(\.params) == [["slept": true]])
        #expect(machine.step("nap")?.outputs?["actual_wake_time"] != .null)
    }

    @Test func stepsWeighTheirEstimatedDurations() throws {
        var weighted = try EngineFixtures.machine(
            #"{"name": "w", "steps": [{"id": "long", "name": "L", "action": "work", "estimated_duration_seconds": 30}, {"id": "short", "name": "S", "action": "work", "estimated_duration_seconds": 10}, {"id": "plain", "name": "P", "action": "work"}]}"#
        )
        _ = weighted.handle(.start, at: t0)
        _ = weighted.handle(.stepSucceeded(stepID: "short", attempt: 0, outputs: [:]), at: at(1))
        // Weights 30, 10 and (no estimate: the mean of the given ones) 20.
        #expect(weighted.execution.progress == 16.67)
        _ = weighted.handle(.stepProgress(stepID: "long", percent: 50, etaSeconds: nil, message: nil), at: at(2))
        #expect(weighted.execution.progress == 41.67)

        var equal = try EngineFixtures.machine(
            #"{"name": "e", "steps": [{"id": "a", "name": "A", "action": "work"}, {"id": "b", "name": "B", "action": "work"}]}"#
        )
        _ = equal.handle(.start, at: t0)
        _ = equal.handle(.stepSucceeded(stepID: "b", attempt: 0, outputs: [:]), at: at(1))
        #expect(equal.execution.progress == 50)
    }

    @Test func theTimeLeftFollowsTheLongestRemainingChain() throws {
        // a (60 s) → b (30 s), and c (20 s) beside them.
        var machine = try EngineFixtures.machine(
            #"{"name": "eta", "steps": [{"id": "a", "name": "A", "action": "work", "estimated_duration_seconds": 60}, {"id": "b", "name": "B", "action": "work", "depends_on": ["a"], "estimated_duration_seconds": 30}, {"id": "c", "name": "C", "action": "work", "estimated_duration_seconds": 20}]}"#
        )
        #expect(machine.estimatedSecondsLeft(at: t0) == 90)
        _ = machine.handle(.start, at: t0)
        #expect(machine.estimatedSecondsLeft(at: at(10)) == 80, "a has 50 s left, then b; c's 10 s overlap")
        let reported = machine.handle(.stepProgress(stepID: "a", percent: nil, etaSeconds: 5, message: nil), at: at(10))
        #expect(machine.estimatedSecondsLeft(at: at(10)) == 35)
        #expect(
            reported.events.contains(.progress(percent: 0, etaSeconds: 35, stepID: "a")), "a step's ETA is published as the execution's")
        _ = machine.handle(.stepSucceeded(stepID: "a", attempt: 0, outputs: [:]), at: at(15))
        _ = machine.handle(.stepSucceeded(stepID: "c", attempt: 0, outputs: [:]), at: at(16))
        #expect(machine.estimatedSecondsLeft(at: at(20)) == 25)
        _ = machine.handle(.stepSucceeded(stepID: "b", attempt: 0, outputs: [:]), at: at(21))
        #expect(machine.estimatedSecondsLeft(at: at(21)) == 0)
    }

    @Test func withoutEstimatesTheTimeLeftComesFromCompletedSteps() throws {
        var machine = try EngineFixtures.machine(
            #"{"name": "eta", "steps": [{"id": "a", "name": "A", "action": "work"}, {"id": "b", "name": "B", "action": "work", "depends_on": ["a"]}, {"id": "c", "name": "C", "action": "work", "depends_on": ["b"]}]}"#
        )
        _ = machine.handle(.start, at: t0)
        #expect(machine.estimatedSecondsLeft(at: at(5)) == nil, "nothing to go by yet")
        _ = machine.handle(.stepProgress(stepID: "a", percent: 25, etaSeconds: nil, message: nil), at: at(10))
        #expect(machine.estimatedSecondsLeft(at: at(10)) == nil, "later steps have no expectation yet")
        _ = machine.handle(.stepSucceeded(stepID: "a", attempt: 0, outputs: [:]), at: at(40))
        // b started at 40 and c waits: each expected to take a's 40 s.
        #expect(machine.estimatedSecondsLeft(at: at(50)) == 70)
    }

    @Test func progressGrowsAndNeverShrinks() throws {
        var machine = try EngineFixtures.machine(
            #"{"name": "p", "steps": [{"id": "a", "name": "A", "action": "work"}, {"id": "b", "name": "B", "action": "work"}]}"#
        )
        _ = machine.handle(.start, at: t0)
        let reported = machine.handle(.stepProgress(stepID: "a", percent: 50, etaSeconds: 30, message: "half"), at: at(1))
        #expect(machine.execution.progress == 25)
        #expect(reported.events == [.progress(percent: 25, etaSeconds: 30, stepID: "a")])
        _ = machine.handle(.stepProgress(stepID: "a", percent: 20, etaSeconds: nil, message: nil), at: at(2))
        #expect(machine.execution.progress == 25, "a lower report does not lower progress")
        _ = machine.handle(.stepSucceeded(stepID: "a", attempt: 0, outputs: [:]), at: at(3))
        #expect(machine.execution.progress == 50)
        #expect(machine.handle(.stepProgress(stepID: "a", percent: 90, etaSeconds: nil, message: nil), at: at(4)).ignored.count == 1)
    }

    @Test func staleTimersAreIgnored() throws {
        var machine = try EngineFixtures.machine(
            #"{"name": "s", "steps": [{"id": "a", "name": "A", "action": "work", "timeout_seconds": 5}]}"#)
        _ = machine.handle(.start, at: t0)
        _ = machine.handle(.stepSucceeded(stepID: "a", attempt: 0, outputs: [:]), at: at(1))
        let late = machine.handle(.timerFired(EngineTimer(kind: .stepDeadline, stepID: "a", attempt: 0)), at: at(5))
        #expect(late.ignored == ["timer step_deadline:a:0 fired after the execution ended"])
    }

    @Test func outputsThatFailToResolveFailTheExecution() throws {
        var machine = try EngineFixtures.machine(
            #"{"name": "o", "steps": [{"id": "a", "name": "A", "action": "set_output", "params": {"outputs": {"t": "x"}}}], "outputs": {"bad": "{{ steps.a.outputs.t - 1 }}"}}"#
        )
        _ = machine.handle(.start, at: t0)
        #expect(machine.execution.status == .failed)
        #expect(machine.execution.errorInfo?["error"] == "outputs.bad: unsupported operand type(s) for -: 'str' and 'int' at position 21")
    }

    @Test func timerKeysRoundTrip() {
        for timer in [
            EngineTimer(kind: .retry, stepID: "deploy:v2", attempt: 3), EngineTimer(kind: .executionDeadline),
            EngineTimer(kind: .wakeUp, stepID: "nap", attempt: 0),
        ] {
            #expect(EngineTimer(key: timer.key) == timer)
        }
        #expect(EngineTimer(key: "nonsense") == nil)
    }
}

@Suite struct ParameterBindingTests {
    let declared = [
        PipelineParameter(name: "model", type: "model_ref"),
        PipelineParameter(name: "replicas", type: "integer", defaultValue: 1),
        PipelineParameter(name: "ratio", type: "float", required: false),
        PipelineParameter(name: "tags", type: "array", required: false, defaultValue: []),
        PipelineParameter(name: "free", type: "custom_thing", required: false),
    ]

    @Test func mergesDefaultsAndKeepsExtraKeys() throws {
        let bound = try ParameterBinding.bind(declared, provided: ["model": "m-1", "ratio": 1, "user_id": "u", "free": [1]])
        #expect(bound == ["model": "m-1", "replicas": 1, "ratio": 1, "tags": [], "free": [1], "user_id": "u"])
    }

    @Test func reportsMissingAndMistypedParameters() {
        #expect(
            throws: ParameterBindingError(problems: [
                "Missing required parameter: model", "Parameter 'replicas' must be an integer, got string",
                "Parameter 'tags' must be an array, got object",
            ])
        ) {
            try ParameterBinding.bind(declared, provided: ["replicas": "two", "tags": [:]])
        }
        #expect(throws: ParameterBindingError(problems: ["Parameter 'ratio' must be a number, got boolean"])) {
            try ParameterBinding.bind(declared, provided: ["model": "m", "ratio": true])
        }
    }
}
