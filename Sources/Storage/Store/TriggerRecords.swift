public import BudJSON
public import Foundation
public import PipelineEngine

/// A row of one of the tables of things that start executions — schedules, webhooks, event
/// triggers. Each is stored and updated whole, with optimistic locking on `version`.
public protocol StoredTrigger: Sendable {
    /// The table it lives in.
    static var table: String { get }
    /// Every column but `id` and `version`, in the order of ``columnValues``.
    static var columns: [String] { get }
    var id: String { get }
    var version: Int { get set }
    /// The user it belongs to; `nil`: the service's.
    var userID: String? { get }
    /// The values of ``columns``.
    var columnValues: [SQLValue] { get }
    init(row: Row) throws
}

/// A schedule: when to start a pipeline on its own (behaviour doc §7.1).
public struct ScheduleRecord: StoredTrigger, Equatable {
    /// How a schedule's times are given.
    public enum Kind: String, Sendable, CaseIterable {
        case cron, interval
        case oneTime = "one_time"
        case manual
    }

    /// `active` schedules fire; the others wait to be resumed or are over.
    public enum Status: String, Sendable, CaseIterable {
        case active, paused, expired, completed
    }

    public var id: String
    public var version: Int
    public var pipelineID: PipelineID
    public var name: String
    public var description: String?
    public var kind: Kind
    /// The cron expression or preset, or the `@every …` interval.
    public var expression: String?
    /// An IANA time zone name; cron expressions are read in it.
    public var timezone: String
    /// When a `one_time` schedule fires.
    public var runAt: Date?
    public var params: JSONObject
    public var enabled: Bool
    public var status: Status
    public var nextRunAt: Date?
    public var lastRunAt: Date?
    public var lastExecutionID: String?
    /// The started execution's status, lower-case as the start routes answer it.
    public var lastExecutionStatus: String?
    public var runCount: Int
    public var maxRuns: Int?
    public var expiresAt: Date?
    public var userID: String?
    public var createdBy: String?
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        id: String, version: Int = 1, pipelineID: PipelineID, name: String, description: String? = nil, kind: Kind, expression: String?,
        timezone: String = "UTC", runAt: Date? = nil, params: JSONObject = [:], enabled: Bool = true, status: Status = .active,
        nextRunAt: Date? = nil, lastRunAt: Date? = nil, lastExecutionID: String? = nil, lastExecutionStatus: String? = nil,
        runCount: Int = 0, maxRuns: Int? = nil, expiresAt: Date? = nil, userID: String? = nil, createdBy: String? = nil,
        createdAt: Date, updatedAt: Date
    ) {
        self.id = id
        self.version = version
        self.pipelineID = pipelineID
        self.name = name
        self.description = description
        self.kind = kind
        self.expression = expression
        self.timezone = timezone
        self.runAt = runAt
        self.params = params
        self.enabled = enabled
        self.status = status
        self.nextRunAt = nextRunAt
        self.lastRunAt = lastRunAt
        self.lastExecutionID = lastExecutionID
        self.lastExecutionStatus = lastExecutionStatus
        self.runCount = runCount
        self.maxRuns = maxRuns
        self.expiresAt = expiresAt
        self.userID = userID
        self.createdBy = createdBy
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    public static let table = "schedule"
    public static let columns = [
        "pipeline_id", "name", "description", "schedule_type", "expression", "timezone", "run_at", "params", "enabled", "status",
        "next_run_at", "last_run_at", "last_execution_id", "last_execution_status", "run_count", "max_runs", "expires_at", "user_id",
        "created_by", "created_at", "updated_at",
    ]

    public var columnValues: [SQLValue] {
        [
            .id(pipelineID), .text(name), .optional(description, SQLValue.text), .text(kind.rawValue),
            .optional(expression, SQLValue.text), .text(timezone), .optional(runAt, SQLValue.date), .json(.object(params)),
            .bool(enabled), .text(status.rawValue), .optional(nextRunAt, SQLValue.date), .optional(lastRunAt, SQLValue.date),
            .optional(lastExecutionID, SQLValue.text), .optional(lastExecutionStatus, SQLValue.text), .integer(runCount),
            .optional(maxRuns, SQLValue.integer), .optional(expiresAt, SQLValue.date), .optional(userID, SQLValue.text),
            .optional(createdBy, SQLValue.text), .date(createdAt), .date(updatedAt),
        ]
    }

    public init(row: Row) throws {
        self.init(
            id: try row.string("id"), version: try row.int("version"), pipelineID: try row.id("pipeline_id"),
            name: try row.string("name"), description: row["description"], kind: try row.value("schedule_type", as: Kind.self),
            expression: row["expression"], timezone: try row.string("timezone"), runAt: try row.optionalDate("run_at"),
            params: try row.json("params").objectValue ?? [:], enabled: try row.bool("enabled"),
            status: try row.value("status", as: Status.self), nextRunAt: try row.optionalDate("next_run_at"),
            lastRunAt: try row.optionalDate("last_run_at"), lastExecutionID: row["last_execution_id"],
            lastExecutionStatus: row["last_execution_status"], runCount: try row.int("run_count"), maxRuns: try row.optionalInt("max_runs"),
            expiresAt: try row.optionalDate("expires_at"), userID: row["user_id"], createdBy: row["created_by"],
            createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at"))
    }
}

/// A webhook: an URL that starts a pipeline when called with its secret (behaviour doc §7.4).
public struct WebhookRecord: StoredTrigger, Equatable {
    public var id: String
    public var version: Int
    public var pipelineID: PipelineID
    public var name: String
    /// SHA-256 (hex) of the secret callers must send; `nil` when none is required.
    public var secretHash: String?
    /// The secret callers sign deliveries with (HMAC-SHA256 over timestamp and body), when the
    /// webhook requires signatures instead of a shared secret; `nil` otherwise.
    public var signingSecret: String?
    /// How far a signed delivery's timestamp may be from the server's clock, in seconds; delivery
    /// ids are remembered twice as long to refuse replays.
    public var signatureTolerance: Int
    /// Peer addresses allowed to call it; `nil` allows every address.
    public var allowedIPs: [String]?
    /// Request headers copied into the run's parameters as `header_<name>`.
    public var headersToInclude: [String]
    public var params: JSONObject
    public var enabled: Bool
    public var lastTriggeredAt: Date?
    public var triggerCount: Int
    public var userID: String?
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        id: String, version: Int = 1, pipelineID: PipelineID, name: String, secretHash: String?, signingSecret: String? = nil,
        signatureTolerance: Int = 300, allowedIPs: [String]? = nil, headersToInclude: [String] = [], params: JSONObject = [:],
        enabled: Bool = true, lastTriggeredAt: Date? = nil, triggerCount: Int = 0, userID: String? = nil, createdAt: Date,
        updatedAt: Date
    ) {
        self.id = id
        self.version = version
        self.pipelineID = pipelineID
        self.name = name
        self.secretHash = secretHash
        self.signingSecret = signingSecret
        self.signatureTolerance = signatureTolerance
        self.allowedIPs = allowedIPs
        self.headersToInclude = headersToInclude
        self.params = params
        self.enabled = enabled
        self.lastTriggeredAt = lastTriggeredAt
        self.triggerCount = triggerCount
        self.userID = userID
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    public static let table = "webhook"
    public static let columns = [
        "pipeline_id", "name", "secret_hash", "allowed_ips", "headers_to_include", "params", "enabled", "last_triggered_at",
        "trigger_count", "user_id", "created_at", "updated_at", "signing_secret", "signature_tolerance_seconds",
    ]

    public var columnValues: [SQLValue] {
        [
            .id(pipelineID), .text(name), .optional(secretHash, SQLValue.text),
            .optional(allowedIPs) { .json(.array($0.map(JSONValue.string))) }, .json(.array(headersToInclude.map(JSONValue.string))),
            .json(.object(params)), .bool(enabled), .optional(lastTriggeredAt, SQLValue.date), .integer(triggerCount),
            .optional(userID, SQLValue.text), .date(createdAt), .date(updatedAt), .optional(signingSecret, SQLValue.text),
            .integer(signatureTolerance),
        ]
    }

    public init(row: Row) throws {
        self.init(
            id: try row.string("id"), version: try row.int("version"), pipelineID: try row.id("pipeline_id"),
            name: try row.string("name"), secretHash: row["secret_hash"], signingSecret: row["signing_secret"],
            signatureTolerance: try row.int("signature_tolerance_seconds"),
            allowedIPs: try row.optionalJSON("allowed_ips")?.arrayValue?.compactMap(\.stringValue),
            headersToInclude: try row.json("headers_to_include").arrayValue?.compactMap(\.stringValue) ?? [],
            params: try row.json("params").objectValue ?? [:], enabled: try row.bool("enabled"),
            lastTriggeredAt: try row.optionalDate("last_triggered_at"), triggerCount: try row.int("trigger_count"),
            userID: row["user_id"], createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at"))
    }
}

/// An event trigger: starts a pipeline when an event of its type matching its filters arrives
/// (behaviour doc §7.6–7.7).
public struct EventTriggerRecord: StoredTrigger, Equatable {
    public var id: String
    public var version: Int
    public var pipelineID: PipelineID
    public var name: String
    public var eventType: String
    /// Dotted paths into the event and the values they must equal.
    public var filters: JSONObject
    public var params: JSONObject
    public var enabled: Bool
    public var lastTriggeredAt: Date?
    public var triggerCount: Int
    public var userID: String?
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        id: String, version: Int = 1, pipelineID: PipelineID, name: String, eventType: String, filters: JSONObject = [:],
        params: JSONObject = [:], enabled: Bool = true, lastTriggeredAt: Date? = nil, triggerCount: Int = 0, userID: String? = nil,
        createdAt: Date, updatedAt: Date
    ) {
        self.id = id
        self.version = version
        self.pipelineID = pipelineID
        self.name = name
        self.eventType = eventType
        self.filters = filters
        self.params = params
        self.enabled = enabled
        self.lastTriggeredAt = lastTriggeredAt
        self.triggerCount = triggerCount
        self.userID = userID
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    public static let table = "event_trigger"
    public static let columns = [
        "pipeline_id", "name", "event_type", "filters", "params", "enabled", "last_triggered_at", "trigger_count", "user_id",
        "created_at", "updated_at",
    ]

    public var columnValues: [SQLValue] {
        [
            .id(pipelineID), .text(name), .text(eventType), .json(.object(filters)), .json(.object(params)), .bool(enabled),
            .optional(lastTriggeredAt, SQLValue.date), .integer(triggerCount), .optional(userID, SQLValue.text), .date(createdAt),
            .date(updatedAt),
        ]
    }

    public init(row: Row) throws {
        self.init(
            id: try row.string("id"), version: try row.int("version"), pipelineID: try row.id("pipeline_id"),
            name: try row.string("name"), eventType: try row.string("event_type"), filters: try row.json("filters").objectValue ?? [:],
            params: try row.json("params").objectValue ?? [:], enabled: try row.bool("enabled"),
            lastTriggeredAt: try row.optionalDate("last_triggered_at"), triggerCount: try row.int("trigger_count"),
            userID: row["user_id"], createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at"))
    }
}

/// Which triggers a listing returns; `nil` fields do not filter. `status` applies to schedules,
/// `eventType` to event triggers.
public struct TriggerFilter: Sendable, Equatable {
    public var pipelineID: PipelineID?
    public var enabled: Bool?
    public var status: ScheduleRecord.Status?
    public var eventType: String?
    /// Only this user's triggers.
    public var ownerID: String?

    public init(
        pipelineID: PipelineID? = nil, enabled: Bool? = nil, status: ScheduleRecord.Status? = nil, eventType: String? = nil,
        ownerID: String? = nil
    ) {
        self.ownerID = ownerID
        self.pipelineID = pipelineID
        self.enabled = enabled
        self.status = status
        self.eventType = eventType
    }
}
