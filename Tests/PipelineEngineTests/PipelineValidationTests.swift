import BudJSON
import Glibc
import PipelineEngine
import Testing

@Suite struct PipelineValidationTests {
    private func validate(_ json: String) throws -> ValidationReport {
        PipelineCompiler.compile(try JSONValue(parsing: json), catalog: TestCatalog.catalog).report
    }

    @Test func aValidDAGReportsItsSteps() throws {
        let report = try validate(
            #"{"name": "ok", "parameters": [{"name": "msg", "default": "hi"}], "steps": [{"id": "a", "name": "A", "action": "log", "params": {"message": "{{ params.msg }}"}}, {"id": "b", "name": "B", "action": "work", "depends_on": ["a"], "params": {"text": "{{ steps.a.outputs.message }}"}}], "outputs": {"r": "{{ steps.b.outputs.x }}"}}"#
        )
        #expect(report == ValidationReport(errors: [], warnings: [], stepCount: 2))
        #expect(report.json == ["valid": true, "errors": [], "warnings": [], "step_count": 2, "has_cycles": false])
    }

    @Test func cyclesAreNamed() throws {
        let report = try validate(
            #"{"name": "c", "steps": [{"id": "a", "name": "A", "action": "log", "depends_on": ["b"]}, {"id": "b", "name": "B", "action": "log", "depends_on": ["a"]}]}"#
        )
        #expect(report.errors == ["Cyclic dependency detected: a -> b -> a"])
        #expect(report.hasCycles)
        #expect(report.stepCount == 0)
        #expect(report.json["has_cycles"] == true)
    }

