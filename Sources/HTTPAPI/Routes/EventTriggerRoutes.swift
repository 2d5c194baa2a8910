import BudJSON
import Foundation
import Hummingbird
import PipelineEngine
import PipelineRuntime
import Storage

/// The `/event-triggers` routes. The admin UI's flat body (`event_type` and `filters` at the top
/// level) is read as well as a `config` object holding them.
struct EventTriggerRoutes: Sendable {
    let runtime: ExecutionRuntime
    let configuration: APIConfiguration

    private var store: PipelineStore { runtime.store }

    /// The event types a trigger may wait for, with their source and meaning.
    static let eventTypes: [(type: String, source: String, description: String)] = [
        ("model.onboarded", "budapp", "A model was onboarded"),
        ("model.deleted", "budapp", "A model was deleted"),
        ("benchmark.completed", "budapp", "A benchmark completed"),
        ("benchmark.failed", "budapp", "A benchmark failed"),
        ("cluster.healthy", "budcluster", "A cluster health check passed"),
        ("cluster.unhealthy", "budcluster", "A cluster health check failed"),
        ("deployment.created", "budcluster", "A deployment was created"),
        ("deployment.failed", "budcluster", "A deployment failed"),
    ]

    private struct ConfigFields {
        var eventType: String?
        var filters: JSONObject?
    }

    func create(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        var request = request
        var reader = FieldReader(body: try await request.jsonObject(limit: configuration.maximumBodySize))
        let pipelineID = reader.requiredString("workflow_id")
        let bodyOwner = reader.string("user_id").flatMap(UUIDText.normalized)
        let name = reader.requiredString("name", maxLength: 255)
        let config = reader.nested("config", Self.configFields) ?? Self.configFields(&reader)
        let params = reader.object("params") ?? [:]
        let enabled = reader.bool("enabled") ?? true
        if name?.isEmpty == true { reader.reject("name", "String should have at least 1 character") }
        if config.eventType == nil, reader.problems.isEmpty { reader.reject("config", "event_type is required") }
        try reader.finish()
        let caller = try Caller(request)
        let owner = try caller.owner(naming: bodyOwner)
        let pipeline = try await store.definitions.usablePipelineID(pipelineID ?? "", by: caller)
        let eventType = try Self.supported(config.eventType ?? "")
        let now = Date()
        let record = EventTriggerRecord(
            id: UUIDText.unguessable(), pipelineID: pipeline, name: name ?? "", eventType: eventType,
            filters: config.filters ?? [:], params: params, enabled: enabled, userID: owner, createdAt: now,
            updatedAt: now)
        try await store.triggers.insert(record)
        return JSONResponse(Representation.eventTrigger(record, masking: runtime.configuration.secretKeys), status: .created)
    }

    func list(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        var reader = FieldReader(query: request)
        let filter = TriggerFilter(
            pipelineID: reader.uuid("workflow_id").map { PipelineID($0) }, enabled: reader.bool("enabled"),
            eventType: reader.string("event_type"),
            ownerID: try Caller(request).userID)
        try reader.finish()
        let triggers = try await store.triggers.list(EventTriggerRecord.self, matching: filter)
        return JSONResponse(.array(triggers.map { Representation.eventTrigger($0, masking: runtime.configuration.secretKeys) }))
    }

    func types(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        JSONResponse(
            .array(
                Self.eventTypes.map { ["type": .string($0.type), "source": .string($0.source), "description": .string($0.description)] }))
    }

    func get(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        JSONResponse(
            Representation.eventTrigger(try await eventTrigger(request, context, .read), masking: runtime.configuration.secretKeys))
    }

    /// `PUT /event-triggers/{id}`: `name`, `config` (flat or nested; replaces type and filters it
    /// names), `params`, `enabled`, each optional.
    func update(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        var current = try await eventTrigger(request, context, .change)
        var request = request
        var reader = FieldReader(body: try await request.jsonObject(limit: configuration.maximumBodySize))
        let name = reader.string("name", maxLength: 255)
        let config = reader.nested("config", Self.configFields) ?? Self.configFields(&reader)
        let params = reader.object("params")
        let enabled = reader.bool("enabled")
        if name?.isEmpty == true { reader.reject("name", "String should have at least 1 character") }
        let expectedVersion = reader.integer("version", in: 1...Int(Int32.max))
        try reader.finish()
        let version = expectedVersion ?? current.version
        if let name { current.name = name }
        if let eventType = config.eventType { current.eventType = try Self.supported(eventType) }
        if let filters = config.filters { current.filters = filters }
        if let params { current.params = runtime.configuration.secretKeys.restoringMasked(params, from: current.params) }
        if let enabled { current.enabled = enabled }
        current.updatedAt = Date()
        return JSONResponse(
            Representation.eventTrigger(
                try await store.triggers.update(current, expectedVersion: version), masking: runtime.configuration.secretKeys))
    }

    func delete(_ request: Request, context: some RequestContext) async throws -> NoContent {
        try await store.triggers.delete(EventTriggerRecord.self, in: context, for: try Caller(request), notFound: Self.notFound)
        return NoContent()
    }

    // MARK: Helpers

    private static let notFound = APIError(.notFound, code: "EVENT_TRIGGER_NOT_FOUND", message: "Event trigger not found")

    /// The event trigger the path names, when the caller may have `access` to it.
    private func eventTrigger(_ request: Request, _ context: some RequestContext, _ access: Access) async throws -> EventTriggerRecord {
        try await store.triggers.find(EventTriggerRecord.self, in: context, for: try Caller(request), access, notFound: Self.notFound)
    }

    private static func configFields(_ reader: inout FieldReader) -> ConfigFields {
        ConfigFields(eventType: reader.string("event_type", maxLength: 255), filters: reader.object("filters"))
    }

    private static func supported(_ eventType: String) throws(APIError) -> String {
        guard eventTypes.contains(where: { $0.type == eventType }) else {
            let known = eventTypes.map { "'\($0.type)'" }.joined(separator: ", ")
            throw APIError(
                .badRequest, code: "UNSUPPORTED_EVENT_TYPE", message: "Unsupported event type: \(eventType). Supported: [\(known)]")
        }
        return eventType
    }
}
