import BudJSON
import Foundation
import Hummingbird
import PipelineEngine
import PipelineRuntime
import Scheduling
import Storage

/// The `/schedules` routes. A schedule must name an existing pipeline (a schedule for a missing one
/// could never run), a cron expression is read in the schedule's time zone, and a `one_time`
/// schedule needs a `run_at` in the future (one in the past would never fire).
struct ScheduleRoutes: Sendable {
    let runtime: ExecutionRuntime
    let configuration: APIConfiguration

    private var store: PipelineStore { runtime.store }

    /// The `schedule` object of a request.
    private struct TimingFields {
        var kind: ScheduleRecord.Kind?
        var expression: String?
        var timezone: String
        var runAt: Date?
    }

    func create(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        var request = request
        var reader = FieldReader(body: try await request.jsonObject(limit: configuration.maximumBodySize))
        let pipelineID = reader.requiredString("workflow_id")
        let bodyOwner = reader.string("user_id").flatMap(UUIDText.normalized)
        let name = reader.requiredString("name", maxLength: 255)
        if reader.value("schedule") == nil { reader.reject("schedule", "Field required") }
        let timing = reader.nested("schedule", Self.timingFields)
        let params = reader.object("params") ?? [:]
        let enabled = reader.bool("enabled") ?? true
        let description = reader.string("description", maxLength: 1000)
        let maxRuns = reader.integer("max_runs", in: 1...Int(Int32.max))
        let expiresAt = reader.date("expires_at")
        if name?.isEmpty == true { reader.reject("name", "String should have at least 1 character") }
        try reader.finish()
        let caller = try Caller(request)
        let owner = try caller.owner(naming: bodyOwner)
        let pipeline = try await store.definitions.usablePipelineID(pipelineID ?? "", by: caller)
        guard let timing, let kind = timing.kind, let name else {
            throw APIError.unprocessable(["body", "schedule"], "Field required", type: "missing")
        }
        let now = Date()
        var record = ScheduleRecord(
            id: UUIDText.unguessable(), pipelineID: pipeline, name: name, description: description, kind: kind,
            expression: timing.expression, timezone: timing.timezone, runAt: timing.runAt, params: params, enabled: enabled,
            status: enabled ? .active : .paused, maxRuns: maxRuns, expiresAt: expiresAt, userID: owner,
            createdBy: "api", createdAt: now, updatedAt: now)
        record.nextRunAt = try Self.nextRun(of: record, after: now)
        try await store.triggers.insert(record)
        runtime.schedulesChanged()
        return JSONResponse(Representation.schedule(record, masking: runtime.configuration.secretKeys), status: .created)
    }

    func list(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        var reader = FieldReader(query: request)
        let filter = TriggerFilter(
            pipelineID: reader.uuid("workflow_id").map { PipelineID($0) }, enabled: reader.bool("enabled"),
            status: reader.choice("status", as: ScheduleRecord.Status.self, among: ScheduleRecord.Status.allCases),
            ownerID: try Caller(request).userID)
        try reader.finish()
        let schedules = try await store.triggers.list(ScheduleRecord.self, matching: filter)
        return JSONResponse([
            "schedules": .array(schedules.map { Representation.schedule($0, masking: runtime.configuration.secretKeys) }),
            "total": .int(schedules.count),
        ])
    }

    func get(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        JSONResponse(Representation.schedule(try await schedule(request, context, .read), masking: runtime.configuration.secretKeys))
    }

    /// `PUT /schedules/{id}`: every field optional. A new `schedule` or enabling a paused schedule
    /// plans the next run from now; disabling pauses it.
    func update(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        var current = try await schedule(request, context, .change)
        var request = request
        var reader = FieldReader(body: try await request.jsonObject(limit: configuration.maximumBodySize))
        let name = reader.string("name", maxLength: 255)
        let timing = reader.nested("schedule", Self.timingFields)
        let params = reader.object("params")
        let enabled = reader.bool("enabled")
        let description = reader.string("description", maxLength: 1000)
        let maxRuns = reader.integer("max_runs", in: 1...Int(Int32.max))
        let expiresAt = reader.date("expires_at")
        if name?.isEmpty == true { reader.reject("name", "String should have at least 1 character") }
        let expectedVersion = reader.integer("version", in: 1...Int(Int32.max))
        try reader.finish()
        let version = expectedVersion ?? current.version
        let now = Date()
        if let name { current.name = name }
        if let params { current.params = runtime.configuration.secretKeys.restoringMasked(params, from: current.params) }
        if let description { current.description = description }
        if let maxRuns { current.maxRuns = maxRuns }
        if let expiresAt { current.expiresAt = expiresAt }
        var replan = false
        if let timing {
            current.kind = timing.kind ?? current.kind
            current.expression = timing.expression
            current.timezone = timing.timezone
            current.runAt = timing.runAt
            replan = true
        }
        if let enabled, enabled != current.enabled {
            current.enabled = enabled
            if enabled, current.status == .paused { current.status = .active }
            if !enabled, current.status == .active { current.status = .paused }
            replan = true
        }
        if replan { current.nextRunAt = try Self.nextRun(of: current, after: now) }
        current.updatedAt = now
        let stored = try await store.triggers.update(current, expectedVersion: version)
        runtime.schedulesChanged()
        return JSONResponse(Representation.schedule(stored, masking: runtime.configuration.secretKeys))
    }