    @Test func unknownReferencesAndUnregisteredActions() throws {
        let report = try validate(
            #"{"name": "r", "parameters": [{"name": "known"}], "steps": [{"id": "a", "name": "A", "action": "mystery", "params": {"x": "{{ params.unknown }}", "y": "{{ steps.nowhere.outputs.z }}", "u": "{{ params.user_id }}", "k": "{{ params.known }}"}, "condition": "{{ item.enabled }}"}]}"#
        )
        #expect(report.errors == ["Unknown parameter: unknown", "Unknown step: nowhere"])
        #expect(
            report.warnings == [
                "Step 'a' condition: 'item' is not defined (templates can read 'params' and 'steps'); it renders as empty",
                "Action 'mystery' is not registered",
            ]
        )
    }

    @Test func templateSyntaxErrorsNameStepFieldAndPosition() throws {
        let report = try validate(
            #"{"name": "t", "steps": [{"id": "a", "name": "A", "action": "log", "params": {"message": "Hi {{ params.x"}, "condition": "{{ 1 + }}", "retry": {"max_attempts": "{{ )"}}], "outputs": {"o": "{% for %}"}}"#
        )
        #expect(
            report.errors == [
                "Step 'a' params.message: template syntax error: Unbalanced template braces: '{{' is never closed at position 3",
                "Step 'a' condition: template syntax error: unexpected '}}', expected an expression at position 7",
                "Step 'a' retry.max_attempts: template syntax error: unexpected ')', expected an expression at position 3",
                "outputs.o: template syntax error: '{% for %}' is not supported: templates are expressions in {{ … }}; the only statement is {% raw %} at position 3",
            ]
        )
    }

    @Test func stepsReadOnlyWhatTheyDependOn() throws {
        let report = try validate(
            #"{"name": "w", "steps": [{"id": "a", "name": "A", "action": "log"}, {"id": "b", "name": "B", "action": "log", "params": {"m": "{{ steps.a.outputs.message }}"}}]}"#
        )
        #expect(report.valid)
        #expect(report.warnings == ["Step 'b' params.m reads step 'a', which it does not depend on; its outputs may not exist yet"])
    }

    @Test func actionParametersAreChecked() throws {
        let report = try validate(
            #"{"name": "p", "steps": [{"id": "d", "name": "D", "action": "deploy", "params": {"replicas": 0, "mode": "hybrid", "name": "ab"}}, {"id": "e", "name": "E", "action": "deploy", "params": {"model": "m", "replicas": 11, "name": "far-too-long", "mode": "shared"}}, {"id": "f", "name": "F", "action": "deploy", "params": {"model": "{{ params.m }}", "replicas": "{{ params.r }}", "slo": "fast"}}], "parameters": [{"name": "m"}, {"name": "r"}]}"#
        )
        #expect(
            report.errors == [
                "Step 'd': Required parameter 'model' is missing or empty",
                "Step 'd': Parameter 'replicas' value 0 is less than minimum 1.0",
                "Step 'd': Parameter 'name' length 2 is less than minimum 3",
                "Step 'e': Parameter 'replicas' value 11 exceeds maximum 10.0",
                "Step 'e': Parameter 'name' length 12 exceeds maximum 8",
            ]
        )
        #expect(report.warnings == ["Step 'd': Parameter 'mode' value 'hybrid' is not one of: dedicated, shared"])
    }

    @Test func requiredParametersFollowShowWhen() throws {
        let hidden = try validate(
            #"{"name": "s", "steps": [{"id": "d", "name": "D", "action": "deploy", "params": {"model": "m", "mode": "shared"}}]}"#)
        #expect(hidden.valid)
        let shown = try validate(#"{"name": "s", "steps": [{"id": "d", "name": "D", "action": "deploy", "params": {"model": "m"}}]}"#)
        #expect(shown.errors == ["Step 'd': Required parameter 'slo' is missing or empty"])
    }

    @Test func conditionalBranchesAreChecked() throws {
        let report = try validate(
            #"{"name": "b", "steps": [{"id": "c", "name": "C", "action": "conditional", "params": {"branches": [{"id": "x", "condition": "{{ true }}", "target_step": "y"}, {"id": "z", "condition": "true", "target_step": "missing"}, {"condition": "true"}, {"id": "q"}, 3]}}, {"id": "y", "name": "Y", "action": "log"}]}"#
        )
        #expect(
            report.errors == [
                "Step 'c': Branch 2 missing 'id' field", "Step 'c': Branch 3 missing 'condition' field",
                "Step 'c': Branch 4 must be a dictionary",
                "Step 'c': branch 'z' targets unknown step 'missing'",
            ]
        )
        #expect(
            report.warnings == [
                "Step 'c': branch 'x' targets step 'y', which does not depend on 'c'; it may run before the branch is chosen"
            ])
    }

    @Test func parameterTypes() throws {
        let report = try validate(
            #"{"name": "pt", "parameters": [{"name": "n", "type": "integer", "default": "three"}, {"name": "f", "type": "fraction"}], "steps": [{"id": "a", "name": "A", "action": "log"}]}"#
        )
        #expect(report.errors == ["parameters.0.default: Value error, the default of parameter 'n' must be an integer, got string"])
        #expect(report.warnings == ["Parameter 'f' has unknown type 'fraction'; its values are not checked"])
    }

    @Test func parametersWithoutATypeTakeAnyDefault() throws {
        let report = try validate(
            #"{"name": "u", "parameters": [{"name": "n", "default": 7}, {"name": "l", "default": [1]}], "steps": [{"id": "a", "name": "A", "action": "log"}]}"#
        )
        #expect(report == ValidationReport(errors: [], warnings: [], stepCount: 1))
    }

    @Test(arguments: ["sample_dag.json", "control_flow_dag.json", "ml_deployment_dag.json", "cluster_health_check.json"])
    func theReferenceExamplesValidate(file: String) throws {
        let report = PipelineCompiler.compile(try EngineFixtures.example(file), catalog: TestCatalog.catalog).report
        #expect(report.valid, "\(report.errors)")
    }

    /// A 1,000-step chain and a 1,000-wide fan-out are validated and planned well under a second.
    @Test(arguments: ["chain", "fan-out"])
    func largeDAGsValidateQuickly(shape: String) throws {
        var steps: [JSONValue] = [["id": "s0", "name": "S0", "action": "log", "params": ["message": "{{ params.x }}"]]]
        for index in 1..<1000 {
            let dependency = shape == "chain" ? "s\(index - 1)" : "s0"
            steps.append(
                [
                    "id": .string("s\(index)"), "name": .string("S\(index)"), "action": "set_output", "depends_on": [.string(dependency)],
                    "params": ["outputs": ["v": .string("{{ steps.\(dependency).outputs.message | default(params.x) }}")]],
                ]
            )
        }
        let document: JSONValue = ["name": "big", "parameters": [["name": "x", "default": "y"]], "steps": .array(steps)]
        // CPU time of this thread, not wall time: other suites (servers, workers) share the cores.
        let started = Self.threadCPUTime()
        let (report, pipeline) = PipelineCompiler.compile(document, catalog: TestCatalog.catalog)
        let batches = pipeline?.graph.batches()
        let elapsed = Self.threadCPUTime() - started
        #expect(report.valid)
        #expect(report.stepCount == 1000)
        #expect(batches?.count == (shape == "chain" ? 1000 : 2))
        #expect(elapsed < .seconds(1), "took \(elapsed)")
    }

    private static func threadCPUTime() -> Duration {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return .seconds(time.tv_sec) + .nanoseconds(time.tv_nsec)
    }
}
