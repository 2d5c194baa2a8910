public import BudJSON
public import BudPipelineHost
import Foundation
public import PipelineEngine
public import PluginSchema
import Storage

/// What is needed to start an execution.
public struct ExecutionRequest: Sendable {
    /// The DAG document (as `POST /validate` takes it).
    public var dag: JSONValue
    /// Parameter values; defaults of the DAG fill the missing ones.
    public var params: JSONObject
    /// The saved pipeline it runs, if any (`nil` for an ephemeral run).
    public var pipelineID: PipelineID?
    /// The name clients see; the DAG's `name` by default.
    public var pipelineName: String?
    public var initiator: String
    public var callbackTopics: [String]
    public var subscriberIDs: String?
    public var payloadType: String?
    public var notificationWorkflowID: String?
    /// The id to use; a new UUID by default.
    public var executionID: ExecutionID?
    /// The user the execution belongs to; `nil`: the service's (see docs/security.md).
    public var ownerID: String?
    /// The user who asks to start a saved pipeline, when a user does: the pipeline must be theirs
    /// or system-owned, and is not found otherwise.
    public var requestingUser: String?
    /// For a retry: the execution it retries and the steps that already completed there, which
    /// the new execution keeps (outputs included) instead of running them again.
    public var retry: (of: ExecutionID, completedSteps: [StepState])?
    /// The trace context of the request that starts the execution (its valid `traceparent`), which
    /// the execution's trace joins; `nil`: its trace id is the execution id.
    public var traceParent: TraceParent?

    public init(
        dag: JSONValue,
        params: JSONObject = [:],
        pipelineID: PipelineID? = nil,
        pipelineName: String? = nil,
        initiator: String = "api",
        callbackTopics: [String] = [],
        subscriberIDs: String? = nil,
        payloadType: String? = nil,
        notificationWorkflowID: String? = nil,
        executionID: ExecutionID? = nil,
        ownerID: String? = nil
    ) {
        self.ownerID = ownerID
        self.dag = dag
        self.params = params
        self.pipelineID = pipelineID
        self.pipelineName = pipelineName
        self.initiator = initiator
        self.callbackTopics = callbackTopics
        self.subscriberIDs = subscriberIDs
        self.payloadType = payloadType
        self.notificationWorkflowID = notificationWorkflowID
        self.executionID = executionID
    }
}

/// Why an execution was not started.
public enum ExecutionStartError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The DAG is not valid; the report says why.
    case invalidPipeline(ValidationReport)
    /// Steps use actions no loaded plugin provides.
    case unregisteredActions([String])
    /// The parameters do not fit the DAG's declarations.
    case invalidParameters([String])
    /// No saved pipeline has this id.
    case pipelineNotFound(PipelineID)
    /// The saved pipeline is a draft without steps.
    case pipelineIsDraft(PipelineID)

    public var description: String {
        switch self {
        case .invalidPipeline(let report): "invalid pipeline: \(report.errors.joined(separator: "; "))"
        case .unregisteredActions(let types):
            "the pipeline uses actions that no loaded plugin provides: \(types.joined(separator: ", "))"
        case .invalidParameters(let problems): "invalid parameters: \(problems.joined(separator: "; "))"
        case .pipelineNotFound(let id): "Pipeline not found: \(id)"
        case .pipelineIsDraft(let id): "Pipeline \(id) is a draft without steps and cannot run"
        }
    }
}

/// Checks an execution request and builds its first record and machine.
enum ExecutionPreparation {
    struct Prepared {
        var record: ExecutionRecord
        var machine: ExecutionStateMachine
    }

    static func prepare(_ request: ExecutionRequest, catalog: some ActionCatalog, options: EngineOptions) throws(ExecutionStartError)
        -> Prepared
    {
        let (report, compiled) = PipelineCompiler.compile(request.dag, catalog: catalog)
        guard let pipeline = compiled else { throw .invalidPipeline(report) }
        let unregistered = Set(pipeline.definition.steps.map(\.action).filter { catalog.metadata(for: $0) == nil })
        guard unregistered.isEmpty else { throw .unregisteredActions(unregistered.sorted()) }
        let params: JSONObject
        do {
            params = try ParameterBinding.bind(pipeline.definition.parameters, provided: request.params).owned(by: request.ownerID)
        } catch {
            throw .invalidParameters(error.problems)
        }
        // The parameters are stored with the execution and read by every step: they count
        // towards the execution's stored size and must leave room for outputs.
        let limit = options.storedSizes.maximumExecutionBytes / 2
        switch JSONValue.object(params).measure(limit: limit) {
        case .fits: break
        case .tooLarge:
            throw .invalidParameters([
                "params: the parameters are larger than \(limit) bytes, half the execution's stored size limit (BUDPIPELINE_MAX_EXECUTION_BYTES)"
            ])
        case .tooDeep: throw .invalidParameters(["params: the parameters nest deeper than \(JSONValue.maximumNestingDepth) levels"])
        }
        let id = request.executionID ?? .generate()
        let name = request.pipelineName ?? pipeline.definition.name
        var snapshot: JSONObject = [
            "workflow_id": request.pipelineID.map { .string($0.rawValue) } ?? .null,
            "workflow_name": .string(name),
            "dag": request.dag,
            "params": .object(params),
        ]
        if let retry = request.retry { snapshot["retry_of"] = .string(retry.of.rawValue) }
        if let trace = request.traceParent { snapshot["trace_parent"] = .string(trace.header) }
        let now = Date()
        let record = ExecutionRecord(
            id: id,
            pipelineID: request.pipelineID,
            definitionSnapshot: snapshot,
            initiator: request.initiator,
            subscriberIDs: request.subscriberIDs,
            payloadType: request.payloadType,
            notificationWorkflowID: request.notificationWorkflowID,
            createdAt: now,
            updatedAt: now,
            userID: request.ownerID
        )
        var machine = ExecutionStateMachine(pipeline: pipeline, executionID: id, params: params, options: options)
        if let retry = request.retry {
            machine = carryingOver(retry.completedSteps, into: machine, pipeline: pipeline, params: params, options: options)
        }
        return Prepared(record: record, machine: machine)
    }

