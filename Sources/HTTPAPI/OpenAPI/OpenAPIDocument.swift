public import BudJSON

/// The OpenAPI 3.1 document of the HTTP API, served at `/openapi.json` and printed by
/// `budpipeline openapi`. Every route the server answers is in it, aliases included (they share
/// the operation of their canonical path); a test compares it with the router.
public enum OpenAPIDocument {
    public static func document(version: String) -> JSONValue {
        var paths = JSONObject()
        for operation in operations {
            for (index, path) in operation.paths.enumerated() {
                var item = paths[path]?.objectValue ?? [:]
                item[operation.method] = operation.json(aliasIndex: index)
                paths[path] = .object(item)
            }
        }
        return [
            "openapi": "3.1.0",
            "info": [
                "title": "BudPipeline", "version": .string(version),
                "description":
                    "Pipeline orchestration: DAG definitions, executions, schedules, webhooks, event triggers and the actions of the loaded plugins. See docs/api.md.",
            ],
            "paths": .object(paths),
            "components": [
                "schemas": .object(Schema.components),
                "securitySchemes": [
                    "daprAppToken": ["type": "apiKey", "in": "header", "name": "dapr-api-token"],
                    "bearerToken": ["type": "http", "scheme": "bearer"],
                ],
            ],
            // The app API token is required when the server is configured with one (docs/security.md).
            "security": [["daprAppToken": []], ["bearerToken": []], [:]],
        ]
    }

    /// One operation and every path it is served under (the canonical one first).
    struct Operation {
        var method: String
        var paths: [String]
        var id: String
        var summary: String
        var tag: String
        var parameters: [JSONValue] = []
        var body: JSONValue?
        var bodyRequired = true
        var responses: [(status: Int, schema: String?)]
        /// The success answer is a `text/event-stream`, not JSON.
        var eventStream = false
        /// The success answer's media types when it is text or a picture rather than JSON.
        var textMedia: [String] = []

        /// Whether `X-User-ID` scopes it (every route but the service's, Dapr's and the webhook
        /// trigger, which the webhook's secret authenticates).
        var isUserScoped: Bool { tag != "service" && tag != "events" && tag != "console" && id != "triggerWebhook" }

        func json(aliasIndex: Int) -> JSONValue {
            var operation: JSONObject = [
                "operationId": .string(aliasIndex == 0 ? id : "\(id)_alias\(aliasIndex)"), "summary": .string(summary),
                "tags": [.string(tag)],
            ]
            let pathParameters = paths[aliasIndex].split(separator: "/").filter { $0.hasPrefix("{") }.map {
                OpenAPIDocument.parameter(String($0.dropFirst().dropLast()), in: "path", Schema.string, required: true)
            }
            var parameters = parameters
            if isUserScoped, !parameters.contains(OpenAPIDocument.userHeader) { parameters.append(OpenAPIDocument.userHeader) }
            if !(pathParameters + parameters).isEmpty { operation["parameters"] = .array(pathParameters + parameters) }
            if let body {
                operation["requestBody"] = [
                    "required": .bool(bodyRequired), "content": ["application/json": ["schema": body]],
                ]
            }
            var answers = JSONObject()
            let rateLimited: [(status: Int, schema: String?)] =
                RateLimitedRoute(method: method.uppercased(), path: Substring(paths[aliasIndex])) == nil ? [] : [(429, "RateLimited")]
            let common = OpenAPIDocument.commonErrors(bodyRequired: body != nil, userScoped: isUserScoped)
            for (status, schema) in responses + rateLimited + common where answers[String(status)] == nil {
                var response: JSONObject = ["description": .string(OpenAPIDocument.reason(status))]
                if status == 429 { response["headers"] = Schema.rateLimitHeaders }
                if eventStream, status == 200 {
                    response["content"] = ["text/event-stream": ["schema": Schema.string]]
                } else if !textMedia.isEmpty, status == 200 || status == 304 {
                    if status == 200 { response["content"] = .object(JSONObject(textMedia.map { ($0, ["schema": Schema.string]) })) }
                } else if let schema {
                    response["content"] = ["application/json": ["schema": Schema.ref(schema)]]
                }
                answers[String(status)] = .object(response)
            }
            operation["responses"] = .object(answers)
            return .object(operation)
        }
    }

