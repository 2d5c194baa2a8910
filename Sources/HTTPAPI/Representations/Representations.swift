import BudJSON
import Foundation
import PipelineEngine
import PluginSchema
import Storage

/// How stored records look on the wire: the field names and formats budapp, the admin UI and the
/// SDK read (timestamps as ISO-8601 in UTC with microseconds, percentages as decimal strings, GET
/// statuses upper-case; see docs/compatibility.md).
///
/// Stored params and outputs are shown with the values of secret keys masked (`masking`, see
/// ``SecretKeys``); the stored records keep their values. Pipeline definitions are shown as
/// written: they are the source clients edit.
enum Representation {
    static func timestamp(_ date: Date?) -> JSONValue {
        date.map { .string(SQLTimestamp.format($0)) } ?? .null
    }

    /// `45.00`: a percentage goes out as a decimal string with two places, the form clients parse.
    static func percentage(_ value: Double) -> JSONValue {
        let hundredths = Int((min(100, max(0, value.isNaN ? 0 : value)) * 100).rounded(.toNearestOrEven))
        let fraction = hundredths % 100
        return .string("\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)")
    }

    static func optional(_ text: String?) -> JSONValue {
        text.map(JSONValue.string) ?? .null
    }

    static func optional(_ object: JSONObject?) -> JSONValue {
        object.map(JSONValue.object) ?? .null
    }

    // MARK: Pipelines

    /// The summary create, update and list answer with.
    static func pipeline(_ summary: PipelineDefinitionSummary) -> JSONValue {
        let record = summary.record
        return [
            "id": .string(record.id.rawValue),
            "name": .string(record.name),
            "version": .string(String(record.version)),
            "status": .string(record.status.rawValue.lowercased()),
            "created_at": timestamp(record.createdAt),
            "updated_at": timestamp(record.updatedAt),
            "step_count": .int(record.stepCount),
            "user_id": optional(record.userID),
            "system_owned": .bool(record.systemOwned),
            "description": optional(record.description),
            "icon": optional(record.icon),
            "created_by": .string(record.createdBy),
            "dag": record.dag,
            "execution_count": .int(summary.executionCount),
            "last_execution_at": timestamp(summary.lastExecutionAt),
        ]
    }

    // MARK: Executions

    /// An execution as `GET /executions/{id}` and the listing return it (`Execution` in
    /// `/openapi.json`); the definition snapshot (its `params`, and the DAG run) and the final
    /// outputs masked.
    static func execution(_ record: ExecutionRecord, masking secrets: SecretKeys) -> JSONValue {
        var errorInfo = record.errorInfo
        if var info = errorInfo, info["message"] == nil, let error = info["error"] {
            info["message"] = error
            errorInfo = info
        }
        var snapshot = record.definitionSnapshot
        let retryOf = snapshot.removeValue(forKey: "retry_of") ?? .null
        snapshot["trace_parent"] = nil
        return [
            "id": .string(record.id.rawValue),
            "version": .int(record.version),
            "pipeline_definition": .object(secrets.masked(snapshot)),
            "initiator": .string(record.initiator),
            "start_time": timestamp(record.startTime),
            "end_time": timestamp(record.endTime),
            "status": .string(record.status.rawValue),
            "progress_percentage": percentage(record.progress),
            "final_outputs": optional(record.finalOutputs.map(secrets.masked)),
            "error_info": optional(errorInfo),
            "created_at": timestamp(record.createdAt),
            "updated_at": timestamp(record.updatedAt),
            "retry_of": retryOf,
        ]
    }

    /// What the start routes (`POST /executions`, `/executions/run`, `/budpipeline/{id}/execute`)
    /// and retry answer at once (`StartedExecution` in `/openapi.json`). The status is lower-case
    /// here (`running`), as budapp reads it, unlike the upper-case of the GETs (see
    /// docs/compatibility.md). Params and outputs masked.
    static func startedExecution(_ record: ExecutionRecord, masking secrets: SecretKeys) -> JSONValue {
        [
            "id": .string(record.id.rawValue),
            "execution_id": .string(record.id.rawValue),
            "workflow_id": .string(record.pipelineID?.rawValue ?? "ephemeral"),
            "workflow_name": record.definitionSnapshot["workflow_name"] ?? .string("Ephemeral Pipeline"),
            "status": startStatus(record),
            "started_at": timestamp(record.startTime ?? record.createdAt),
            "completed_at": timestamp(record.endTime),
            "params": .object(secrets.masked(record.params)),
            "outputs": .object(secrets.masked(record.finalOutputs ?? [:])),
            "error": record.errorInfo?["message"] ?? record.errorInfo?["error"] ?? .null,
            "retry_of": record.definitionSnapshot["retry_of"] ?? .null,
        ]
    }

    /// The lower-case status of a just-started execution (`running` until it settles).
    static func startStatus(_ record: ExecutionRecord) -> JSONValue {
        .string(record.status == .pending ? "running" : record.status.rawValue.lowercased())
    }

