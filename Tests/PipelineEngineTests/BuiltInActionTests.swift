import BudJSON
import Foundation
import PipelineEngine
import Testing

/// Built-in actions, run through the engine exactly as a pipeline runs them.
@Suite struct BuiltInActionTests {
    /// Runs one built-in step (followed by `log` steps named in `then`) and returns its final state.
    private func run(_ action: String, _ params: JSONValue, then: [String] = []) throws -> StepState {
        let followers: [JSONValue] = then.map { ["id": .string($0), "name": .string($0), "action": "log", "depends_on": ["s"]] }
        let json = JSONValue.object([
            "name": "b", "steps": .array([["id": "s", "name": "S", "action": .string(action), "params": params]] + followers),
        ]).serializedString()
        var machine = try EngineFixtures.machine(json)
        _ = machine.handle(.start, at: EngineFixtures.start)
        return try #require(machine.step("s"))
    }

    private func outputs(_ action: String, _ params: JSONValue) throws -> JSONObject? {
        try run(action, params).outputs
    }

    @Test func log() throws {
        #expect(try outputs("log", ["message": "hi", "level": "WARNING"]) == ["logged": true, "message": "hi", "level": "warning"])
        #expect(try outputs("log", [:]) == ["logged": true, "message": "", "level": "info"], "the metadata default applies")
        var machine = try EngineFixtures.machine(
            #"{"name": "l", "steps": [{"id": "s", "name": "S", "action": "log", "params": {"message": "{{ 1 + 1 }}", "level": "error"}}]}"#)
        let actions = machine.handle(.start, at: EngineFixtures.start)
        #expect(actions.logLines == [EngineLogLine(stepID: "s", level: "error", message: "2")])
    }

    @Test func fail() throws {
        let step = try run("fail", ["message": "stop here", "error_code": "E42"])
        #expect(step.status == .failed)
        #expect(step.error == "stop here")
        #expect(step.outputs == ["error_code": "E42", "message": "stop here"])
        #expect(try run("fail", [:]).error == "Intentional failure")
    }

    @Test func setOutput() throws {
        #expect(try outputs("set_output", ["outputs": ["a": 1, "b": [true]]]) == ["a": 1, "b": [true]])
        #expect(try outputs("set_output", [:]) == [:])
        let bad = try run("set_output", ["outputs": [1, 2]])
        #expect(bad.status == .failed)
        #expect(bad.error == "outputs must be a dictionary, got list")
    }

    static let transformCases: [(JSONValue, String, JSONValue, String, String)] = [
        (JSONValue.string("MiXed"), "passthrough", JSONValue.string("MiXed"), "str", "str"),
        ("MiXed", "uppercase", "MIXED", "str", "str"),
        (["k": "v", "n": 1], "uppercase", ["k": "V", "n": 1], "dict", "dict"),
        ("MiXed", "lowercase", "mixed", "str", "str"),
        (["a": 1, "b": 2], "keys", ["a", "b"], "dict", "list"),
        (["a": 1, "b": 2], "values", [1, 2], "dict", "list"),
        ("abc", "keys", [], "str", "list"),
        ([1, 2, 3], "count", 3, "list", "int"),
        (5, "count", 0, "int", "int"),
        ([[1, 2], 3, [4]], "flatten", [1, 2, 3, 4], "list", "list"),
        ([1, 2, 1, ["x": 1], ["x": 1]], "unique", [1, 2, ["x": 1]], "list", "list"),
        ([3, 1, 2], "sort", [1, 2, 3], "list", "list"),
        ([3, "a", 1], "sort", [1, 3, "a"], "list", "list"),
        ("abc", "reverse", "cba", "str", "str"),
        ([1, 2], "reverse", [2, 1], "list", "list"),
        ("x", "explode", "x", "str", "str"),
    ]

    @Test(arguments: transformCases)
    func transform(input: JSONValue, operation: String, result: JSONValue, inputType: String, outputType: String) throws {
        let outputs = try self.outputs("transform", ["input": input, "operation": .string(operation)])
        #expect(
            outputs == [
                "result": result, "operation": .string(operation), "input_type": .string(inputType), "output_type": .string(outputType),
            ])
    }

    static let aggregateCases: [(JSONValue, String, JSONValue, Int)] = [
        (JSONValue.array([1, 2, 3]), "list", JSONValue.array([1, 2, 3]), 3),
        ([1, 2, 3.5], "sum", 6.5, 3),
        ([1, 2, 3], "sum", 6, 3),
        ([1, "x"], "sum", 0, 2),
        (["a", 1, nil], "join", "a, 1, None", 3),
        ([["a": 1], ["b": 2], "skip", ["a": 3]], "merge", ["a": 3, "b": 2], 4),
        ([4, 5], "first", 4, 2),
        ([], "last", nil, 0),
        ([3, 1, 2], "min", 1, 3),
        ([3, 1, 2], "max", 3, 3),
        ([1, "x"], "max", nil, 2),
        ([1, 2], "average", 1.5, 2),
        ([], "average", nil, 0),
        ([1, 2, 3], "count", 3, 3),
        ([[1], [2, 3], 4], "flatten", [1, 2, 3, 4], 3),
        ("solo", "list", ["solo"], 0),
        (nil, "list", [], 0),
    ]

    @Test(arguments: aggregateCases)
    func aggregate(inputs: JSONValue, operation: String, result: JSONValue, count: Int) throws {
        let outputs = try self.outputs("aggregate", ["inputs": inputs, "operation": .string(operation)])
        #expect(outputs == ["result": result, "count": .int(count), "operation": .string(operation)])
    }

