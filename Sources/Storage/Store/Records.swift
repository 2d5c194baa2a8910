public import BudJSON
public import Foundation
public import PipelineEngine

/// A stored pipeline definition (table `pipeline_definition`).
public struct PipelineDefinitionRecord: Sendable, Equatable {
    /// `DRAFT`, `ACTIVE` or `ARCHIVED` as stored; clients see them in lower case.
    public enum Status: String, Sendable, CaseIterable {
        case draft = "DRAFT"
        case active = "ACTIVE"
        case archived = "ARCHIVED"
    }

    public var id: PipelineID
    /// Starts at 1 and grows by one with every update (optimistic locking).
    public var version: Int
    public var name: String
    public var description: String?
    public var icon: String?
    /// The DAG as submitted.
    public var dag: JSONValue
    public var status: Status
    public var userID: String?
    public var systemOwned: Bool
    public var stepCount: Int
    public var createdBy: String
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        id: PipelineID,
        version: Int = 1,
        name: String,
        description: String? = nil,
        icon: String? = nil,
        dag: JSONValue,
        status: Status = .draft,
        userID: String? = nil,
        systemOwned: Bool = false,
        stepCount: Int,
        createdBy: String = "api",
        createdAt: Date,
        updatedAt: Date
    ) {
        self.id = id
        self.version = version
        self.name = name
        self.description = description
        self.icon = icon
        self.dag = dag
        self.status = status
        self.userID = userID
        self.systemOwned = systemOwned
        self.stepCount = stepCount
        self.createdBy = createdBy
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// A stored execution (table `pipeline_execution`).
public struct ExecutionRecord: Sendable, Equatable {
    public var id: ExecutionID
    /// Grows by one with every committed transition.
    public var version: Int
    /// The saved pipeline it runs; `nil` for an ephemeral run or once the pipeline was deleted.
    public var pipelineID: PipelineID?
    /// `{"workflow_id", "workflow_name", "dag", "params"}`: what the execution runs, as it started.
    public var definitionSnapshot: JSONObject
    public var initiator: String
    public var status: ExecutionStatus
    public var startTime: Date?
    public var endTime: Date?
    public var progress: Double
    public var finalOutputs: JSONObject?
    public var errorInfo: JSONObject?
    public var subscriberIDs: String?
    public var payloadType: String?
    public var notificationWorkflowID: String?
    /// The number of progress events written so far (the next one gets this plus one).
    public var eventSequence: Int
    public var createdAt: Date
    public var updatedAt: Date
    /// How many times a process died while working on the execution itself (not on a step of it).
    public var interruptions: Int
    /// The user it belongs to; `nil`: the service's (see docs/security.md).
    public var userID: String?

    public init(
        id: ExecutionID,
        version: Int = 1,
        pipelineID: PipelineID?,
        definitionSnapshot: JSONObject,
        initiator: String,
        status: ExecutionStatus = .pending,
        startTime: Date? = nil,
        endTime: Date? = nil,
        progress: Double = 0,
        finalOutputs: JSONObject? = nil,
        errorInfo: JSONObject? = nil,
        subscriberIDs: String? = nil,
        payloadType: String? = nil,
        notificationWorkflowID: String? = nil,
        eventSequence: Int = 0,
        createdAt: Date,
        updatedAt: Date,
        interruptions: Int = 0,
        userID: String? = nil
    ) {
        self.interruptions = interruptions
        self.userID = userID
        self.id = id
        self.version = version
        self.pipelineID = pipelineID
        self.definitionSnapshot = definitionSnapshot
        self.initiator = initiator
        self.status = status
        self.startTime = startTime
        self.endTime = endTime
        self.progress = progress
        self.finalOutputs = finalOutputs
        self.errorInfo = errorInfo
        self.subscriberIDs = subscriberIDs
        self.payloadType = payloadType
        self.notificationWorkflowID = notificationWorkflowID
        self.eventSequence = eventSequence
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// The DAG document the execution runs.
    public var dag: JSONValue { definitionSnapshot["dag"] ?? .null }
    /// The bound parameters the execution runs with.
    public var params: JSONObject { definitionSnapshot["params"]?.objectValue ?? [:] }
    /// The execution this one retries (stored in column `retry_of` too, which is unique).
    public var retryOf: ExecutionID? { definitionSnapshot["retry_of"]?.stringValue.map { ExecutionID($0) } }
    /// The W3C `traceparent` the execution's spans descend from, when one was stored as it started
    /// (key `trace_parent` of the snapshot; see docs/operations.md, "Tracing").
    public var traceParent: String? { definitionSnapshot["trace_parent"]?.stringValue }

    /// The engine's view of the execution record.
    public var snapshot: ExecutionSnapshot {
        ExecutionSnapshot(
            status: status, startedAt: startTime, endedAt: endTime, progress: progress, outputs: finalOutputs, errorInfo: errorInfo)
    }
}

/// A stored step of an execution (table `step_execution`).
public struct StepRecord: Sendable, Equatable {
    public var id: String
    public var executionID: ExecutionID
    public var version: Int
    public var state: StepState
    /// While the step runs a plugin call: the `execute` request, to run it again after a crash.
    public var dispatch: JSONValue?
    /// The process whose plugin call runs the step, and until when its claim holds.
    public var leaseOwner: String?
    public var leaseExpiresAt: Date?
    public var createdAt: Date
    public var updatedAt: Date
    /// How many times a process died while working on the step (a plugin call, a transition).
    public var interruptions: Int

    public init(
        id: String,
        executionID: ExecutionID,
        version: Int = 1,
        state: StepState,
        dispatch: JSONValue? = nil,
        leaseOwner: String? = nil,
        leaseExpiresAt: Date? = nil,
        createdAt: Date,
        updatedAt: Date,
        interruptions: Int = 0
    ) {
        self.interruptions = interruptions
        self.id = id
        self.executionID = executionID
        self.version = version
        self.state = state
        self.dispatch = dispatch
        self.leaseOwner = leaseOwner
        self.leaseExpiresAt = leaseExpiresAt
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// A row of `progress_event`, the execution's progress history (`GET /executions/{id}/events`).
public struct ProgressEventRecord: Sendable, Equatable {
    /// The reference's four kinds.
    public enum Kind: String, Sendable, CaseIterable {
        case workflowProgress = "workflow_progress"
        case stepCompleted = "step_completed"
        case etaUpdate = "eta_update"
        case workflowCompleted = "workflow_completed"
    }

    public var id: String
    public var executionID: ExecutionID
    public var kind: Kind
    public var progress: Double
    public var etaSeconds: Int?
    public var currentStepDescription: String?
    public var details: JSONObject?
    public var timestamp: Date
    public var sequenceNumber: Int
    public var createdAt: Date

    public init(
        id: String,
        executionID: ExecutionID,
        kind: Kind,
        progress: Double,
        etaSeconds: Int?,
        currentStepDescription: String?,
        details: JSONObject?,
        timestamp: Date,
        sequenceNumber: Int,
        createdAt: Date
    ) {
        self.id = id
        self.executionID = executionID
        self.kind = kind
        self.progress = progress
        self.etaSeconds = etaSeconds
        self.currentStepDescription = currentStepDescription
        self.details = details
        self.timestamp = timestamp
        self.sequenceNumber = sequenceNumber
        self.createdAt = createdAt
    }
}

/// An event to publish, written to the outbox in the transaction that caused it.
public struct OutboxEvent: Sendable, Equatable {
    public var eventType: String
    public var payload: JSONValue

    public init(eventType: String, payload: JSONValue) {
        self.eventType = eventType
        self.payload = payload
    }
}

/// A row of the outbox.
public struct OutboxRecord: Sendable, Equatable {
    public var id: Int
    public var executionID: ExecutionID?
    public var event: OutboxEvent
    public var attempts: Int
    public var createdAt: Date
}

/// Whom an execution's notifications go to, as stored when it started: what the publisher reads
/// to address its outbox events.
public struct NotificationOptionsRecord: Sendable, Equatable {
    public var executionID: ExecutionID
    /// The execution's callback topics, in the order they were given.
    public var callbackTopics: [String]
    public var subscriberIDs: String?
    public var payloadType: String?
    public var notificationWorkflowID: String?
    /// The execution's stored `traceparent` (see ``ExecutionRecord/traceParent``).
    public var traceParent: String?
}

/// A due time kept for an execution (table `execution_timer`).
public struct TimerRecord: Sendable, Hashable {
    public var executionID: ExecutionID
    public var key: String
    public var dueAt: Date

    public init(executionID: ExecutionID, key: String, dueAt: Date) {
        self.executionID = executionID
        self.key = key
        self.dueAt = dueAt
    }
}

/// A running step whose claim this process took over, with the request to run it again.
public struct LeasedStep: Sendable, Equatable {
    public var executionID: ExecutionID
    public var stepID: String
    public var attempt: Int
    public var dispatch: JSONValue?
    /// How many times a process died while working on the step.
    public var interruptions: Int

    public init(executionID: ExecutionID, stepID: String, attempt: Int, dispatch: JSONValue?, interruptions: Int = 0) {
        self.executionID = executionID
        self.stepID = stepID
        self.attempt = attempt
        self.dispatch = dispatch
        self.interruptions = interruptions
    }
}
