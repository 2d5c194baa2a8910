import BudJSON
import Foundation
import HTTPTypes
import Hummingbird
import PipelineEngine
import PipelineRuntime
import ServiceLifecycle
import Storage

/// The `/executions` routes (also under `/api/v1` and budapp's `/budpipeline` proxy names).
struct ExecutionRoutes: Sendable {
    let runtime: ExecutionRuntime
    let configuration: APIConfiguration

    private var store: PipelineStore { runtime.store }

    /// `POST /executions`: starts a saved pipeline and answers at once.
    func start(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        try await start(request, context: context, pathPipelineID: nil)
    }

    /// `POST /budpipeline/{id}/execute`: the same, with the pipeline in the path.
    func startFromPath(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        try await start(request, context: context, pathPipelineID: context.parameters.get("id") ?? "")
    }

    private func start(_ request: Request, context: some RequestContext, pathPipelineID: String?) async throws -> JSONResponse {
        var request = request
        var reader = FieldReader(
            body: try await request.jsonObject(limit: configuration.maximumBodySize, emptyAllowed: pathPipelineID != nil))
        let rawID = pathPipelineID ?? reader.requiredString("workflow_id")
        var start = Self.request(&reader)
        try reader.finish()
        try Self.assignOwner(of: &start, caller: try Caller(request))
        start.traceParent = request.traceParent
        let raw = rawID ?? ""
        guard let id = PipelineID(parsing: raw) else { throw APIError.pipelineNotFound(raw) }
        do {
            let record = try await runtime.startSavedPipeline(id, start)
            return JSONResponse(Representation.startedExecution(record, masking: runtime.configuration.secretKeys), status: .created)
        } catch let error as ExecutionStartError {
            throw Self.apiError(error, invalidTitle: "Invalid pipeline definition")
        }
    }

    /// `POST /executions/run`: runs a DAG that is not saved.
    func runEphemeral(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        var request = request
        var reader = FieldReader(body: try await request.jsonObject(limit: configuration.maximumBodySize))
        let dag = reader.requiredObject("pipeline_definition")
        var start = Self.request(&reader)
        try reader.finish()
        try Self.assignOwner(of: &start, caller: try Caller(request))
        start.traceParent = request.traceParent
        start.dag = .object(dag ?? [:])
        start.pipelineName = dag?["name"]?.stringValue ?? "Ephemeral Pipeline"
        return try await run(start, invalidTitle: "Invalid pipeline definition")
    }

    private func run(_ request: ExecutionRequest, invalidTitle: String) async throws -> JSONResponse {
        do {
            let record = try await runtime.startExecution(request)
            return JSONResponse(Representation.startedExecution(record, masking: runtime.configuration.secretKeys), status: .created)
        } catch let error as ExecutionStartError {
            throw Self.apiError(error, invalidTitle: invalidTitle)
        }
    }

    static func apiError(_ error: ExecutionStartError, invalidTitle: String) -> APIError {
        switch error {
        case .invalidPipeline(let report): APIError.validationFailed(report.errors, title: invalidTitle, code: "INVALID_PIPELINE")
        case .unregisteredActions(let types):
            APIError.validationFailed(types.map { "Action '\($0)' is not registered" }, title: invalidTitle, code: "UNREGISTERED_ACTIONS")
        case .invalidParameters(let problems): APIError.validationFailed(problems, title: "Invalid parameters", code: "INVALID_PARAMETERS")
        case .pipelineNotFound(let id): APIError.pipelineNotFound(id.rawValue)
        case .pipelineIsDraft:
            APIError(.badRequest, code: "PIPELINE_IS_DRAFT", message: error.description, detail: .string(error.description))
        }
    }

    /// Makes the execution the caller's: a user's own (a `user_id` naming another user, in the
    /// body or in `params`, is refused), or for the service whoever the body's `user_id` names.
    /// A user may start only its own and system-owned pipelines.
    private static func assignOwner(of start: inout ExecutionRequest, caller: Caller) throws(APIError) {
        let named = start.params["user_id"]?.stringValue.flatMap(UUIDText.normalized)
        if case .user(let id) = caller, let given = start.params["user_id"], given.stringValue.flatMap(UUIDText.normalized) != id {
            throw APIError(
                .forbidden, code: "OWNER_NOT_ALLOWED", message: "Only the service may start an execution for another user (user_id)")
        }
        start.ownerID = try caller.owner(naming: named)
        start.requestingUser = caller.userID
    }

