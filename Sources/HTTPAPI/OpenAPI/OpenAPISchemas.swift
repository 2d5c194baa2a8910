import BudJSON

/// JSON Schema (2020-12, as OpenAPI 3.1 uses it) building blocks and the API's component schemas.
enum Schema {
    static let string: JSONValue = ["type": "string"]
    static let integer: JSONValue = ["type": "integer"]
    static let boolean: JSONValue = ["type": "boolean"]
    static let anyObject: JSONValue = ["type": "object"]
    static let uuid: JSONValue = ["type": "string", "format": "uuid"]
    static let dateTime: JSONValue = ["type": "string", "format": "date-time"]
    /// A percentage as a decimal string with two places, `"45.00"`: the form clients parse.
    static let percentage: JSONValue = ["type": "string", "pattern": "^[0-9]{1,3}\\.[0-9]{2}$"]
    static let anyValue: JSONValue = [:]

    static func nullable(_ schema: JSONValue) -> JSONValue {
        guard case .object(var object) = schema, let type = object["type"]?.stringValue else {
            return ["anyOf": [schema, ["type": "null"]]]
        }
        object["type"] = [.string(type), "null"]
        return .object(object)
    }

    static func array(_ items: JSONValue) -> JSONValue { ["type": "array", "items": items] }

    static func choice(_ values: [String]) -> JSONValue { ["type": "string", "enum": .array(values.map(JSONValue.string))] }

    static func ref(_ name: String) -> JSONValue { ["$ref": .string("#/components/schemas/\(name)")] }

    /// An object whose listed properties are all required.
    static func object(_ properties: JSONObject, optional: [String] = []) -> JSONValue {
        [
            "type": "object", "properties": .object(properties),
            "required": .array(properties.keys.filter { !optional.contains($0) }.map(JSONValue.string)),
        ]
    }

    static func integer(in range: ClosedRange<Int>) -> JSONValue {
        ["type": "integer", "minimum": .int(range.lowerBound), "maximum": .int(range.upperBound)]
    }

    static func string(maxLength: Int, minLength: Int = 0) -> JSONValue {
        ["type": "string", "minLength": .int(minLength), "maxLength": .int(maxLength)]
    }

    /// The headers of a 429 answer.
    static let rateLimitHeaders: JSONValue = .object(
        JSONObject(
            ["Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"].map {
                ($0, ["required": true, "schema": ["type": "integer", "minimum": 0]])
            }))

    // MARK: Components

    static let executionStatuses = ["PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"]
    static let stepStatuses = [
        "PENDING", "RUNNING", "AWAITING_EVENT", "RETRYING", "COMPLETED", "FAILED", "SKIPPED", "TIMEOUT", "CANCELLED",
    ]

