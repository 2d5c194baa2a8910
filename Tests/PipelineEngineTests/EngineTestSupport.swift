import BudJSON
import Foundation
import PipelineEngine
import PluginSchema
import Testing

/// Actions the engine tests use besides the built-ins: plugin actions described by metadata only.
enum TestCatalog {
    static let pluginActions = [
        ActionMetadata(type: "work", name: "Work", category: "Test", description: "A synchronous plugin action."),
        ActionMetadata(
            type: "deploy", name: "Deploy", category: "Test", description: "An event-driven plugin action.",
            params: [
                ParamDefinition(name: "model", label: "Model", type: .modelRef, required: true),
                ParamDefinition(
                    name: "replicas", label: "Replicas", type: .number, defaultValue: 1, validation: ValidationRules(min: 1, max: 10)),
                ParamDefinition(
                    name: "mode", label: "Mode", type: .select, defaultValue: "dedicated",
                    options: [SelectOption(label: "Dedicated", value: "dedicated"), SelectOption(label: "Shared", value: "shared")]
                ),
                ParamDefinition(name: "name", label: "Name", type: .string, validation: ValidationRules(minLength: 3, maxLength: 8)),
                ParamDefinition(
                    name: "slo", label: "SLO", type: .string, required: true,
                    showWhen: ConditionalVisibility(param: "mode", equals: "dedicated")
                ),
            ],
            executionMode: .eventDriven,
            timeoutSeconds: 600
        ),
        ActionMetadata(
            type: "flaky", name: "Flaky", category: "Test", description: "Declares its own retry policy.",
            retryPolicy: RetryPolicy(maxAttempts: 2, backoffMultiplier: 3, initialIntervalSeconds: 5, maxIntervalSeconds: 100)
        ),
    ]

    static let catalog = StaticActionCatalog(BuiltInActions.all + pluginActions)
}

enum EngineFixtures {
    static let start = Date(timeIntervalSince1970: 1_800_000_000)

    /// Compiles a DAG written as JSON text; fails the test when it is not valid.
    static func pipeline(_ json: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> CompiledPipeline {
        let document = try JSONValue(parsing: json)
        let (report, pipeline) = PipelineCompiler.compile(document, catalog: TestCatalog.catalog)
        guard let pipeline else {
            Issue.record("the DAG is not valid: \(report.errors)", sourceLocation: sourceLocation)
            throw FixtureFailure()
        }
        return pipeline
    }

    static func machine(_ json: String, params: JSONObject = [:], options: EngineOptions = EngineOptions()) throws -> ExecutionStateMachine
    {
        let pipeline = try pipeline(json)
        let bound = try ParameterBinding.bind(pipeline.definition.parameters, provided: params)
        return ExecutionStateMachine(pipeline: pipeline, executionID: "exec-1", params: bound, options: options)
    }

    static func example(_ name: String) throws -> JSONValue {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Fixtures/dags/\(name)")
        return try PipelineDocument.read(String(contentsOf: url, encoding: .utf8))
    }

    struct FixtureFailure: Error {}
}

extension [ExecutionAction] {
    var dispatches: [StepDispatch] {
        compactMap { if case .dispatch(let dispatch) = $0 { dispatch } else { nil } }
    }

    var dispatchedSteps: [String] { dispatches.map(\.stepID) }

    var events: [EngineEvent] {
        compactMap { if case .emit(let event) = $0 { event } else { nil } }
    }

    var abandonments: [StepAbandonment] {
        compactMap { if case .abandon(let abandonment) = $0 { abandonment } else { nil } }
    }

    var timersSet: [(EngineTimer, Date)] {
        compactMap { if case .setTimer(let timer, let date) = $0 { (timer, date) } else { nil } }
    }

    var timersCancelled: [EngineTimer] {
        compactMap { if case .cancelTimer(let timer) = $0 { timer } else { nil } }
    }

    var ignored: [String] {
        compactMap { if case .ignored(let note) = $0 { note } else { nil } }
    }

    var logLines: [EngineLogLine] {
        compactMap { if case .log(let line) = $0 { line } else { nil } }
    }
}
