import BudJSON
import Hummingbird
import PipelineRuntime
import PluginSchema

/// The actions catalogue: built-in actions and those of the loaded plugins, with the metadata the
/// admin UI renders its forms from.
struct ActionRoutes: Sendable {
    let runtime: ExecutionRuntime
    let configuration: APIConfiguration

    /// Icon names for the categories of `GET /actions`, drawn by the admin UI; any other category gets
    /// `box` (so do `Model Operations` and `Cluster Operations`: the keys `Model` and `Cluster` miss them).
    private static let categoryIcons = [
        "Control Flow": "git-branch", "Model": "cpu", "Cluster": "server", "Deployment": "rocket", "Integration": "plug",
        "Simulation": "beaker",
    ]

    func list(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        let actions = runtime.catalog.all
        let categories = Dictionary(grouping: actions, by: \.category).sorted { $0.key < $1.key }.map { name, members in
            JSONValue.object([
                "name": .string(name), "icon": .string(Self.categoryIcons[name] ?? "box"),
                "actions": .array(members.map(Representation.action)),
            ])
        }
        return JSONResponse([
            "actions": .array(actions.map(Representation.action)), "categories": .array(categories), "total": .int(actions.count),
        ])
    }

    func get(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        let type = context.parameters.get("type") ?? ""
        guard let metadata = runtime.catalog.metadata(for: type) else { throw Self.notFound(type) }
        return JSONResponse(Representation.action(metadata))
    }

    /// `POST /actions/validate` with `action_type` (or the UI's `actionType`) and `params`.
    func validate(_ request: Request, context: some RequestContext) async throws -> JSONResponse {
        var request = request
        var reader = FieldReader(body: try await request.jsonObject(limit: configuration.maximumBodySize))
        let type = reader.string("action_type", maxLength: 255) ?? reader.string("actionType", maxLength: 255) ?? ""
        let params = reader.object("params") ?? [:]
        try reader.finish()
        guard let errors = await runtime.catalog.validate(params: params, for: type) else { throw Self.notFound(type) }
        return JSONResponse(["valid": .bool(errors.isEmpty), "errors": .array(errors.map(JSONValue.string))])
    }

    private static func notFound(_ type: String) -> APIError {
        APIError(.notFound, code: "ACTION_NOT_FOUND", message: "Action '\(type)' not found")
    }
}
