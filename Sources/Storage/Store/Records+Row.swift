import BudJSON
import Foundation
import PipelineEngine

// Decoding stored rows into records. `columns` lists what each decoder reads, for SELECTs.

extension PipelineDefinitionRecord {
    static let columns =
        "id, version, name, description, icon, dag_definition, status, user_id, system_owned, step_count, created_by, created_at, updated_at"

    init(row: Row) throws {
        self = PipelineDefinitionRecord(
            id: try row.id("id"),
            version: try row.int("version"),
            name: try row.string("name"),
            description: row["description"],
            icon: row["icon"],
            dag: try row.json("dag_definition"),
            status: try row.value("status", as: PipelineDefinitionRecord.Status.self),
            userID: row["user_id"],
            systemOwned: try row.bool("system_owned"),
            stepCount: try row.int("step_count"),
            createdBy: try row.string("created_by"),
            createdAt: try row.date("created_at"),
            updatedAt: try row.date("updated_at")
        )
    }
}

extension ExecutionRecord {
    static let columns =
        "id, version, pipeline_id, pipeline_definition, initiator, start_time, end_time, status, progress_percentage, final_outputs, "
        + "error_info, subscriber_ids, payload_type, notification_workflow_id, event_sequence, created_at, updated_at, interruptions, "
        + "user_id"

    init(row: Row) throws {
        self = ExecutionRecord(
            id: try row.id("id"),
            version: try row.int("version"),
            pipelineID: row.optionalID("pipeline_id"),
            definitionSnapshot: try row.json("pipeline_definition").objectValue ?? [:],
            initiator: try row.string("initiator"),
            status: try row.value("status", as: ExecutionStatus.self),
            startTime: try row.optionalDate("start_time"),
            endTime: try row.optionalDate("end_time"),
            progress: try row.double("progress_percentage"),
            finalOutputs: try row.optionalJSON("final_outputs")?.objectValue,
            errorInfo: try row.optionalJSON("error_info")?.objectValue,
            subscriberIDs: row["subscriber_ids"],
            payloadType: row["payload_type"],
            notificationWorkflowID: row["notification_workflow_id"],
            eventSequence: try row.int("event_sequence"),
            createdAt: try row.date("created_at"),
            updatedAt: try row.date("updated_at"),
            interruptions: try row.int("interruptions"),
            userID: row["user_id"]
        )
    }
}

extension StepRecord {
    static let columns =
        "id, execution_id, version, step_id, step_name, status, start_time, end_time, progress_percentage, eta_seconds, outputs, "
        + "error_message, retry_count, sequence_number, external_workflow_id, handler_type, timeout_at, failure_tolerated, dispatch, "
        + "lease_owner, lease_expires_at, created_at, updated_at, interruptions"

    init(row: Row) throws {
        var state = StepState(
            stepID: try row.string("step_id"),
            name: try row.string("step_name"),
            action: row["handler_type"] ?? "",
            sequence: try row.int("sequence_number")
        )
        state.status = try row.value("status", as: StepStatus.self)
        state.attempt = try row.int("retry_count")
        state.startedAt = try row.optionalDate("start_time")
        state.endedAt = try row.optionalDate("end_time")
        state.outputs = try row.optionalJSON("outputs")?.objectValue
        state.error = row["error_message"]
        state.progress = try row.double("progress_percentage")
        state.etaSeconds = try row.optionalInt("eta_seconds")
        state.externalWorkflowID = row["external_workflow_id"]
        state.deadline = try row.optionalDate("timeout_at")
        state.failureTolerated = try row.bool("failure_tolerated")
        self = StepRecord(
            id: try row.string("id"),
            executionID: try row.id("execution_id"),
            version: try row.int("version"),
            state: state,
            dispatch: try row.optionalJSON("dispatch"),
            leaseOwner: row["lease_owner"],
            leaseExpiresAt: try row.optionalDate("lease_expires_at"),
            createdAt: try row.date("created_at"),
            updatedAt: try row.date("updated_at"),
            interruptions: try row.int("interruptions")
        )
    }
}

extension ProgressEventRecord {
    static let columns =
        "id, execution_id, event_type, progress_percentage, eta_seconds, current_step_desc, event_details, timestamp, sequence_number, created_at"

    init(row: Row) throws {
        self = ProgressEventRecord(
            id: try row.string("id"),
            executionID: try row.id("execution_id"),
            kind: try row.value("event_type", as: ProgressEventRecord.Kind.self),
            progress: try row.double("progress_percentage"),
            etaSeconds: try row.optionalInt("eta_seconds"),
            currentStepDescription: row["current_step_desc"],
            details: try row.optionalJSON("event_details")?.objectValue,
            timestamp: try row.date("timestamp"),
            sequenceNumber: try row.int("sequence_number"),
            createdAt: try row.date("created_at")
        )
    }
}

extension OutboxRecord {
    init(row: Row) throws {
        self = OutboxRecord(
            id: try row.int("id"),
            executionID: row.optionalID("execution_id"),
            event: OutboxEvent(eventType: try row.string("event_type"), payload: try row.json("payload")),
            attempts: try row.int("attempts"),
            createdAt: try row.date("created_at")
        )
    }
}