    /// The fields both start routes share; the caller fills in the DAG.
    private static func request(_ reader: inout FieldReader) -> ExecutionRequest {
        var params = reader.object("params") ?? [:]
        let userID = reader.string("user_id", maxLength: 255)
        if let userID { params["user_id"] = .string(userID) }
        let topics = reader.stringArray("callback_topics") ?? []
        let request = ExecutionRequest(
            dag: .null,
            params: params,
            initiator: reader.string("initiator", maxLength: 255) ?? "api",
            callbackTopics: topics,
            subscriberIDs: reader.string("subscriber_ids", maxLength: 500),
            payloadType: reader.string("payload_type", maxLength: 100),
            notificationWorkflowID: reader.string("notification_workflow_id", maxLength: 255)
        )
        for topic in topics where !PublishingConfiguration.isName(topic) {
            reader.reject("callback_topics", "Invalid topic name '\(topic)': use 1-255 letters, digits, '.', '_' or '-'")
        }
        return request
    }

    // MARK: Reading

    /// `GET /executions`: newest first, with filters, in pages.
    func list(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        var reader = FieldReader(query: request)
        let page = reader.integer("page", in: 1...1_000_000) ?? 1
        let pageSize = reader.integer("page_size", in: 1...100) ?? 20
        let status = Self.statusFilter(&reader)
        var filter = ExecutionFilter(
            pipelineID: reader.uuid("workflow_id").map { PipelineID($0) },
            status: nil,
            initiator: reader.string("initiator"),
            createdFrom: reader.date("start_date"),
            createdUntil: reader.date("end_date"),
            ownerID: try Caller(request).userID
        )
        try reader.finish()
        let (records, total): ([ExecutionRecord], Int)
        switch status {
        case .interrupted: (records, total) = ([], 0)
        case .status(let value):
            filter.status = value
            (records, total) = try await store.executions.list(matching: filter, limit: pageSize, offset: (page - 1) * pageSize)
        }
        return JSONResponse([
            "executions": .array(records.map { Representation.execution($0, masking: runtime.configuration.secretKeys) }),
            "pagination": [
                "page": .int(page), "page_size": .int(pageSize), "total_count": .int(total),
                "total_pages": .int((total + pageSize - 1) / pageSize),
            ],
        ])
    }

    private enum StatusFilter {
        case status(ExecutionStatus?)
        /// `INTERRUPTED`, which clients may still filter by: it named executions a restart left
        /// behind, and this server resumes those, so no execution has it.
        case interrupted
    }

    /// The `status` query parameter, in any case: one of the statuses, or `INTERRUPTED`.
    private static func statusFilter(_ reader: inout FieldReader) -> StatusFilter {
        guard let text = reader.string("status") else { return .status(nil) }
        let upper = text.uppercased()
        if upper == "INTERRUPTED" { return .interrupted }
        if let status = ExecutionStatus(rawValue: upper) { return .status(status) }
        let expected = (ExecutionStatus.allCases.map(\.rawValue) + ["INTERRUPTED"]).map { "'\($0)'" }.joined(separator: ", ")
        reader.reject("status", "Input should be \(expected) (any case)")
        return .status(nil)
    }

    func get(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        let record = try await execution(request, context: context, .read)
        return JSONResponse(Representation.execution(record, masking: runtime.configuration.secretKeys))
    }

    /// `GET /executions/{id}/progress`: `detail` = `summary` | `steps` | `full` (default).
    func progress(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        let id = try executionID(request, context: context)
        var reader = FieldReader(query: request)
        let detail = reader.string("detail") ?? "full"
        let includeEvents = reader.bool("include_events") ?? true
        let eventsLimit = reader.integer("events_limit", in: 1...100) ?? 20
        try reader.finish()
        let (execution, steps) = try await executionWithSteps(id, request, .read)
        var recent: [JSONValue] = []
        if detail == "full", includeEvents {
            let events = try await store.executions.progressEvents(
                executionID: id, matching: ProgressEventFilter(), limit: eventsLimit, offset: 0)
            recent = events.events.reversed().map { Representation.progressEvent($0, masking: runtime.configuration.secretKeys) }
        }
        let showSteps = detail == "full" || detail == "steps"
        return JSONResponse([
            "execution": Representation.execution(execution, masking: runtime.configuration.secretKeys),
            "steps": .array(showSteps ? steps.map { Representation.step($0, masking: runtime.configuration.secretKeys) } : []),
            "recent_events": .array(recent),
            "aggregated_progress": Representation.aggregatedProgress(
                execution, steps: steps, eta: runtime.estimatedSecondsLeft(execution, steps: steps)),
        ])
    }

