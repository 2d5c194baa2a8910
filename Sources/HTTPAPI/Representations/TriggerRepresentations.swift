import BudJSON
import Foundation
import PipelineEngine
import Storage

extension Representation {
    /// A schedule as the schedule routes answer it (`Schedule` in `/openapi.json`); params masked.
    static func schedule(_ record: ScheduleRecord, masking secrets: SecretKeys) -> JSONValue {
        [
            "id": .string(record.id),
            "workflow_id": .string(record.pipelineID.rawValue),
            "name": .string(record.name),
            "schedule": [
                "type": .string(record.kind.rawValue), "expression": optional(record.expression),
                "timezone": .string(record.timezone), "run_at": timestamp(record.runAt),
            ],
            "params": .object(secrets.masked(record.params)),
            "enabled": .bool(record.enabled),
            "description": optional(record.description),
            "created_at": timestamp(record.createdAt),
            "updated_at": timestamp(record.updatedAt),
            "next_run_at": timestamp(record.nextRunAt),
            "last_run_at": timestamp(record.lastRunAt),
            "last_execution_id": optional(record.lastExecutionID),
            "last_execution_status": optional(record.lastExecutionStatus),
            "run_count": .int(record.runCount),
            "max_runs": record.maxRuns.map(JSONValue.int) ?? .null,
            "expires_at": timestamp(record.expiresAt),
            "status": .string(record.status.rawValue),
            "version": .int(record.version),
        ]
    }

    /// A webhook as the webhook routes answer it (`Webhook` in `/openapi.json`); params masked.
    /// `secret` is the plain secret, only right after it was made (shown once, by design: it is not
    /// masked).
    static func webhook(_ record: WebhookRecord, baseURL: String, masking secrets: SecretKeys, secret: String? = nil) -> JSONValue {
        [
            "id": .string(record.id),
            "workflow_id": .string(record.pipelineID.rawValue),
            "name": .string(record.name),
            "endpoint_url": .string("\(baseURL)/trigger/\(record.id)"),
            "config": [
                "require_secret": .bool(WebhookRoutes.mode(of: record) != .none),
                "auth_mode": .string(WebhookRoutes.mode(of: record).rawValue),
                "signature_tolerance_seconds": .int(record.signatureTolerance),
                "allowed_ips": record.allowedIPs.map { .array($0.map(JSONValue.string)) } ?? .null,
                "headers_to_include": .array(record.headersToInclude.map(JSONValue.string)),
            ],
            "params": .object(secrets.masked(record.params)),
            "enabled": .bool(record.enabled),
            "created_at": timestamp(record.createdAt),
            "updated_at": timestamp(record.updatedAt),
            "last_triggered_at": timestamp(record.lastTriggeredAt),
            "trigger_count": .int(record.triggerCount),
            "secret": optional(secret),
            "version": .int(record.version),
        ]
    }

    /// An event trigger as its routes answer it (`EventTrigger` in `/openapi.json`); params masked.
    static func eventTrigger(_ record: EventTriggerRecord, masking secrets: SecretKeys) -> JSONValue {
        [
            "id": .string(record.id),
            "workflow_id": .string(record.pipelineID.rawValue),
            "name": .string(record.name),
            "config": ["event_type": .string(record.eventType), "filters": .object(record.filters)],
            "params": .object(secrets.masked(record.params)),
            "enabled": .bool(record.enabled),
            "created_at": timestamp(record.createdAt),
            "updated_at": timestamp(record.updatedAt),
            "last_triggered_at": timestamp(record.lastTriggeredAt),
            "trigger_count": .int(record.triggerCount),
            "version": .int(record.version),
        ]
    }

    /// What the trigger routes answer once a run started.
    static func triggeredRun(_ record: ExecutionRecord) -> JSONValue {
        [
            "execution_id": .string(record.id.rawValue),
            "workflow_id": .string(record.pipelineID?.rawValue ?? "ephemeral"),
            "status": startStatus(record),
        ]
    }
}