    static func parameter(_ name: String, in place: String, _ schema: JSONValue, required: Bool = false) -> JSONValue {
        ["name": .string(name), "in": .string(place), "required": .bool(required), "schema": schema]
    }

    static func commonErrors(bodyRequired: Bool, userScoped: Bool) -> [(status: Int, schema: String?)] {
        var errors: [(status: Int, schema: String?)] = [(405, "Error"), (422, "Error"), (500, "Error"), (503, "Error")]
        // A malformed X-User-ID, a missing or wrong app API token, an act only the service may do.
        if userScoped { errors += [(400, "Error"), (401, "Error"), (403, "Error")] }
        if bodyRequired { errors.append((413, "Error")) }
        return errors
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 201: "Created"
        case 204: "No content"
        case 304: "Not modified (the If-None-Match tag is current)"
        case 400: "Invalid input (validation failed)"
        case 401: "Missing or wrong app API token (or webhook secret or signature)"
        case 405: "Method not allowed (the Allow header lists the path's methods)"
        case 403: "Forbidden"
        case 404: "Not found"
        case 409: "Conflict (concurrent change, duplicate name, finished execution)"
        case 413: "Request body too large"
        case 422: "Request does not fit the schema"
        case 429: "Rate limit exceeded (see Retry-After)"
        case 500: "Internal error"
        case 503:
            "Database unavailable or unable to store changes (full or read-only disk), shutting down, or (graphs) Graphviz unavailable"
        default: "Status \(status)"
        }
    }

    // MARK: Operations

    static let userHeader = parameter("X-User-ID", in: "header", Schema.string)
    private static let pipelineRoots = ["", "/api/v1/pipeline"]
    private static let executionRoots = ["", "/api/v1", "/budpipeline"]
    private static let triggerRoots = ["", "/api/v1", "/budpipeline"]

    private static func under(_ roots: [String], _ path: String) -> [String] { roots.map { $0 + path } }

    private static func pipelinePaths(_ suffix: String, proxy: String?) -> [String] {
        pipelineRoots.flatMap { root in ["pipelines", "workflows"].map { "\(root)/\($0)\(suffix)" } } + (proxy.map { [$0] } ?? [])
    }

    static let operations: [Operation] =
        pipelineOperations + executionOperations + actionOperations + scheduleOperations + webhookOperations + eventTriggerOperations
        + serviceOperations + eventOperations

    private static let pipelineOperations: [Operation] = [
        Operation(
            method: "post", paths: under(pipelineRoots, "/validate") + ["/budpipeline/validate"], id: "validatePipeline",
            summary: "Validate a DAG without storing it", tag: "pipelines", body: Schema.object(["dag": Schema.anyObject]),
            responses: [(200, "ValidationReport")]),
        Operation(
            method: "post", paths: pipelinePaths("", proxy: "/budpipeline"), id: "createPipeline", summary: "Store a pipeline",
            tag: "pipelines", parameters: [userHeader], body: Schema.pipelineCreate,
            responses: [(201, "Pipeline"), (400, "Error"), (409, "Error")]),
        Operation(
            method: "get", paths: pipelinePaths("", proxy: "/budpipeline"), id: "listPipelines",
            summary: "The caller's pipelines (all without X-User-ID), newest first", tag: "pipelines",
            parameters: [userHeader, parameter("include_system", in: "query", Schema.boolean)],
            responses: [(200, "PipelineList")]),
        Operation(
            method: "get", paths: pipelinePaths("/{id}", proxy: "/budpipeline/{id}"), id: "getPipeline", summary: "One pipeline",
            tag: "pipelines", parameters: [userHeader], responses: [(200, "Pipeline"), (404, "Error")]),
        Operation(
            method: "put", paths: pipelinePaths("/{id}", proxy: "/budpipeline/{id}"), id: "updatePipeline",
            summary: "Replace a pipeline's DAG (optionally at an expected version)", tag: "pipelines", parameters: [userHeader],
            body: Schema.pipelineUpdate, responses: [(200, "Pipeline"), (400, "Error"), (404, "Error"), (409, "Error")]),
        Operation(
            method: "delete", paths: pipelinePaths("/{id}", proxy: "/budpipeline/{id}"), id: "deletePipeline",
            summary: "Delete a pipeline (its executions stay)", tag: "pipelines", parameters: [userHeader],
            responses: [(204, nil), (404, "Error")]),
        Operation(
            method: "get", paths: ["/pipelines/{id}/graph"], id: "pipelineGraph",
            summary: "The pipeline's DAG as a picture (SVG laid out by Graphviz, DOT or Mermaid)", tag: "pipelines",
            parameters: [userHeader, parameter("format", in: "query", Schema.choice(["svg", "dot", "mermaid"]))],
            responses: [(200, nil), (400, "Error"), (404, "Error"), (503, "Error")], textMedia: graphMedia),
    ]

    private static let executionOperations: [Operation] = [
        Operation(
            method: "post", paths: under(executionRoots, "/executions"), id: "startExecution",
            summary: "Start a saved pipeline; answers at once", tag: "executions", body: Schema.executionStart,
            responses: [(201, "StartedExecution"), (400, "Error"), (404, "Error")]),
        Operation(
            method: "post", paths: ["/budpipeline/{id}/execute"], id: "startExecutionByPath", summary: "Start a saved pipeline by path",
            tag: "executions", body: Schema.object(Schema.executionOptions, optional: Schema.executionOptions.keys), bodyRequired: false,
            responses: [(201, "StartedExecution"), (400, "Error"), (404, "Error")]),
        Operation(
            method: "post", paths: under(executionRoots, "/executions/run") + ["/budpipeline/run"], id: "runEphemeral",
            summary: "Run a DAG that is not stored; answers at once", tag: "executions", body: Schema.ephemeralRun,
            responses: [(201, "StartedExecution"), (400, "Error")]),
        Operation(
            method: "get", paths: under(executionRoots, "/executions"), id: "listExecutions", summary: "Executions, newest first, in pages",
            tag: "executions",
            parameters: [
                parameter("page", in: "query", Schema.integer(in: 1...1_000_000)),
                parameter("page_size", in: "query", Schema.integer(in: 1...100)),
                parameter("workflow_id", in: "query", Schema.uuid),
                // Any case; INTERRUPTED is accepted for clients that still send it and matches nothing.
                parameter("status", in: "query", Schema.choice(Schema.executionStatuses + ["INTERRUPTED"])),
                parameter("initiator", in: "query", Schema.string), parameter("start_date", in: "query", Schema.dateTime),
                parameter("end_date", in: "query", Schema.dateTime),
            ], responses: [(200, "ExecutionPage")]),
        Operation(
            method: "get", paths: under(executionRoots, "/executions/{id}"), id: "getExecution", summary: "One execution",
            tag: "executions", responses: [(200, "Execution"), (404, "Error")]),
        Operation(
            method: "get", paths: under(executionRoots, "/executions/{id}/progress"), id: "getExecutionProgress",
            summary: "An execution with its steps, recent events and aggregated progress", tag: "executions",
            parameters: [
                parameter("detail", in: "query", Schema.choice(["full", "steps", "summary"])),
                parameter("include_events", in: "query", Schema.boolean),
                parameter("events_limit", in: "query", Schema.integer(in: 1...100)),
            ], responses: [(200, "Progress"), (404, "Error")]),
        Operation(
            method: "get", paths: under(executionRoots, "/executions/{id}/steps"), id: "listExecutionSteps",
            summary: "An execution's steps in definition order", tag: "executions", responses: [(200, "StepList"), (404, "Error")]),
        Operation(
            method: "get", paths: under(executionRoots, "/executions/{id}/events"), id: "listExecutionEvents",
            summary: "An execution's progress events, newest first", tag: "executions",
            parameters: [
                parameter(
                    "event_type", in: "query", Schema.choice(["workflow_progress", "step_completed", "eta_update", "workflow_completed"])),
                parameter("start_time", in: "query", Schema.dateTime), parameter("end_time", in: "query", Schema.dateTime),
                parameter("limit", in: "query", Schema.integer(in: 1...1000)),
                parameter("offset", in: "query", Schema.integer(in: 0...2_147_483_647)),
            ], responses: [(200, "EventPage"), (404, "Error")]),
        Operation(
            method: "post", paths: under(executionRoots, "/executions/{id}/cancel"), id: "cancelExecution",
            summary: "Cancel a running execution", tag: "executions", responses: [(200, "Execution"), (404, "Error"), (409, "Error")]),
        Operation(
            method: "post", paths: under(executionRoots, "/executions/{id}/retry"), id: "retryExecution",
            summary: "Retry a failed or cancelled execution from where it stopped: a new execution, once (then 200 with it)",
            tag: "executions",
            body: Schema.object(["initiator": Schema.nullable(Schema.string(maxLength: 255))], optional: ["initiator"]),
            bodyRequired: false, responses: [(201, "StartedExecution"), (200, "StartedExecution"), (404, "Error"), (409, "Error")]),
        Operation(
            method: "get", paths: under(executionRoots, "/executions/{id}/stream"), id: "streamExecution",
            summary: "Server-sent events: a snapshot, then the execution's events live until it ends", tag: "executions",
            responses: [(200, nil), (404, "Error")], eventStream: true),
        Operation(
            method: "get", paths: under(executionRoots, "/executions/{id}/graph"), id: "executionGraph",
            summary: "The execution's DAG as a picture, each step with its status, duration and wait (SVG by Graphviz, DOT or Mermaid)",
            tag: "executions", parameters: [parameter("format", in: "query", Schema.choice(["svg", "dot", "mermaid"]))],
            responses: [(200, nil), (404, "Error"), (503, "Error")], textMedia: graphMedia),
    ]

    private static let graphMedia = ["image/svg+xml", "text/vnd.graphviz", "text/plain"]

    private static let actionRoots = ["/actions", "/api/v1/actions", "/budpipeline/actions"]

    private static let actionOperations: [Operation] = [
        Operation(
            method: "get", paths: actionRoots, id: "listActions", summary: "Every action, by category", tag: "actions",
            responses: [(200, "ActionCatalog")]),
        Operation(
            method: "get", paths: actionRoots.map { $0 + "/{type}" }, id: "getAction", summary: "One action's metadata",
            tag: "actions", responses: [(200, "Action"), (404, "Error")]),
        Operation(
            method: "post", paths: actionRoots.map { $0 + "/validate" }, id: "validateActionParams",
            summary: "Check parameters for an action", tag: "actions",
            body: Schema.object(
                ["action_type": Schema.string, "actionType": Schema.string, "params": Schema.nullable(Schema.anyObject)],
                optional: ["action_type", "actionType", "params"]),
            responses: [(200, "ParamsValidation"), (404, "Error")]),
    ]

    private static let scheduleOperations: [Operation] = [
        Operation(
            method: "post", paths: under(triggerRoots, "/schedules"), id: "createSchedule", summary: "Create a schedule",
            tag: "schedules", body: Schema.scheduleCreate, responses: [(201, "Schedule"), (400, "Error"), (404, "Error")]),
        Operation(
            method: "get", paths: under(triggerRoots, "/schedules"), id: "listSchedules", summary: "Schedules, newest first",
            tag: "schedules",
            parameters: [
                parameter("workflow_id", in: "query", Schema.uuid), parameter("enabled", in: "query", Schema.boolean),
                parameter("status", in: "query", Schema.choice(["active", "paused", "expired", "completed"])),
            ], responses: [(200, "ScheduleList")]),
        Operation(
            method: "get", paths: under(triggerRoots, "/schedules/{id}"), id: "getSchedule", summary: "One schedule", tag: "schedules",
            responses: [(200, "Schedule"), (404, "Error")]),
        Operation(
            method: "put", paths: under(triggerRoots, "/schedules/{id}"), id: "updateSchedule", summary: "Change a schedule",
            tag: "schedules", body: Schema.scheduleUpdate,
            responses: [(200, "Schedule"), (400, "Error"), (404, "Error"), (409, "Error")]),
        Operation(
            method: "delete", paths: under(triggerRoots, "/schedules/{id}"), id: "deleteSchedule", summary: "Delete a schedule",
            tag: "schedules", responses: [(204, nil), (404, "Error")]),
        Operation(
            method: "post", paths: under(triggerRoots, "/schedules/{id}/pause"), id: "pauseSchedule", summary: "Pause a schedule",
            tag: "schedules", responses: [(200, "Schedule"), (404, "Error"), (409, "Error")]),
        Operation(
            method: "post", paths: under(triggerRoots, "/schedules/{id}/resume"), id: "resumeSchedule",
            summary: "Resume a paused schedule", tag: "schedules",
            responses: [(200, "Schedule"), (400, "Error"), (404, "Error"), (409, "Error")]),
        Operation(
            method: "post", paths: under(triggerRoots, "/schedules/{id}/trigger"), id: "triggerSchedule",
            summary: "Run a schedule's pipeline now (the body overrides parameters)", tag: "schedules", body: Schema.anyObject,
            bodyRequired: false, responses: [(200, "TriggeredRun"), (400, "Error"), (404, "Error")]),
        Operation(
            method: "get", paths: under(triggerRoots, "/schedules/{id}/next-runs"), id: "scheduleNextRuns",
            summary: "A schedule's next run times", tag: "schedules",
            parameters: [parameter("count", in: "query", Schema.integer(in: 1...100))], responses: [(200, "NextRuns"), (404, "Error")]),
    ]

    private static let webhookOperations: [Operation] = [
        Operation(
            method: "post", paths: under(triggerRoots, "/webhooks"), id: "createWebhook",
            summary: "Create a webhook (the secret is shown once)", tag: "webhooks", body: Schema.webhookCreate,
            responses: [(201, "Webhook"), (404, "Error")]),
        Operation(
            method: "get", paths: under(triggerRoots, "/webhooks"), id: "listWebhooks", summary: "Webhooks, newest first (a bare array)",
            tag: "webhooks",
            parameters: [parameter("workflow_id", in: "query", Schema.uuid), parameter("enabled", in: "query", Schema.boolean)],
            responses: [(200, "WebhookList")]),
        Operation(
            method: "get", paths: under(triggerRoots, "/webhooks/{id}"), id: "getWebhook", summary: "One webhook", tag: "webhooks",
            responses: [(200, "Webhook"), (404, "Error")]),
        Operation(
            method: "put", paths: under(triggerRoots, "/webhooks/{id}"), id: "updateWebhook", summary: "Change a webhook",
            tag: "webhooks", body: Schema.webhookUpdate, responses: [(200, "Webhook"), (404, "Error"), (409, "Error")]),
        Operation(
            method: "delete", paths: under(triggerRoots, "/webhooks/{id}"), id: "deleteWebhook", summary: "Delete a webhook",
            tag: "webhooks", responses: [(204, nil), (404, "Error")]),
        Operation(
            method: "post", paths: under(triggerRoots, "/webhooks/{id}/rotate-secret"), id: "rotateWebhookSecret",
            summary: "Replace a webhook's secret (shown once)", tag: "webhooks",
            responses: [(200, "Webhook"), (404, "Error"), (409, "Error")]),
        Operation(
            method: "post", paths: under(triggerRoots, "/trigger/{id}"), id: "triggerWebhook",
            summary: "Start a webhook's pipeline (X-Webhook-Secret, or a signature: see docs/security.md)", tag: "webhooks",
            parameters: [
                parameter("X-Webhook-Secret", in: "header", Schema.string), parameter("X-Webhook-Signature", in: "header", Schema.string),
                parameter("X-Webhook-Timestamp", in: "header", Schema.string),
                parameter("X-Webhook-Delivery", in: "header", Schema.string),
            ],
            body: Schema.object(["params": Schema.nullable(Schema.anyObject)], optional: ["params"]), bodyRequired: false,
            responses: [(200, "TriggeredRun"), (400, "Error"), (401, "Error"), (403, "Error"), (404, "Error"), (409, "Error")]),
    ]

    private static let eventTriggerOperations: [Operation] = [
        Operation(
            method: "post", paths: under(triggerRoots, "/event-triggers"), id: "createEventTrigger",
            summary: "Create an event trigger (config nested, or event_type and filters at the top level)", tag: "event-triggers",
            body: Schema.eventTriggerCreate, responses: [(201, "EventTrigger"), (400, "Error"), (404, "Error")]),
        Operation(
            method: "get", paths: under(triggerRoots, "/event-triggers"), id: "listEventTriggers",
            summary: "Event triggers, newest first (a bare array)", tag: "event-triggers",
            parameters: [
                parameter("workflow_id", in: "query", Schema.uuid), parameter("enabled", in: "query", Schema.boolean),
                parameter("event_type", in: "query", Schema.string),
            ], responses: [(200, "EventTriggerList")]),
        Operation(
            method: "get", paths: under(triggerRoots, "/event-triggers/event-types"), id: "listEventTypes",
            summary: "The event types a trigger may wait for", tag: "event-triggers", responses: [(200, "EventTypeList")]),
        Operation(
            method: "get", paths: under(triggerRoots, "/event-triggers/{id}"), id: "getEventTrigger", summary: "One event trigger",
            tag: "event-triggers", responses: [(200, "EventTrigger"), (404, "Error")]),
        Operation(
            method: "put", paths: under(triggerRoots, "/event-triggers/{id}"), id: "updateEventTrigger",
            summary: "Change an event trigger", tag: "event-triggers", body: Schema.eventTriggerUpdate,
            responses: [(200, "EventTrigger"), (400, "Error"), (404, "Error"), (409, "Error")]),
        Operation(
            method: "delete", paths: under(triggerRoots, "/event-triggers/{id}"), id: "deleteEventTrigger",
            summary: "Delete an event trigger", tag: "event-triggers", responses: [(204, nil), (404, "Error")]),
    ]

    private static let serviceOperations: [Operation] = [
        Operation(
            method: "get", paths: ["/health"], id: "health", summary: "Liveness, with the database and plugin checks", tag: "service",
            responses: [(200, "Health")]),
        Operation(
            method: "get", paths: ["/ready"], id: "ready", summary: "Readiness: 503 until the database and every plugin are fine",
            tag: "service", responses: [(200, "Readiness"), (503, "Readiness")]),
        Operation(
            method: "head", paths: ["/health"], id: "healthHead", summary: "Liveness for probes: the status of GET /health, no body",
            tag: "service", responses: [(200, nil)]),
        Operation(
            method: "head", paths: ["/ready"], id: "readyHead", summary: "Readiness for probes: the status of GET /ready, no body",
            tag: "service", responses: [(200, nil), (503, nil)]),
        Operation(
            method: "get", paths: ["/openapi.json"], id: "openAPIDocument", summary: "This document", tag: "service",
            responses: [(200, "OpenAPI")]),
        Operation(
            method: "get", paths: ["/ui"], id: "console", summary: "The web console's page (no token needed; see docs/console.md)",
            tag: "console", responses: [(200, nil), (304, nil), (404, "Error")], textMedia: ["text/html"]),
        Operation(
            method: "get", paths: ["/ui/{asset}"], id: "consoleAsset", summary: "The web console's script, stylesheet and icon",
            tag: "console", responses: [(200, nil), (304, nil), (404, "Error")],
            textMedia: ["text/javascript", "text/css", "image/svg+xml"]),
    ]

    private static let eventOperations: [Operation] = [
        Operation(
            method: "post", paths: ["/workflow-events"], id: "receiveWorkflowEvent",
            summary: "An event for an awaiting step or an event trigger (Dapr delivery; header dapr-api-token)", tag: "events",
            parameters: [parameter("dapr-api-token", in: "header", Schema.string)], body: Schema.anyObject,
            responses: [(200, "EventDelivery"), (403, "Error")]),
        Operation(
            method: "get", paths: ["/dapr/subscribe"], id: "daprSubscriptions", summary: "The subscriptions Dapr reads at start-up",
            tag: "events", responses: [(200, "Subscriptions")]),
        Operation(
            method: "post", paths: ["/plugins/reload"], id: "reloadPlugins",
            summary: "Load added and changed plugin libraries; calls under way finish on the version they started on (service only)",
            tag: "service", responses: [(200, "PluginReload"), (403, "Error"), (409, "Error"), (503, "Error")]),
        Operation(
            method: "get", paths: ["/plugins"], id: "listPlugins",
            summary: "Loaded plugins (version, ABI, health, process), refused libraries with reasons; users see no file paths",
            tag: "plugins", responses: [(200, "PluginInventory")]),
    ]
}