    func steps(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        let id = try executionID(request, context: context)
        let (_, steps) = try await executionWithSteps(id, request, .read)
        return JSONResponse(["steps": .array(steps.map { Representation.step($0, masking: runtime.configuration.secretKeys) })])
    }

    /// `GET /executions/{id}/events`: progress events newest first.
    func events(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        let id = try executionID(request, context: context)
        var reader = FieldReader(query: request)
        let filter = ProgressEventFilter(
            kind: reader.choice("event_type", as: ProgressEventRecord.Kind.self, among: ProgressEventRecord.Kind.allCases),
            from: reader.date("start_time"),
            until: reader.date("end_time")
        )
        let limit = reader.integer("limit", in: 1...1000) ?? 100
        let offset = reader.integer("offset", in: 0...Int(Int32.max)) ?? 0
        try reader.finish()
        _ = try await execution(request, context: context, .read)
        let (events, total) = try await store.executions.progressEvents(executionID: id, matching: filter, limit: limit, offset: offset)
        return JSONResponse([
            "events": .array(events.map { Representation.progressEvent($0, masking: runtime.configuration.secretKeys) }),
            "total_count": .int(total), "limit": .int(limit),
            "offset": .int(offset),
        ])
    }

    // MARK: Steering

    /// `POST /executions/{id}/cancel`: stops a running execution; answers with it as stored.
    func cancel(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        let record = try await execution(request, context: context, .change)
        let id = record.id
        guard !record.status.isFinished else {
            throw APIError(
                .conflict, code: "EXECUTION_FINISHED", message: "Execution \(id) already finished with status \(record.status.rawValue)")
        }
        try await runtime.cancel(executionID: id, reason: "Execution cancelled by request")
        guard let cancelled = try await store.executions.find(id: id) else { throw notFound(id, request) }
        return JSONResponse(Representation.execution(cancelled, masking: runtime.configuration.secretKeys))
    }

    /// `POST /executions/{id}/retry`: starts a new execution that continues a failed or cancelled
    /// one; completed steps keep their outputs and do not run again. Body optional:
    /// `{"initiator": str}`. Answers 201 like `POST /executions`, plus `retry_of`; when the
    /// execution was retried already (concurrent requests included), 200 with that retry.
    func retry(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        let id = try executionID(request, context: context)
        var request = request
        var reader = FieldReader(body: try await request.jsonObject(limit: configuration.maximumBodySize, emptyAllowed: true))
        let initiator = reader.string("initiator", maxLength: 255)
        try reader.finish()
        _ = try await execution(request, context: context, .change)
        do {
            let outcome = try await runtime.retry(executionID: id, initiator: initiator)
            let status: HTTPResponse.Status = if case .started = outcome { .created } else { .ok }
            return JSONResponse(
                Representation.startedExecution(outcome.execution, masking: runtime.configuration.secretKeys), status: status)
        } catch RuntimeError.executionNotFound {
            throw notFound(id, request)
        } catch let error as ExecutionRetryError {
            switch error {
            case .notRetryable: throw APIError(.conflict, code: "EXECUTION_NOT_RETRYABLE", message: error.description)
            case .unreadableSnapshot: throw APIError(.unprocessableContent, code: "EXECUTION_NOT_RETRYABLE", message: error.description)
            }
        } catch let error as ExecutionStartError {
            throw Self.apiError(error, invalidTitle: "Invalid pipeline definition")
        }
    }

    // MARK: Live stream

