import BudJSON
import Foundation
import HTTPTypes
import Hummingbird
import PipelineEngine
import PipelineRuntime
import Storage

/// `POST /validate` and the `/pipelines` routes (also under `/api/v1/pipeline`, `/workflows` and
/// budapp's `/budpipeline` proxy names).
struct PipelineRoutes: Sendable {
    let runtime: ExecutionRuntime
    let configuration: APIConfiguration

    private var store: PipelineStore { runtime.store }

    func validate(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        var request = request
        var reader = FieldReader(body: try await request.jsonObject(limit: configuration.maximumBodySize))
        let dag = reader.requiredObject("dag")
        try reader.finish()
        return JSONResponse(await checkedReport(dag ?? [:]).json)
    }

    /// The engine's report on `dag`, with the plugins' own checks of literal step parameters
    /// (`validate_params`) added when the engine found nothing wrong.
    private func checkedReport(_ dag: JSONObject) async -> ValidationReport {
        var (report, compiled) = PipelineCompiler.compile(.object(dag), catalog: runtime.catalog)
        if let compiled {
            let errors = await runtime.pluginParameterErrors(in: compiled)
            if !errors.isEmpty {
                report.errors += errors
                report.stepCount = 0
            }
        }
        return report
    }

    func create(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        var request = request
        var reader = FieldReader(body: try await request.jsonObject(limit: configuration.maximumBodySize))
        let dag = reader.requiredObject("dag")
        let name = reader.string("name", maxLength: 255)
        let icon = reader.string("icon", maxLength: 255)
        let bodyOwner = reader.string("user_id").flatMap(UUIDText.normalized)
        let systemOwned = reader.bool("system_owned") ?? false
        try reader.finish()
        let caller = try Caller(request)
        let owner = try caller.owner(naming: bodyOwner)
        try caller.authorizeSystemOwned(systemOwned)
        let checked = try await check(dag: dag ?? [:], nameOverride: name, existingName: nil)
        let now = Date()
        let record = PipelineDefinitionRecord(
            id: .generate(), name: checked.name, description: nil, icon: icon, dag: .object(dag ?? [:]),
            status: checked.status, userID: owner, systemOwned: systemOwned, stepCount: checked.stepCount, createdBy: "api",
            createdAt: now, updatedAt: now)
        do {
            try await store.definitions.insert(record)
        } catch let error as DatabaseError where error.kind == .uniqueViolation {
            throw Self.duplicateName(checked.name)
        }
        return JSONResponse(
            Representation.pipeline(PipelineDefinitionSummary(record: record, executionCount: 0, lastExecutionAt: nil)), status: .created)
    }

    func list(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        var reader = FieldReader(query: request)
        let includeSystem = reader.bool("include_system") ?? false
        try reader.finish()
        let summaries = try await store.definitions.summaries(ownerID: try Caller(request).userID, includeSystem: includeSystem)
        return JSONResponse(.array(summaries.map(Representation.pipeline)))
    }

    func get(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        JSONResponse(Representation.pipeline(try await summary(request, context: context, .read)))
    }

    func update(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        let current = try await summary(request, context: context, .change).record
        var request = request
        var reader = FieldReader(body: try await request.jsonObject(limit: configuration.maximumBodySize))
        let dag = reader.requiredObject("dag")
        let name = reader.string("name", maxLength: 255)
        let icon = reader.string("icon", maxLength: 255)
        let expectedVersion = reader.integer("version", in: 1...Int(Int32.max)) ?? current.version
        try reader.finish()
        let checked = try await check(dag: dag ?? [:], nameOverride: name, existingName: current.name)
        var updated = current
        updated.name = checked.name
        updated.dag = .object(dag ?? [:])
        updated.status = checked.status
        updated.stepCount = checked.stepCount
        updated.updatedAt = Date()
        if let icon { updated.icon = icon }
        if let description = dag?["description"] { updated.description = description.stringValue }
        let stored: PipelineDefinitionRecord
        do {
            stored = try await store.definitions.update(updated, expectedVersion: expectedVersion)
        } catch let error as DatabaseError where error.kind == .uniqueViolation {
            throw Self.duplicateName(checked.name)
        } catch StoreError.notFound {
            throw APIError.pipelineNotFound(current.id.rawValue)
        }
        let summary = try await store.definitions.summary(id: stored.id)
        return JSONResponse(
            Representation.pipeline(summary ?? PipelineDefinitionSummary(record: stored, executionCount: 0, lastExecutionAt: nil)))
    }

    func delete(_ request: Request, context: some RequestContext) async throws -> NoContent {
        let current = try await summary(request, context: context, .change).record
        guard try await store.definitions.delete(id: current.id) else { throw APIError.pipelineNotFound(current.id.rawValue) }
        return NoContent()
    }

    // MARK: Helpers

    /// The pipeline named by the `id` path parameter, when the caller may have `access` to it:
    /// the service to every pipeline; a user reads its own and the system-owned ones and changes
    /// only its own. Another user's pipeline is not found; a system-owned one a user may not
    /// change is 403 `SYSTEM_OWNED`.
    func summary(_ request: Request, context: some RequestContext, _ access: Access) async throws -> PipelineDefinitionSummary {
        let raw = context.parameters.get("id") ?? ""
        guard let id = PipelineID(parsing: raw), let summary = try await store.definitions.summary(id: id) else {
            throw APIError.pipelineNotFound(raw)
        }
        try Caller(request).check(
            access, Ownership(ownerID: summary.record.userID, systemOwned: summary.record.systemOwned), hidden: .pipelineNotFound(raw))
        return summary
    }

    private struct CheckedDefinition {
        var name: String
        var status: PipelineDefinitionRecord.Status
        var stepCount: Int
    }

    /// A DAG without steps is a draft and needs only a name; any other is validated in full.
    private func check(dag: JSONObject, nameOverride: String?, existingName: String?) async throws -> CheckedDefinition {
        let steps = dag["steps"]?.arrayValue ?? []
        let name = nameOverride ?? dag["name"]?.stringValue ?? existingName
        if steps.isEmpty {
            guard let name, !name.isEmpty else { throw APIError.validationFailed(["name: Field required"]) }
            return CheckedDefinition(name: name, status: .draft, stepCount: 0)
        }
        let report = await checkedReport(dag)
        guard report.valid else { throw APIError.validationFailed(report.errors) }
        guard let name, !name.isEmpty else { throw APIError.validationFailed(["name: Field required"]) }
        return CheckedDefinition(name: name, status: .active, stepCount: report.stepCount)
    }

    private static func duplicateName(_ name: String) -> APIError {
        let message = "A pipeline with the name '\(name)' already exists"
        return APIError(
            .conflict, code: "DUPLICATE_PIPELINE_NAME", message: message,
            detail: ["error": "Duplicate pipeline name", "message": .string(message)])
    }
}