    @Test func aggregateJoinsWithASeparatorAndRejectsUnknownOperations() throws {
        #expect(try outputs("aggregate", ["inputs": ["a", "b"], "operation": "join", "separator": "-"])?["result"] == "a-b")
        let bad = try run("aggregate", ["inputs": [1], "operation": "median"])
        #expect(bad.status == .failed)
        #expect(bad.error == "Invalid operation: median. Valid: list, sum, join, merge, first, last, min, max, average, count, flatten")
        #expect(
            BuiltInActions.validateParams("aggregate", ["inputs": "x", "operation": "median"]) == [
                "inputs must be a list",
                "Invalid operation: median. Valid: list, sum, join, merge, first, last, min, max, average, count, flatten",
            ])
    }

    @Test func conditionalChoosesTheFirstMatchingBranch() throws {
        let branches: JSONValue = [
            ["id": "low", "label": "Low", "condition": "{{ 1 > 2 }}", "target_step": "a"],
            ["id": "high", "condition": "{{ 2 > 1 }}", "target_step": "b"],
            ["id": "also", "condition": "true", "target_step": "c"],
        ]
        #expect(
            try run("conditional", ["branches": branches], then: ["a", "b", "c"]).outputs
                == ["matched_branch": "high", "matched_label": "high", "target_step": "b", "result": "high", "branch": "high"]
        )
        let none: JSONValue = [["id": "x", "condition": "false"], ["id": "y", "condition": "{{ 1 / 0 }}"]]
        #expect(
            try outputs("conditional", ["branches": none])
                == ["matched_branch": nil, "matched_label": "none", "target_step": nil, "result": nil, "branch": "none"],
            "a branch whose condition fails to evaluate is skipped"
        )
    }

    @Test func conditionalLegacyMode() throws {
        #expect(
            try outputs("conditional", ["condition": false])
                == [
                    "result": ["branch": "false"], "branch": "false", "matched_branch": "false", "matched_label": "false",
                    "target_step": nil,
                ]
        )
        #expect(try outputs("conditional", ["condition": true, "true_result": "yes"])?["result"] == "yes")
        #expect(try outputs("conditional", ["condition": "false"])?["branch"] == "false")
        #expect(
            BuiltInActions.validateParams("conditional", ["branches": [3, ["condition": "x"], ["id": "a"]]]) == [
                "Branch 0 must be a dictionary", "Branch 1 missing 'id' field", "Branch 2 missing 'condition' field",
            ])
    }
}

@Suite struct WaitUntilTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    private func wake(_ params: JSONObject) -> Result<Date, WaitUntilError> {
        WaitUntil.wakeTime(params, now: now)
    }

    @Test func durations() throws {
        #expect(try wake(["duration_hours": 2]).get() == now.addingTimeInterval(7200))
        #expect(try wake(["duration_hours": "0.5", "until_time": "23:00"]).get() == now.addingTimeInterval(1800), "duration wins")
        #expect(throws: WaitUntilError.self) { try wake(["duration_hours": 0.001]).get() }
        #expect(wake(["duration_hours": 0.001]) == .failure(WaitUntilError("duration_hours must be at least 0.0167 (1 minute)")))
        #expect(wake(["duration_hours": 169]) == .failure(WaitUntilError("duration_hours cannot exceed 168 (1 week)")))
        #expect(wake(["duration_hours": "soon"]) == .failure(WaitUntilError("Invalid duration_hours value: soon")))
        #expect(wake([:]) == .failure(WaitUntilError("Either duration_hours or until_time must be specified")))
    }

    @Test func untilTimes() throws {
        // now is 2027-01-15T08:00:00Z.
        #expect(try wake(["until_time": "2027-01-15T10:30:00Z"]).get() == now.addingTimeInterval(2.5 * 3600))
        #expect(try wake(["until_time": "2027-01-15T10:30:00+02:00"]).get() == now.addingTimeInterval(0.5 * 3600))
        #expect(
            try wake(["until_time": "2027-01-15T16:30:00", "timezone": "Asia/Kolkata"]).get() == now.addingTimeInterval(3 * 3600),
            "a time without an offset is read in the zone"
        )
        #expect(try wake(["until_time": "09:00"]).get() == now.addingTimeInterval(3600))
        #expect(try wake(["until_time": "07:00:00"]).get() == now.addingTimeInterval(23 * 3600), "a passed time means tomorrow")
        #expect(
            try wake(["until_time": "10:00", "timezone": "Europe/Berlin"]).get() == now.addingTimeInterval(3600),
            "10:00 in Berlin is 09:00Z")
        #expect(
            wake(["until_time": "2027-01-15T07:00:00Z"])
                == .failure(WaitUntilError("until_time must be in the future. Got: 2027-01-15T07:00:00Z")))
        #expect(
            wake(["until_time": "2027-03-01T00:00:00Z"])
                == .failure(WaitUntilError("until_time cannot be more than 168 hours in the future")))
        #expect(wake(["until_time": "tomorrow"]) == .failure(WaitUntilError("Unrecognized time format: tomorrow")))
        #expect(wake(["until_time": "25:00"]) == .failure(WaitUntilError("Unrecognized time format: 25:00")))
        #expect(wake(["until_time": "09:00", "timezone": "Mars/Base"]) == .failure(WaitUntilError("Invalid timezone: 'Mars/Base'")))
    }

    @Test func validation() {
        #expect(
            BuiltInActions.validateParams("wait_until", ["duration_hours": 1, "until_time": "10:00"]) == [
                "Specify either duration_hours or until_time, not both"
            ])
        #expect(BuiltInActions.validateParams("wait_until", [:]) == ["Either duration_hours or until_time must be specified"])
        #expect(BuiltInActions.validateParams("wait_until", ["until_time": "noonish"]) == ["Unrecognized time format: noonish"])
        #expect(BuiltInActions.validateParams("wait_until", ["duration_hours": 1]) == [])
    }
}
