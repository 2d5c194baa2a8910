import BudJSON
import Foundation
import PipelineEngine
import PluginSchema
import Testing

/// Hostile values reaching the engine from DAGs, templates, plugins and stored rows: each one is
/// refused at validation, fails its step with a reason, or is bounded — never a trap.
@Suite struct EngineLimitTests {
    let t0 = EngineFixtures.start

    private func validationErrors(_ json: String) throws -> [String] {
        PipelineCompiler.compile(try JSONValue(parsing: json), catalog: TestCatalog.catalog).report.errors
    }

    @Test(arguments: [
        (#"{"timeout_seconds": 9223372036854775807}"#, "settings.timeout_seconds: Input should be less than or equal to 31536000"),
        (#"{"retry_policy": {"backoff_multiplier": "nan"}}"#, "settings.retry_policy.backoff_multiplier: Input should be a finite number"),
        (
            #"{"retry_policy": {"backoff_seconds": 1e300}}"#,
            "settings.retry_policy.backoff_seconds: Input should be less than or equal to 31536000"
        ),
        (
            #"{"retry_policy": {"backoff_multiplier": 1000}}"#,
            "settings.retry_policy.backoff_multiplier: Input should be less than or equal to 100"
        ),
    ])
    func unboundedSettingsAreRefusedAtValidation(settings: String, error: String) throws {
        let errors = try validationErrors(#"{"name": "p", "settings": \#(settings), "steps": [{"id": "a", "name": "A", "action": "log"}]}"#)
        #expect(errors.contains(error), "\(errors)")
    }

    @Test func aStepTimeoutOfMoreThanAYearIsRefused() throws {
        let errors = try validationErrors(
            #"{"name": "p", "steps": [{"id": "a", "name": "A", "action": "work", "timeout_seconds": 10000000000000}]}"#)
        #expect(errors.contains("steps.0.timeout_seconds: Input should be less than or equal to 31536000"), "\(errors)")
    }

    @Test func textLimitsCountCodePoints() throws {
        // 200 characters, each a letter and a combining mark: 400 code points.
        let name = String(repeating: "e\u{301}", count: 200)
        #expect(name.count == 200)
        let errors = try validationErrors(#"{"name": "\#(name)", "steps": [{"id": "a", "name": "A", "action": "log"}]}"#)
        #expect(errors.contains("name: String should have at most 255 characters"), "\(errors)")
    }

    @Test func templatedRetrySettingsOutOfRangeMeanNoRetry() throws {
        var machine = try EngineFixtures.machine(
            #"{"name": "p", "parameters": [{"name": "n"}], "steps": [{"id": "a", "name": "A", "action": "work", "on_failure": "retry", "retry": {"max_attempts": "{{ params.n }}"}}]}"#,
            params: ["n": 1e300])
        _ = machine.handle(.start, at: t0)
        _ = machine.handle(.stepFailed(stepID: "a", attempt: 0, failure: .retryable("boom"), outputs: [:]), at: t0)
        #expect(machine.step("a")?.status == .failed)
        #expect(machine.execution.status == .failed)
    }

    @Test func retryDelaysStayFiniteAndBounded() {
        let zero = RetrySettings(maxAttempts: 1000, backoffSeconds: 0, backoffMultiplier: 100, maxBackoffSeconds: 60)
        #expect(zero.delay(beforeAttempt: 999) == 0)
        let huge = RetrySettings(maxAttempts: 1000, backoffSeconds: 1e300, backoffMultiplier: 100, maxBackoffSeconds: 1e300)
        #expect(huge.delay(beforeAttempt: 999) == Double(DurationLimits.maximumSeconds))
        let nan = RetrySettings(maxAttempts: 3, backoffSeconds: .nan, backoffMultiplier: .nan, maxBackoffSeconds: .nan)
        #expect(nan.delay(beforeAttempt: 2).isFinite)
        #expect(RetrySettings(checking: 1e300, backoffSeconds: 1, backoffMultiplier: 2, maxBackoffSeconds: 10) == nil)
        #expect(RetrySettings(checking: 3, backoffSeconds: .infinity, backoffMultiplier: 2, maxBackoffSeconds: 10) == nil)
        #expect(RetrySettings(checking: 3, backoffSeconds: 1, backoffMultiplier: 2, maxBackoffSeconds: 10)?.maxAttempts == 3)
    }

    @Test func waitUntilRefusesNonNumbersAndForeignDigits() {
        #expect(throws: Never.self) {
            if case .success = WaitUntil.wakeTime(["duration_hours": "nan"], now: t0) { Issue.record("NaN hours accepted") }
            if case .success = WaitUntil.wakeTime(["until_time": "12:\u{0660}\u{0660}"], now: t0) {
                Issue.record("Arabic-Indic digits accepted")
            }
            if case .success = WaitUntil.wakeTime(["until_time": "\u{0662}\u{0660}\u{0662}\u{0666}-01-01"], now: t0) {
                Issue.record("Arabic-Indic date accepted")
            }
        }
    }

    @Test func etasFromPluginsAreBounded() throws {
        var machine = try EngineFixtures.machine(#"{"name": "p", "steps": [{"id": "a", "name": "A", "action": "work"}]}"#)
        _ = machine.handle(.start, at: t0)
        _ = machine.handle(.stepProgress(stepID: "a", percent: 1e-300, etaSeconds: nil, message: nil), at: t0.addingTimeInterval(5))
        #expect(machine.estimatedSecondsLeft(at: t0.addingTimeInterval(10)) == DurationLimits.maximumSeconds)
        _ = machine.handle(.stepProgress(stepID: "a", percent: nil, etaSeconds: .max, message: nil), at: t0.addingTimeInterval(20))
        #expect(machine.step("a")?.etaSeconds == DurationLimits.maximumSeconds)
        #expect(machine.estimatedSecondsLeft(at: t0.addingTimeInterval(30)) == DurationLimits.maximumSeconds)
    }

    @Test func awaitTimeoutsAreBounded() throws {
        var machine = try EngineFixtures.machine(
            #"{"name": "p", "steps": [{"id": "a", "name": "A", "action": "deploy", "params": {"model": "m", "slo": "x"}}]}"#)
        _ = machine.handle(.start, at: t0)
        let actions = machine.handle(
            .stepAwaitingEvent(stepID: "a", attempt: 0, externalWorkflowID: "w", timeoutSeconds: .max, outputs: [:]), at: t0)
        let deadline = actions.timersSet.first?.1
        #expect(deadline != nil && deadline! <= t0.addingTimeInterval(Double(DurationLimits.maximumSeconds)))
    }

    // MARK: Stored sizes

    private func sizes(params: Int = 1 << 20, outputs: Int = 1 << 20, execution: Int = 16 << 20, log: Int = 8 << 10) -> EngineOptions {
        EngineOptions(
            storedSizes: StoredSizeLimits(
                maximumStepParamsBytes: params, maximumStepOutputsBytes: outputs, maximumExecutionBytes: execution, maximumLogLineBytes: log
            ))
    }

    @Test func outputsOverTheLimitFailTheStepAndAreNotKept() throws {
        var machine = try EngineFixtures.machine(
            #"{"name": "p", "steps": [{"id": "a", "name": "A", "action": "work"}]}"#, options: sizes(outputs: 100))
        _ = machine.handle(.start, at: t0)
        _ = machine.handle(.stepSucceeded(stepID: "a", attempt: 0, outputs: ["blob": .string(String(repeating: "x", count: 200))]), at: t0)
        #expect(machine.step("a")?.status == .failed)
        #expect(machine.step("a")?.outputs == [:])
        #expect(machine.step("a")?.error?.contains("larger than the limit of 100 bytes (BUDPIPELINE_MAX_STEP_OUTPUT_BYTES)") == true)
    }

    @Test func theExecutionTotalIsEnforcedAcrossSteps() throws {
        var machine = try EngineFixtures.machine(
            #"{"name": "p", "steps": [{"id": "a", "name": "A", "action": "work"}, {"id": "b", "name": "B", "action": "work"}], "settings": {"fail_fast": false}}"#,
            options: sizes(outputs: 1000, execution: 1500))
        _ = machine.handle(.start, at: t0)
        let blob: JSONObject = ["blob": .string(String(repeating: "x", count: 900))]
        _ = machine.handle(.stepSucceeded(stepID: "a", attempt: 0, outputs: blob), at: t0)
        #expect(machine.step("a")?.status == .completed)
        _ = machine.handle(.stepFailed(stepID: "b", attempt: 0, failure: .permanent("boom"), outputs: blob), at: t0)
        #expect(machine.step("b")?.status == .failed)
        #expect(machine.step("b")?.error?.hasPrefix("boom (its outputs were not kept: the execution's parameters and outputs") == true)
        #expect(machine.step("b")?.outputs == [:])
    }

    @Test func parametersOverTheLimitFailTheStepBeforeDispatch() throws {
        var machine = try EngineFixtures.machine(
            #"{"name": "p", "steps": [{"id": "a", "name": "A", "action": "work", "params": {"p": "{{ 'x' * 5000 }}"}}]}"#,
            options: sizes(params: 1024))
        let actions = machine.handle(.start, at: t0)
        #expect(actions.dispatches.isEmpty)
        #expect(
            machine.step("a")?.error == "the step's parameters are larger than the limit of 1024 bytes (BUDPIPELINE_MAX_STEP_PARAMS_BYTES)")
    }

    @Test func setOutputCannotNestDeeperThanStoredJSON() throws {
        var deep = JSONValue.int(1)
        for _ in 0..<(JSONValue.maximumNestingDepth - 1) { deep = .array([deep]) }
        var machine = try EngineFixtures.machine(
            #"{"name": "p", "parameters": [{"name": "deep"}], "steps": [{"id": "a", "name": "A", "action": "set_output", "params": {"outputs": {"x": "{{ params.deep }}"}}}]}"#,
            params: ["deep": deep])
        _ = machine.handle(.start, at: t0)
        #expect(machine.step("a")?.status == .failed)
        #expect(machine.step("a")?.error?.contains("nest deeper than 512 levels") == true, "\(machine.step("a")?.error ?? "")")
    }

    @Test func longLogLinesAreCutWithAMarker() throws {
        var machine = try EngineFixtures.machine(
            #"{"name": "p", "steps": [{"id": "a", "name": "A", "action": "log", "params": {"message": "{{ 'é' * 100000 }}"}}]}"#,
            options: sizes(log: 1000))
        let line = machine.handle(.start, at: t0).logLines.first?.message ?? ""
        #expect(line.utf8.count <= 1000)
        #expect(line.hasSuffix(" … [truncated: 200000 bytes in all]"))
        #expect(line.hasPrefix("éé"))
    }

    // MARK: Stored rows

    @Test func implausibleStoredCountersAreRefusedOnRestore() throws {
        let pipeline = try EngineFixtures.pipeline(#"{"name": "p", "steps": [{"id": "a", "name": "A", "action": "work"}]}"#)
        var step = StepState(stepID: "a", name: "A", action: "work", sequence: 1)
        step.attempt = .max
        #expect(throws: ExecutionRestoreError.self) {
            try ExecutionStateMachine(
                restoring: pipeline, executionID: "e", params: [:], steps: [step],
                execution: ExecutionSnapshot(status: .running, progress: 0))
        }
        #expect(EngineTimer(key: "") == nil)
        #expect(EngineTimer(key: ":") == nil)
    }
}
