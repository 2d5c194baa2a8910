import BudJSON
import PipelineEngine
import Testing

@Suite struct PipelineParserTests {
    @Test(arguments: ["sample_dag.json", "control_flow_dag.json", "ml_deployment_dag.json", "cluster_health_check.json"])
    func theReferenceExamplesParse(file: String) throws {
        let document = try EngineFixtures.example(file)
        let definition = try PipelineParser.parse(document).get()
        #expect(!definition.steps.isEmpty)
        #expect(definition.name == document["name"]?.stringValue)
    }

    @Test func readsEveryField() throws {
        let definition = try PipelineParser.parse(
            [
                "name": "full", "version": "2.1", "description": "All fields",
                "parameters": [
                    ["name": "model", "type": "model_ref", "description": "The model", "required": true],
                    ["name": "replicas", "type": "integer", "default": 2, "required": "false"],
                ],
                "settings": [
                    "timeout_seconds": 900, "fail_fast": false, "max_parallel_steps": 4,
                    "retry_policy": ["max_attempts": 5, "backoff_seconds": 2, "backoff_multiplier": 1.5, "max_backoff_seconds": 30],
                ],
                "steps": [
                    ["id": "a", "name": "A", "action": "log", "params": ["message": "hi"], "outputs": ["logged"]],
                    [
                        "id": "b", "name": "B", "action": "work", "depends_on": ["a"], "condition": "{{ params.replicas > 1 }}",
                        "on_failure": "RETRY", "timeout_seconds": "60",
                        "retry": ["max_attempts": "{{ params.replicas }}", "backoff_seconds": 1], "extra": "ignored",
                    ],
                ],
                "outputs": ["logged": "{{ steps.a.outputs.logged }}"],
                "unknown": true,
            ]
        ).get()
        #expect(definition.version == "2.1")
        #expect(definition.parameters[1] == PipelineParameter(name: "replicas", type: "integer", required: false, defaultValue: 2))
        #expect(definition.parameters[0].type == "model_ref")
        #expect(
            definition.settings
                == PipelineSettings(
                    timeoutSeconds: 900, failFast: false, maxParallelSteps: 4,
                    retryPolicy: StepRetry(
                        maxAttempts: .number(5), backoffSeconds: .number(2), backoffMultiplier: .number(1.5), maxBackoffSeconds: .number(30)
                    )
                ))
        let b = definition.steps[1]
        #expect(b.dependsOn == ["a"])
        #expect(b.onFailure == .retry)
        #expect(b.timeoutSeconds == 60)
        #expect(b.retry == StepRetry(maxAttempts: .template("{{ params.replicas }}"), backoffSeconds: .number(1)))
        #expect(definition.outputs.map(\.name) == ["logged"])
    }

    @Test func appliesTheDefaults() throws {
        let definition = try PipelineParser.parse(["name": "d", "steps": [["id": "a", "name": "A", "action": "log"]]]).get()
        #expect(definition.version == "1.0")
        #expect(definition.settings == PipelineSettings(timeoutSeconds: nil, failFast: true, maxParallelSteps: 10, retryPolicy: nil))
        #expect(definition.steps[0].onFailure == .fail)
        #expect(definition.steps[0].params.isEmpty)
    }

    static let structuralCases: [(JSONValue, [String])] = [
        (JSONValue.null, ["DAG data cannot be None"]),
        ([:], ["DAG data cannot be empty"]),
        ([1, 2], ["DAG data must be a dictionary, got list"]),
        ("text", ["DAG data must be a dictionary, got str"]),
        (["steps": []], ["name: Field required"]),
        (["name": "x"], ["steps: Field required"]),
        (["name": "x", "steps": "a"], ["steps: Must be a list"]),
        (["name": "x", "steps": []], ["steps: At least one step is required"]),
        (["name": "x", "steps": [1]], ["steps.0: Must be a dictionary"]),
        (["name": "x", "steps": [["name": "A", "action": "log"]]], ["steps.0.id: Field required"]),
        (["name": "x", "steps": [["id": "a", "name": "A"]]], ["steps.0.action: Field required"]),
        (
            ["name": "x", "steps": [["id": "a", "name": "A", "action": "log"], ["id": "a", "name": "B", "action": "log"]]],
            ["steps: Duplicate step ID 'a'"]
        ),
        (
            ["name": "x", "steps": [["id": "a", "name": "A", "action": "log", "depends_on": ["a"]]]],
            ["steps.a: Self-dependency not allowed"]
        ),
        (
            ["name": "x", "steps": [["id": "a", "name": "A", "action": "log", "depends_on": ["z"]]]],
            ["steps.a.depends_on: Unknown step 'z'"]
        ),
    ]

    @Test(arguments: structuralCases)
    func structuralProblemsStopAtTheFirst(document: JSONValue, errors: [String]) {
        #expect(throws: PipelineParseError(errors: errors)) { try PipelineParser.parse(document).get() }
    }

    @Test func schemaProblemsAreAllReported() {
        let document: JSONValue = [
            "name": "", "version": [1],
            "parameters": [["name": "1st"], ["name": "ok", "required": "maybe"], ["name": "ok"]],
            "settings": ["max_parallel_steps": 101, "timeout_seconds": 0, "fail_fast": 2],
            "steps": [
                ["id": "_a", "action": "log"],
                [
                    "id": "b", "name": "B", "action": "log", "params": [1], "on_failure": "explode", "timeout_seconds": 1.5,
                    "retry": ["max_attempts": 11, "backoff_multiplier": 0.5], "condition": 3,
                ],
            ],
            "outputs": ["x": 1],
        ]
        let expected = [
            "name: String should have at least 1 character",
            "version: Input should be a valid string",
            "parameters.0.name: Value error, Parameter name must start with a letter or underscore",
            "parameters.1.required: Input should be a valid boolean, unable to interpret input",
            "parameters.2.name: Value error, Duplicate parameter name 'ok'",
            "settings.timeout_seconds: Input should be greater than or equal to 1",
            "settings.fail_fast: Input should be a valid boolean",
            "settings.max_parallel_steps: Input should be less than or equal to 100",
            "steps.0.id: Value error, Step ID must start with alphanumeric character",
            "steps.0.name: Field required",
            "steps.1.params: Input should be a valid dictionary",
            "steps.1.condition: Input should be a valid string",
            "steps.1.on_failure: Value error, 'explode' is not a valid OnFailureAction",
            "steps.1.timeout_seconds: Input should be a valid integer, got a number with a fractional part",
            "steps.1.retry.max_attempts: Input should be less than or equal to 10",
            "steps.1.retry.backoff_multiplier: Input should be greater than or equal to 1",
            "outputs.x: Input should be a valid string",
        ]
        #expect(throws: PipelineParseError(errors: expected)) { try PipelineParser.parse(document).get() }
    }
}

