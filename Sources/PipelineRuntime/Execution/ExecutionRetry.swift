import BudJSON
import Foundation
public import PipelineEngine
public import Storage

/// Why an execution cannot be retried.
public enum ExecutionRetryError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Only failed or cancelled executions are retried; this one has another status.
    case notRetryable(id: ExecutionID, status: ExecutionStatus)
    /// The stored execution lacks what a retry needs (its DAG).
    case unreadableSnapshot(ExecutionID)

    public var description: String {
        switch self {
        case .notRetryable(let id, let status):
            "Execution \(id) has status \(status.rawValue); only FAILED or CANCELLED executions can be retried"
        case .unreadableSnapshot(let id): "Execution \(id) has no stored pipeline definition to retry"
        }
    }
}

/// What a retry request did.
public enum ExecutionRetryOutcome: Sendable, Equatable {
    /// This request started the retry: a new execution.
    case started(ExecutionRecord)
    /// The execution was retried already, by an earlier or a concurrent request: that retry, as
    /// stored now.
    case alreadyRetried(ExecutionRecord)

    public var execution: ExecutionRecord {
        switch self {
        case .started(let record), .alreadyRetried(let record): record
        }
    }
}

extension ExecutionRuntime {
    /// Retries a failed or cancelled execution from where it stopped: a new execution of the same
    /// stored DAG and parameters, in which the steps that completed keep their outputs and are
    /// not run again; every other step runs anew (under new idempotency keys). The original stays
    /// as it was; the new one names it in `retry_of`.
    ///
    /// An execution is retried once: asked again, or by many requests at once, every request but
    /// the one that started it gets ``ExecutionRetryOutcome/alreadyRetried(_:)`` with the same
    /// new execution (the store's unique `retry_of` decides; this holds across processes). To try
    /// once more, retry the retry.
    ///
    /// - Parameter initiator: who asked for the retry; the original's initiator by default.
    public func retry(executionID: ExecutionID, initiator: String? = nil) async throws -> ExecutionRetryOutcome {
        guard let (original, steps) = try await store.executions.findWithSteps(id: executionID) else {
            throw RuntimeError.executionNotFound(executionID)
        }
        guard original.status == .failed || original.status == .cancelled else {
            throw ExecutionRetryError.notRetryable(id: executionID, status: original.status)
        }
        if let existing = try await store.executions.retry(of: executionID) { return .alreadyRetried(existing) }
        guard let dag = original.definitionSnapshot["dag"] else { throw ExecutionRetryError.unreadableSnapshot(executionID) }
        var request = ExecutionRequest(
            dag: dag,
            params: original.definitionSnapshot["params"]?.objectValue ?? [:],
            pipelineID: original.pipelineID,
            pipelineName: original.definitionSnapshot["workflow_name"]?.stringValue,
            initiator: initiator ?? original.initiator,
            callbackTopics: try await store.executions.callbackTopics(executionID: executionID),
            subscriberIDs: original.subscriberIDs,
            payloadType: original.payloadType,
            notificationWorkflowID: original.notificationWorkflowID
        )
        request.ownerID = original.userID
        request.retry = (of: executionID, completedSteps: steps.map(\.state).filter { $0.status == .completed })
        do {
            return .started(try await startExecution(request))
        } catch let error as DatabaseError where error.kind == .uniqueViolation {
            // Another request stored its retry first; nothing of this one was stored.
            guard let existing = try await store.executions.retry(of: executionID) else { throw error }
            return .alreadyRetried(existing)
        }
    }
}