    /// A step as the execution routes return it (`Step` in `/openapi.json`); outputs masked.
    static func step(_ record: StepRecord, masking secrets: SecretKeys) -> JSONValue {
        let state = record.state
        return [
            "id": .string(record.id),
            "execution_id": .string(record.executionID.rawValue),
            "version": .int(record.version),
            "step_id": .string(state.stepID),
            "step_name": .string(state.name),
            "status": .string(state.status.apiValue),
            "start_time": timestamp(state.startedAt),
            "end_time": timestamp(state.endedAt),
            "progress_percentage": percentage(state.progress),
            "eta_seconds": state.etaSeconds.map(JSONValue.int) ?? .null,
            "outputs": .object(secrets.masked(state.outputs ?? [:])),
            "error_message": optional(state.error),
            "retry_count": .int(state.attempt),
            "sequence_number": .int(state.sequence),
            "awaiting_event": .bool(state.isAwaitingEvent),
            "external_workflow_id": optional(state.externalWorkflowID),
            "handler_type": .string(state.action),
            "timeout_at": timestamp(state.deadline),
            "created_at": timestamp(record.createdAt),
            "updated_at": timestamp(record.updatedAt),
        ]
    }

    /// A stored progress event (`ProgressEvent` in `/openapi.json`); details masked.
    static func progressEvent(_ event: ProgressEventRecord, masking secrets: SecretKeys) -> JSONValue {
        [
            "id": .string(event.id),
            "execution_id": .string(event.executionID.rawValue),
            "event_type": .string(event.kind.rawValue),
            "progress_percentage": percentage(event.progress),
            "eta_seconds": event.etaSeconds.map(JSONValue.int) ?? .null,
            "current_step_desc": optional(event.currentStepDescription),
            "event_details": optional(event.details.map(secrets.masked)),
            "timestamp": timestamp(event.timestamp),
            "sequence_number": .int(event.sequenceNumber),
            "created_at": timestamp(event.createdAt),
        ]
    }

    /// `aggregated_progress`: the stored overall progress, the estimated seconds left, step counts
    /// and the running step.
    static func aggregatedProgress(_ execution: ExecutionRecord, steps: [StepRecord], eta: Int?) -> JSONValue {
        let states = steps.map(\.state)
        let running = states.filter { $0.status == .running || $0.status == .awaitingEvent }
        return [
            "overall_progress": percentage(execution.progress),
            "eta_seconds": eta.map(JSONValue.int) ?? .null,
            "completed_steps": .int(states.filter { $0.status == .completed }.count),
            "total_steps": .int(states.count),
            "current_step": running.first.map { .string($0.name) } ?? .null,
        ]
    }

    // MARK: Actions

    /// An action's metadata (`Action` in `/openapi.json`), with the camelCase keys the admin UI and
    /// the SDK read.
    static func action(_ metadata: ActionMetadata) -> JSONValue {
        [
            "type": .string(metadata.type),
            "version": .string(metadata.version),
            "name": .string(metadata.name),
            "description": .string(metadata.description),
            "category": .string(metadata.category),
            "icon": .string(metadata.icon),
            "color": .string(metadata.color),
            "params": .array(metadata.params.map(param)),
            "outputs": .array(
                metadata.outputs.map { output in
                    ["name": .string(output.name), "type": .string(output.type), "description": optional(output.description)]
                }),
            "executionMode": .string(metadata.executionMode.rawValue),
            "timeoutSeconds": metadata.timeoutSeconds.map(JSONValue.int) ?? .null,
            "retryPolicy": metadata.retryPolicy.map { policy in
                [
                    "maxAttempts": .int(policy.maxAttempts), "backoffMultiplier": .double(policy.backoffMultiplier),
                    "initialIntervalSeconds": .double(policy.initialIntervalSeconds),
                    "maxIntervalSeconds": .double(policy.maxIntervalSeconds),
                ]
            } ?? .null,
            "idempotent": .bool(metadata.idempotent),
            "requiredServices": .array(metadata.requiredServices.map(JSONValue.string)),
            "requiredPermissions": .array(metadata.requiredPermissions.map(JSONValue.string)),
            "examples": .array(
                metadata.examples.map { example in
                    ["title": .string(example.title), "params": .object(example.params), "description": optional(example.description)]
                }),
            "docsUrl": optional(metadata.docsURL),
        ]
    }

    private static func param(_ param: ParamDefinition) -> JSONValue {
        [
            "name": .string(param.name),
            "label": .string(param.label),
            "type": .string(param.type.rawValue),
            "description": optional(param.description),
            "required": .bool(param.required),
            "default": param.defaultValue ?? .null,
            "placeholder": optional(param.placeholder),
            "options": param.options.map { options in
                .array(options.map { ["value": .string($0.value), "label": .string($0.label)] })
            } ?? .null,
            "validation": param.validation.map { rules in
                [
                    "min": rules.min.map(JSONValue.double) ?? .null, "max": rules.max.map(JSONValue.double) ?? .null,
                    "minLength": rules.minLength.map(JSONValue.int) ?? .null, "maxLength": rules.maxLength.map(JSONValue.int) ?? .null,
                    "pattern": optional(rules.pattern), "patternMessage": optional(rules.patternMessage),
                ]
            } ?? .null,
            "group": optional(param.group),
            "visibleWhen": param.showWhen.map { visibility in
                ["param": .string(visibility.param), "equals": visibility.equals ?? .null, "notEquals": visibility.notEquals ?? .null]
            } ?? .null,
        ]
    }
}