@Suite struct PipelineDocumentTests {
    @Test func readsYAMLLikeJSON() throws {
        let yaml = """
            name: from-yaml
            parameters:
              - name: flag
                type: boolean
                default: yes
              - name: ratio
                default: 0.5
            defaults: &retry
              max_attempts: 2
            steps:
              - id: a
                name: A
                action: log
                params:
                  message: "{{ params.flag }}"
                  count: 3
                  nothing: ~
                retry:
                  <<: *retry
                  backoff_seconds: 1
            """
        let document = try PipelineDocument.read(yaml)
        #expect(document["parameters"]?[0]?["default"] == true)
        #expect(document["parameters"]?[1]?["default"] == 0.5)
        #expect(document["steps"]?[0]?["params"] == ["message": "{{ params.flag }}", "count": 3, "nothing": nil])
        #expect(document["steps"]?[0]?["retry"] == ["backoff_seconds": 1, "max_attempts": 2])
        #expect(try PipelineParser.parse(document).get().steps[0].retry?.maxAttempts == .number(2))
        let json = try PipelineDocument.read(#"{"name": "j", "steps": []}"#)
        #expect(json["name"] == "j")
    }

    @Test func reportsUnreadableDocumentsInOneLine() {
        #expect(throws: PipelineDocument.ReadError.self) { try PipelineDocument.read("{\"name\": }") }
        do {
            _ = try PipelineDocument.read("key: [unclosed")
            Issue.record("expected an error")
        } catch {
            #expect(error.message.hasPrefix("invalid YAML: "))
            #expect(!error.message.contains("\n"))
        }
        #expect(PipelineDocument.format(forFileName: "dag.YML") == .yaml)
        #expect(PipelineDocument.format(forFileName: "dag.json") == .json)
        #expect(PipelineDocument.format(forFileName: "dag") == nil)
    }

    private func readError(_ text: String, format: PipelineDocument.Format? = nil) -> String? {
        do {
            _ = try PipelineDocument.read(text, format: format)
            return nil
        } catch {
            return error.message
        }
    }

    @Test(arguments: [("[", "]"), ("{a: ", "}"), ("- ", ""), ("? ", "")])
    func deeplyNestedYAMLIsRefusedWithoutRecursing(opening: String, closing: String) {
        for depth in [600, 100_000] {
            let text = String(repeating: opening, count: depth) + "x" + String(repeating: closing, count: depth)
            let message = readError(text, format: .yaml)
            #expect(message?.hasPrefix("invalid YAML: ") == true, "depth \(depth): \(String(describing: message))")
            if depth == 600 { #expect(message == "invalid YAML: nesting deeper than 512 levels") }
        }
    }

    @Test func deeplyNestedJSONIsRefused() {
        let text = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(readError(text)?.contains("nesting deeper than 512 levels") == true)
    }

    @Test func yamlWithinTheDepthLimitReads() throws {
        let depth = 500
        let text = String(repeating: "[", count: depth) + "1" + String(repeating: "]", count: depth)
        var value = try PipelineDocument.read(text, format: .yaml)
        var levels = 0
        while case .array(let elements) = value, let first = elements.first {
            value = first
            levels += 1
        }
        #expect(levels == depth)
    }

    @Test func aliasBombsAreRefusedBeforeExpansion() {
        var lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        for level in 1...9 {
            lines.append("a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]")
        }
        #expect(readError(lines.joined(separator: "\n")) == "invalid YAML: more than 1000000 values once aliases are expanded")
        let modest = "base: &b {k: v}\ncopies: [*b, *b, *b]"
        #expect(readError(modest) == nil)
    }
}

@Suite struct DependencyGraphTests {
    private func graph(_ edges: [String: [String]], order: [String]) -> DependencyGraph {
        DependencyGraph(order.map { PipelineStep(id: $0, name: $0, action: "log", dependsOn: edges[$0] ?? []) })
    }

    @Test func batchesFollowDependencies() {
        let diamond = graph(["b": ["a"], "c": ["a"], "d": ["b", "c"]], order: ["a", "b", "c", "d"])
        #expect(diamond.batches() == [[0], [1, 2], [3]])
        #expect(diamond.cycle() == nil)
        let parallel = graph([:], order: ["x", "y", "z"])
        #expect(parallel.batches() == [[0, 1, 2]])
        let disconnected = graph(["b": ["a"], "d": ["c"]], order: ["a", "b", "c", "d"])
        #expect(disconnected.batches() == [[0, 2], [1, 3]])
        #expect([0, 1, 2].allSatisfy { diamond.dependsTransitively(3, on: $0) })
        #expect(!diamond.dependsTransitively(1, on: 2))
        #expect(!diamond.dependsTransitively(0, on: 3))
        #expect(disconnected.dependsTransitively(3, on: 2) && !disconnected.dependsTransitively(3, on: 0))
        #expect(diamond.dependants[0] == [1, 2])
    }

    @Test func namesCycles() {
        #expect(graph(["a": ["b"], "b": ["a"]], order: ["a", "b"]).cycle() == ["a", "b", "a"])
        #expect(graph(["a": ["c"], "b": ["a"], "c": ["b"]], order: ["a", "b", "c"]).cycle() == ["a", "b", "c", "a"])
        #expect(graph(["a": ["c"], "b": ["a"], "c": ["b"]], order: ["a", "b", "c"]).batches() == nil)
        #expect(graph(["b": ["a"], "c": ["a", "b"]], order: ["a", "b", "c"]).cycle() == nil)
    }
}

@Suite("YAML integers")
struct YAMLIntegerTests {
    @Test("YAML 1.1 integers are read, and one that does not fit is no trap")
    func integers() throws {
        #expect(PipelineDocument.integer("42") == 42 && PipelineDocument.integer("-1_000") == -1000)
        #expect(PipelineDocument.integer("0x1f") == 31 && PipelineDocument.integer("0o17") == 15 && PipelineDocument.integer("017") == 15)
        #expect(
            PipelineDocument.integer("0b101") == 5 && PipelineDocument.integer("1:30") == 90 && PipelineDocument.integer("-1:0:0") == -3600)
        // Found by fuzzing: Yams multiplied sexagesimal parts without an overflow check.
        for text in ["922337203685477580:7", "9223372036854775807:0", "99999999999999999999", "0x1ffffffffffffffff", "1::2", ":", "-"] {
            #expect(PipelineDocument.integer(text) == nil, "\(text)")
        }
        let document = try PipelineDocument.read("settings:\n  timeout_seconds: 922337203685477580:7\n", format: .yaml)
        #expect(document["settings"]?["timeout_seconds"] != nil)
    }
}