    static let components: JSONObject = [
        "Error": object(["detail": anyValue, "code": string, "message": string]),
        "RateLimited": object([
            "detail": string, "code": string, "message": string, "error": string, "retry_after_seconds": integer(in: 1...60),
        ]),
        "ValidationReport": object([
            "valid": boolean, "errors": array(string), "warnings": array(string), "step_count": integer, "has_cycles": boolean,
        ]),
        "Pipeline": object([
            "id": uuid, "name": string, "version": string, "status": choice(["active", "draft", "archived"]), "created_at": dateTime,
            "updated_at": dateTime, "step_count": integer, "user_id": nullable(string), "system_owned": boolean,
            "description": nullable(string), "icon": nullable(string), "created_by": string, "dag": anyObject,
            "execution_count": integer, "last_execution_at": nullable(dateTime),
        ]),
        "StartedExecution": object([
            "id": uuid, "execution_id": uuid, "workflow_id": string, "workflow_name": string, "status": string,
            "started_at": nullable(dateTime),
            "completed_at": nullable(dateTime), "params": anyObject, "outputs": anyObject, "error": anyValue,
            "retry_of": nullable(uuid),
        ]),
        "Execution": object([
            "id": uuid, "version": integer, "pipeline_definition": anyObject, "initiator": string, "start_time": nullable(dateTime),
            "end_time": nullable(dateTime), "status": choice(executionStatuses), "progress_percentage": percentage,
            "final_outputs": nullable(anyObject), "error_info": nullable(anyObject), "created_at": dateTime, "updated_at": dateTime,
            "retry_of": nullable(uuid),
        ]),
        "ExecutionPage": object([
            "executions": array(ref("Execution")),
            "pagination": object(["page": integer, "page_size": integer, "total_count": integer, "total_pages": integer]),
        ]),
        "Step": object([
            "id": uuid, "execution_id": uuid, "version": integer, "step_id": string, "step_name": string,
            "status": choice(stepStatuses), "start_time": nullable(dateTime), "end_time": nullable(dateTime),
            "progress_percentage": percentage, "eta_seconds": nullable(integer), "outputs": anyObject,
            "error_message": nullable(string), "retry_count": integer, "sequence_number": integer, "awaiting_event": boolean,
            "external_workflow_id": nullable(string), "handler_type": string, "timeout_at": nullable(dateTime),
            "created_at": dateTime, "updated_at": dateTime,
        ]),
        "ProgressEvent": object([
            "id": uuid, "execution_id": uuid,
            "event_type": choice(["workflow_progress", "step_completed", "eta_update", "workflow_completed"]),
            "progress_percentage": percentage, "eta_seconds": nullable(integer), "current_step_desc": nullable(string),
            "event_details": nullable(anyObject), "timestamp": dateTime, "sequence_number": integer, "created_at": dateTime,
        ]),
        "Progress": object([
            "execution": ref("Execution"), "steps": array(ref("Step")), "recent_events": array(ref("ProgressEvent")),
            "aggregated_progress": object([
                "overall_progress": percentage, "eta_seconds": nullable(integer), "completed_steps": integer, "total_steps": integer,
                "current_step": nullable(string),
            ]),
        ]),
        "StepList": object(["steps": array(ref("Step"))]),
        "EventPage": object(["events": array(ref("ProgressEvent")), "total_count": integer, "limit": integer, "offset": integer]),
        "Action": object([
            "type": string, "version": string, "name": string, "description": string, "category": string, "icon": string,
            "color": string, "params": array(anyObject), "outputs": array(anyObject),
            "executionMode": choice(["sync", "event_driven"]), "timeoutSeconds": nullable(integer),
            "retryPolicy": nullable(anyObject), "idempotent": boolean, "requiredServices": array(string),
            "requiredPermissions": array(string), "examples": array(anyObject), "docsUrl": nullable(string),
        ]),
        "ActionCatalog": object([
            "actions": array(ref("Action")),
            "categories": array(object(["name": string, "icon": string, "actions": array(ref("Action"))])), "total": integer,
        ]),
        "ParamsValidation": object(["valid": boolean, "errors": array(string)]),
        "Schedule": object([
            "id": uuid, "workflow_id": uuid, "name": string,
            "schedule": object([
                "type": choice(["cron", "interval", "one_time", "manual"]), "expression": nullable(string), "timezone": string,
                "run_at": nullable(dateTime),
            ]),
            "params": anyObject, "enabled": boolean, "description": nullable(string), "created_at": dateTime, "updated_at": dateTime,
            "next_run_at": nullable(dateTime), "last_run_at": nullable(dateTime), "last_execution_id": nullable(uuid),
            "last_execution_status": nullable(string), "run_count": integer, "max_runs": nullable(integer),
            "expires_at": nullable(dateTime), "status": choice(["active", "paused", "expired", "completed"]), "version": integer,
        ]),
        "ScheduleList": object(["schedules": array(ref("Schedule")), "total": integer]),
        "NextRuns": object(["schedule_id": uuid, "next_runs": array(dateTime)]),
        "Webhook": object([
            "id": uuid, "workflow_id": uuid, "name": string, "endpoint_url": string,
            "config": object([
                "require_secret": boolean, "auth_mode": choice(["secret", "signature", "none"]), "signature_tolerance_seconds": integer,
                "allowed_ips": nullable(array(string)), "headers_to_include": array(string),
            ]),
            "params": anyObject, "enabled": boolean, "created_at": dateTime, "updated_at": dateTime,
            "last_triggered_at": nullable(dateTime), "trigger_count": integer, "secret": nullable(string), "version": integer,
        ]),
        "EventTrigger": object([
            "id": uuid, "workflow_id": uuid, "name": string, "config": object(["event_type": string, "filters": anyObject]),
            "params": anyObject, "enabled": boolean, "created_at": dateTime, "updated_at": dateTime,
            "last_triggered_at": nullable(dateTime), "trigger_count": integer, "version": integer,
        ]),
        "EventType": object(["type": string, "source": string, "description": string]),
        "EventTypeList": array(ref("EventType")),
        "PipelineList": array(ref("Pipeline")),
        "WebhookList": array(ref("Webhook")),
        "EventTriggerList": array(ref("EventTrigger")),
        "OpenAPI": object(["openapi": string, "info": anyObject, "paths": anyObject]),
        "TriggeredRun": object(["execution_id": uuid, "workflow_id": string, "status": string]),
        "Health": object([
            "status": choice(["healthy", "degraded"]), "service": string, "version": string, "database": string,
            "storage": object(["writable": boolean, "reason": string, "since": dateTime], optional: ["reason", "since"]),
            "fallback_mode": boolean,
            "plugins": object([
                "loaded": integer, "unhealthy": array(string), "abi": string,
                "processes": array(
                    object(
                        [
                            "plugin": string, "pid": nullable(integer), "restarts": integer, "crashes": integer,
                            "last_exit": nullable(string), "quarantined": nullable(string),
                        ])),
            ]),
        ]),
        "EventDelivery": object(
            [
                "status": choice(["SUCCESS", "RETRY", "DROP"]), "routed": boolean, "step_completed": boolean,
                "triggers": nullable(array(anyObject)), "duplicate": boolean, "message": string,
            ], optional: ["triggers", "duplicate", "message"]),
        "Subscriptions": array(object(["pubsubname": string, "topic": string, "route": string, "deadLetterTopic": string])),
        "PluginReload": object([
            "unchanged": array(string), "added": array(string),
            "replaced": array(object(["name": string, "from": string, "to": string])), "kept": array(string),
            "removed": array(string), "refused": array(object(["file": string, "reason": string])), "notes": array(string),
        ]),
        "PluginInventory": object(
            [
                "host_abi": string,
                "plugins": array(
                    object(
                        [
                            "name": string, "version": string, "abi": string, "thread_safe": boolean, "actions": array(string),
                            "isolation": string, "healthy": boolean, "unhealthy_reason": string, "stuck_calls": integer,
                            "file": string, "process": anyObject,
                        ], optional: ["unhealthy_reason", "stuck_calls", "process"])),
                "refused": array(object(["file": string, "reason": string])), "notes": array(string), "directories": array(string),
            ], optional: ["directories"]),
        "Readiness": object([
            "status": choice(["ready", "not_ready"]), "database_connected": boolean, "database_writable": boolean,
            "plugins_healthy": boolean, "fallback_active": boolean,
        ]),
    ]