    /// `GET /executions/{id}/stream`: server-sent events. First `snapshot` (the execution as
    /// `GET /executions/{id}` returns it), then each event of the execution as it is published
    /// (`step_started`, `step_completed`, `workflow_progress`, …; data: the event's JSON), with a
    /// `: keep-alive` comment every 5 s; the stream ends after the execution's final event, or
    /// when the server shuts down. Neither HTTP timeout cuts it (the idle timeout does not count
    /// the time a response is being written).
    ///
    /// Events reach the stream from this process's transitions and, on PostgreSQL, from the other
    /// processes sharing the database (told that this process streams the execution). Each event
    /// carries the execution's version after its transition; with each keep-alive the stream also
    /// reads the execution, and when two ticks in a row find it at a later version than its events
    /// reached (events lost between processes, or a transition that had none), it sends a fresh
    /// `snapshot` — the client's view is never wrong for longer than two ticks. When two ticks in a
    /// row find the execution finished and its final event did not come by between them, the
    /// stream ends with a last `snapshot` of the finished execution.
    func stream(_ request: Request, context: some RequestContext) async throws -> Response {
        let id = try executionID(request, context: context)
        let bus = runtime.eventBus
        // Subscribe before reading, so that nothing published in between is missed. Other
        // processes are asked to forward the execution's events only once the caller may read it
        // (an unknown or forbidden id costs them nothing); the execution is then read again, so
        // that the snapshot holds what came before their first forwarded event.
        let subscription = bus.subscribe(executionID: id)
        var following = false
        let stop: @Sendable (Bool) -> Void = { following in
            bus.unsubscribe(subscription.id)
            if following { runtime.unfollow(id) }
        }
        let record: ExecutionRecord
        do {
            guard let found = try await store.executions.find(id: id), try Caller(request).canRead(Ownership(ownerID: found.userID)) else {
                throw notFound(id, request)
            }
            if found.status.isFinished {
                // Nothing more will happen to it: the snapshot is all the stream sends.
                record = found
            } else {
                following = true
                await runtime.follow(id)
                record = try await store.executions.find(id: id) ?? found
            }
        } catch {
            stop(following)
            throw error
        }
        let masking = runtime.configuration.secretKeys
        let body = ResponseBody { [following] writer in
            defer { stop(following) }
            try await writer.write(Self.serverSentEvent("snapshot", Representation.execution(record, masking: masking)))
            if !record.status.isFinished {
                // The execution's events and a keep-alive tick (`nil`) merged into one sequence
                // by two child tasks, which end with the stream.
                // Bounded like the subscription itself: a client that reads slowly loses the oldest
                // events, never grows the server's memory.
                let (items, sink) = AsyncStream<EventBus.Message?>.makeStream(bufferingPolicy: .bufferingNewest(1000))
                // A stream ends when the server shuts down, so that it does not hold the shutdown up.
                try await withGracefulShutdownHandler {
                    try await withThrowingDiscardingTaskGroup { group in
                        group.addTask {
                            for await message in subscription.messages where message.topic == nil { sink.yield(message) }
                            sink.finish()
                        }
                        // Checks come early while other processes may run the execution (an event
                        // they sent as the stream opened may be missed: found in under a second),
                        // then with each keep-alive.
                        let early = following && runtime.sharesDatabase ? Self.earlyChecks : []
                        group.addTask {
                            var pauses = early.makeIterator()
                            while (try? await Task.sleep(for: pauses.next() ?? Self.keepAliveInterval)) != nil { sink.yield(nil) }
                        }
                        var view = StreamView(version: record.version)
                        events: for await item in items {
                            switch item {
                            case nil:
                                try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                                guard let current = try? await store.executions.find(id: id), view.tick(current) else { continue }
                                try await writer.write(
                                    Self.serverSentEvent("snapshot", Representation.execution(current, masking: masking)))
                                if current.status.isFinished { break events }
                            case let message? where message.eventType == EventBus.Message.resyncEventType:
                                guard let current = try? await store.executions.find(id: id) else { continue }
                                view.resynced(current)
                                try await writer.write(
                                    Self.serverSentEvent("snapshot", Representation.execution(current, masking: masking)))
                                if current.status.isFinished { break events }
                            case let message?:
                                view.received(message)
                                try await writer.write(Self.serverSentEvent(message.eventType, message.payload))
                                if Self.finalEvents.contains(message.eventType) { break events }
                            }
                        }
                        group.cancelAll()
                    }
                } onGracefulShutdown: {
                    sink.finish()
                }
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", HTTPField.Name("X-Accel-Buffering")!: "no"],
            body: body)
    }

    /// What a live stream knows of its execution: the version its events reached, and what the
    /// last keep-alive found, to decide when the client needs a fresh `snapshot` (a value type,
    /// tested without a server).
    struct StreamView {
        /// The execution's version as far as the events sent tell it.
        private(set) var version: Int
        /// The version and status the last tick found ahead of the events, if it did.
        private var behindAtTick: (version: Int, finished: Bool)?
        /// Whether an event came with a version beyond the next one since the last snapshot.
        private var skipped = false

        init(version: Int) {
            self.version = version
        }

        mutating func received(_ message: EventBus.Message) {
            guard let reached = message.version else { return }
            // A version skipped: its transition's events may have been lost on the way (or it had
            // none). The next tick sends a snapshot to be sure.
            if reached > version &+ 1 { skipped = true }
            version = max(version, reached)
        }

        mutating func resynced(_ execution: ExecutionRecord) {
            version = max(version, execution.version)
            behindAtTick = nil
            skipped = false
        }

        /// A keep-alive found `execution`; true when the stream must send it as a `snapshot`:
        /// an event skipped a version since the last snapshot, or the previous tick found the
        /// execution at the same later version (or finished) too and no event of that version
        /// came in between.
        mutating func tick(_ execution: ExecutionRecord) -> Bool {
            if skipped {
                resynced(execution)
                return true
            }
            let finished = execution.status.isFinished
            guard execution.version > version || finished else {
                behindAtTick = nil
                return false
            }
            if let earlier = behindAtTick, earlier.version == execution.version, earlier.finished == finished {
                resynced(execution)
                return true
            }
            behindAtTick = (execution.version, finished)
            return false
        }
    }

    private static let finalEvents: Set<String> = ["workflow_completed", "workflow_failed", "workflow_cancelled"]

    /// How often a live stream writes a keep-alive comment and checks whether its execution ended.
    static let keepAliveInterval = Duration.seconds(5)

    /// The pauses before the first checks of a stream whose execution other processes may run,
    /// before the keep-alive's pace: two checks finding the same state 0.25 s apart send a missed
    /// state within half a second.
    static let earlyChecks: [Duration] = [.milliseconds(250), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(3)]

    private static func serverSentEvent(_ name: String, _ data: JSONValue) -> ByteBuffer {
        ByteBuffer(string: "event: \(name)\ndata: \(data.serializedString())\n\n")
    }

    // MARK: Helpers

    /// The `id` path parameter as a lower-case UUID; anything else is a 422 at `execution_id`, like
    /// any malformed field, not a 404.
    func executionID(_ request: Request, context: some RequestContext) throws -> ExecutionID {
        let raw = context.parameters.get("id") ?? ""
        guard let id = ExecutionID(parsing: raw) else {
            throw APIError.unprocessable(["path", "execution_id"], "Input should be a valid UUID", type: "uuid_parsing")
        }
        return id
    }

    /// The execution the path names, when the caller may have `access` to it; its 404 otherwise
    /// (another user's execution cannot be told from a missing one).
    private func execution(_ request: Request, context: some RequestContext, _ access: Access) async throws -> ExecutionRecord {
        let id = try executionID(request, context: context)
        guard let record = try await store.executions.find(id: id) else { throw notFound(id, request) }
        try Caller(request).check(access, Ownership(ownerID: record.userID), hidden: notFound(id, request))
        return record
    }

    /// The execution `id` and its steps, when the caller may have `access` to it; its 404 otherwise.
    func executionWithSteps(_ id: ExecutionID, _ request: Request, _ access: Access) async throws -> (ExecutionRecord, [StepRecord]) {
        guard let (record, steps) = try await store.executions.findWithSteps(id: id) else { throw notFound(id, request) }
        try Caller(request).check(access, Ownership(ownerID: record.userID), hidden: notFound(id, request))
        return (record, steps)
    }

    private func notFound(_ id: ExecutionID, _ request: Request) -> APIError {
        APIError.executionNotFound(id.rawValue, correlationID: request.headers[HTTPField.Name("X-Correlation-ID")!])
    }
}