    /// A machine that has not started, whose steps that completed in the retried execution are
    /// already completed (steps the pipeline no longer has are ignored).
    private static func carryingOver(
        _ completed: [StepState], into fresh: ExecutionStateMachine, pipeline: CompiledPipeline, params: JSONObject,
        options: EngineOptions
    ) -> ExecutionStateMachine {
        let carried = Dictionary(
            completed.filter { $0.status == .completed }.map { ($0.stepID, $0) }, uniquingKeysWith: { first, _ in first })
        let steps = fresh.steps.map { carried[$0.stepID] ?? $0 }
        // One state per step of the pipeline, none duplicated: restoring cannot fail.
        return
            (try? ExecutionStateMachine(
                restoring: pipeline, executionID: fresh.executionID, params: params, options: options, steps: steps,
                execution: fresh.execution)) ?? fresh
    }
}

/// The actions executions may use: the built-in ones and those of the loaded plugins.
public struct RuntimeActionCatalog: ActionCatalog {
    let plugins: PluginHost

    public init(plugins: PluginHost) {
        self.plugins = plugins
    }

    public func metadata(for type: String) -> ActionMetadata? {
        BuiltInActions.catalog.metadata(for: type) ?? plugins.action(type)?.metadata
    }

    /// Every action: the built-in ones, then the plugins' in load order.
    public var all: [ActionMetadata] {
        BuiltInActions.all + plugins.actions.map(\.metadata).filter { BuiltInActions.catalog.metadata(for: $0.type) == nil }
    }

    /// What is wrong with `params` for the action, as `POST /actions/validate` reports it: missing
    /// required parameters (unless hidden by `show_when`), numeric and length bounds, then the
    /// action's own checks (a plugin's `validate_params`). `nil` when the action does not exist.
    public func validate(params: JSONObject, for type: String) async -> [String]? {
        guard let metadata = metadata(for: type) else { return nil }
        var errors: [String] = []
        for param in metadata.params {
            let value = params[param.name]
            if param.required, value == nil || value == .null {
                if let condition = param.showWhen, !Self.isVisible(condition, params: params) { continue }
                errors.append("Missing required parameter: \(param.name)")
                continue
            }
            guard let value, let rules = param.validation else { continue }
            if let number = value.doubleValue {
                if let min = rules.min, number < min { errors.append("\(param.name): must be >= \(Self.number(min))") }
                if let max = rules.max, number > max { errors.append("\(param.name): must be <= \(Self.number(max))") }
            }
            if let text = value.stringValue {
                if let min = rules.minLength, text.count < min { errors.append("\(param.name): must be at least \(min) chars") }
                if let max = rules.maxLength, text.count > max { errors.append("\(param.name): must be at most \(max) chars") }
            }
        }
        if BuiltInActions.catalog.metadata(for: type) != nil {
            errors += BuiltInActions.validateParams(type, params)
        } else {
            do {
                errors += try await plugins.validateParams(action: type, params: params)
            } catch {
                errors.append("Validation error: \(error.message)")
            }
        }
        return errors
    }

    private static func isVisible(_ condition: ConditionalVisibility, params: JSONObject) -> Bool {
        let value = params[condition.param] ?? .null
        if let equals = condition.equals, value != equals { return false }
        if let notEquals = condition.notEquals, value == notEquals { return false }
        return true
    }

    /// `5` rather than `5.0`, as Python prints an integral bound.
    private static func number(_ value: Double) -> String {
        value.rounded() == value && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}

extension JSONObject {
    /// The parameters with `user_id` naming the execution's owner, or without `user_id` when the
    /// execution has none.
    ///
    /// Existing plugins read the acting user from `workflow_params.user_id` (docs/compatibility.md).
    /// Parameters reach an execution from places its owner does not control — DAG defaults, a
    /// schedule's or trigger's stored params, a webhook sender's body — so whatever they say about
    /// `user_id` is replaced: nobody can make a plugin act for a user the execution is not
    /// owned by (docs/security.md, "Plugins act for the execution's owner").
    func owned(by ownerID: String?) -> JSONObject {
        var params = self
        params["user_id"] = ownerID.map(JSONValue.string)
        return params
    }
}