    // MARK: Request bodies

    static let pipelineCreate = object(
        [
            "dag": anyObject, "name": nullable(string(maxLength: 255)), "icon": nullable(string(maxLength: 255)),
            "user_id": nullable(string), "system_owned": nullable(boolean),
        ], optional: ["name", "icon", "user_id", "system_owned"])
    static let pipelineUpdate = object(
        ["dag": anyObject, "name": nullable(string(maxLength: 255)), "icon": nullable(string(maxLength: 255)), "version": anyValue],
        optional: ["name", "icon", "version"])
    static let executionOptions: JSONObject = [
        "params": nullable(anyObject), "callback_topics": nullable(array(string(maxLength: 255, minLength: 1))),
        "user_id": nullable(string(maxLength: 255)), "initiator": nullable(string(maxLength: 255)),
        "subscriber_ids": nullable(string(maxLength: 500)), "payload_type": nullable(string(maxLength: 100)),
        "notification_workflow_id": nullable(string(maxLength: 255)),
    ]
    static let executionStart = object(executionOptions.merging(["workflow_id": string]), optional: Array(executionOptions.keys))
    static let ephemeralRun = object(executionOptions.merging(["pipeline_definition": anyObject]), optional: Array(executionOptions.keys))
    static let scheduleTiming = object(
        [
            "type": choice(["cron", "interval", "one_time", "manual"]), "expression": nullable(string(maxLength: 255)),
            "timezone": nullable(string(maxLength: 64)), "run_at": nullable(dateTime),
        ], optional: ["expression", "timezone", "run_at"])
    static let scheduleFields: JSONObject = [
        "name": string(maxLength: 255, minLength: 1), "schedule": scheduleTiming, "params": nullable(anyObject),
        "enabled": nullable(boolean), "description": nullable(string(maxLength: 1000)),
        "max_runs": nullable(integer(in: 1...2_147_483_647)),
        "expires_at": nullable(dateTime),
    ]
    static let scheduleCreate = object(
        scheduleFields.merging(["workflow_id": string]), optional: ["params", "enabled", "description", "max_runs", "expires_at"])
    static let scheduleUpdate = object(scheduleFields.merging(["version": anyValue]), optional: Array(scheduleFields.keys) + ["version"])
    static let webhookConfig = object(
        [
            "require_secret": nullable(boolean), "auth_mode": nullable(choice(["secret", "signature", "none"])),
            "signature_tolerance_seconds": nullable(integer(in: 1...3600)), "allowed_ips": nullable(array(string)),
            "headers_to_include": nullable(array(string)),
        ],
        optional: ["require_secret", "auth_mode", "signature_tolerance_seconds", "allowed_ips", "headers_to_include"])
    static let webhookCreate = object(
        [
            "workflow_id": string, "name": string(maxLength: 255, minLength: 1), "config": nullable(webhookConfig),
            "params": nullable(anyObject), "enabled": nullable(boolean),
        ], optional: ["config", "params", "enabled"])
    static let webhookUpdate = object(
        [
            "name": string(maxLength: 255, minLength: 1), "config": nullable(webhookConfig), "params": nullable(anyObject),
            "enabled": nullable(boolean), "version": anyValue,
        ], optional: ["name", "config", "params", "enabled", "version"])
    static let eventTriggerConfig = object(
        ["event_type": string(maxLength: 255), "filters": nullable(anyObject)], optional: ["filters"])
    static let eventTriggerCreate = object(
        [
            "workflow_id": string, "name": string(maxLength: 255, minLength: 1), "config": eventTriggerConfig,
            "params": nullable(anyObject), "enabled": nullable(boolean),
        ], optional: ["params", "enabled"])
    static let eventTriggerUpdate = object(
        [
            "name": string(maxLength: 255, minLength: 1), "config": eventTriggerConfig, "params": nullable(anyObject),
            "enabled": nullable(boolean), "version": anyValue,
        ], optional: ["name", "config", "params", "enabled", "version"])
}