    func delete(_ request: Request, context: some RequestContext) async throws -> NoContent {
        try await store.triggers.delete(ScheduleRecord.self, in: context, for: try Caller(request), notFound: Self.notFound)
        runtime.schedulesChanged()
        return NoContent()
    }

    func pause(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        var current = try await schedule(request, context, .change)
        let version = current.version
        current.enabled = false
        if current.status == .active { current.status = .paused }
        current.nextRunAt = nil
        current.updatedAt = Date()
        return JSONResponse(
            Representation.schedule(
                try await store.triggers.update(current, expectedVersion: version), masking: runtime.configuration.secretKeys))
    }

    func resume(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        var current = try await schedule(request, context, .change)
        guard current.status != .expired, current.status != .completed else {
            let message = "Cannot resume \(current.status.rawValue) schedule"
            throw APIError(.badRequest, code: "SCHEDULE_FINISHED", message: message)
        }
        let version = current.version
        let now = Date()
        current.enabled = true
        current.status = .active
        current.nextRunAt = try Self.nextRun(of: current, after: now)
        current.updatedAt = now
        let stored = try await store.triggers.update(current, expectedVersion: version)
        runtime.schedulesChanged()
        return JSONResponse(Representation.schedule(stored, masking: runtime.configuration.secretKeys))
    }

    /// `POST /schedules/{id}/trigger`: runs the pipeline now; an optional body object overrides
    /// parameters. The schedule's counters do not change.
    func trigger(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        let current = try await schedule(request, context, .change)
        var request = request
        let overrides = try await request.jsonObject(limit: configuration.maximumBodySize, emptyAllowed: true)
        let params = ScheduleFiring.params(for: current, now: Date(), manual: true, overrides: overrides)
        do {
            var start = ExecutionRequest(dag: .null, params: params, ownerID: current.userID)
            start.traceParent = request.traceParent
            let record = try await runtime.startSavedPipeline(current.pipelineID, start)
            return JSONResponse(Representation.triggeredRun(record))
        } catch let error as ExecutionStartError {
            throw ExecutionRoutes.apiError(error, invalidTitle: "Invalid pipeline definition")
        }
    }

    /// `GET /schedules/{id}/next-runs?count=10`.
    func nextRuns(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        let current = try await schedule(request, context, .read)
        var reader = FieldReader(query: request)
        let count = reader.integer("count", in: 1...100) ?? 10
        try reader.finish()
        let timing = try Self.timing(of: current)
        let runs = current.status == .active || current.status == .paused ? timing.nextRuns(after: Date(), count: count) : []
        return JSONResponse([
            "schedule_id": .string(current.id), "next_runs": .array(runs.map { Representation.timestamp($0) }),
        ])
    }

    // MARK: Helpers

    private static let notFound = APIError(.notFound, code: "SCHEDULE_NOT_FOUND", message: "Schedule not found")

    /// The schedule the path names, when the caller may have `access` to it.
    private func schedule(_ request: Request, _ context: some RequestContext, _ access: Access) async throws -> ScheduleRecord {
        try await store.triggers.find(ScheduleRecord.self, in: context, for: try Caller(request), access, notFound: Self.notFound)
    }

    private static func timingFields(_ reader: inout FieldReader) -> TimingFields {
        if reader.value("type") == nil { reader.reject("type", "Field required") }
        return TimingFields(
            kind: reader.choice("type", as: ScheduleRecord.Kind.self, among: ScheduleRecord.Kind.allCases),
            expression: reader.string("expression", maxLength: 255),
            timezone: reader.string("timezone", maxLength: 64) ?? "UTC",
            runAt: reader.date("run_at"))
    }

    private static func timing(of schedule: ScheduleRecord) throws(APIError) -> ScheduleTiming {
        do {
            return try ScheduleTiming(
                kind: schedule.kind.rawValue, expression: schedule.expression, timezone: schedule.timezone, runAt: schedule.runAt)
        } catch {
            throw APIError(.badRequest, code: "INVALID_SCHEDULE", message: "Invalid schedule: \(error.message)")
        }
    }

    /// Checks the schedule's timing and plans its next run: `nil` when it is not active.
    private static func nextRun(of schedule: ScheduleRecord, after now: Date) throws(APIError) -> Date? {
        let timing = try timing(of: schedule)
        if schedule.kind == .oneTime {
            guard let runAt = schedule.runAt else {
                throw APIError(.badRequest, code: "INVALID_SCHEDULE", message: "Invalid schedule: run_at required for a one_time schedule")
            }
            if schedule.status == .active, runAt <= now {
                throw APIError(.badRequest, code: "INVALID_SCHEDULE", message: "Invalid schedule: run_at is in the past")
            }
        }
        return schedule.status == .active ? timing.next(after: now) : nil
    }
}
