import Hummingbird
import Storage

/// What the schedule, webhook and event-trigger routes share: finding a record by the `id` path
/// parameter, deleting one, and checking that a pipeline exists.
extension PipelineStore {
    /// The trigger named by the request's `id`, or `notFound`.
    func trigger<Trigger: StoredTrigger>(
        _ type: Trigger.Type, in context: some RequestContext, notFound: APIError
    ) async throws -> Trigger {
        guard let id = PipelineRoutes.uuid(context.parameters.get("id") ?? ""), let trigger = try await trigger(type, id: id) else {
            throw notFound
        }
        return trigger
    }

    /// Deletes the trigger named by the request's `id`, or throws `notFound`.
    func deleteTrigger<Trigger: StoredTrigger>(_ type: Trigger.Type, in context: some RequestContext, notFound: APIError) async throws {
        guard let id = PipelineRoutes.uuid(context.parameters.get("id") ?? ""), try await deleteTrigger(type, id: id) else {
            throw notFound
        }
    }

    /// The normalised id of an existing pipeline; 404 `PIPELINE_NOT_FOUND` otherwise.
    func existingPipelineID(_ raw: String) async throws -> String {
        guard let id = PipelineRoutes.uuid(raw), try await definition(id: id) != nil else { throw APIError.pipelineNotFound(raw) }
        return id
    }
}
