import Hummingbird
import PipelineEngine
import Storage

/// What a route does with the record it looks up, for the ownership check.
enum Access {
    /// Reads it: its owner, the service, and — for system-owned pipelines — every user.
    case read
    /// Changes, runs or deletes it: its owner and the service.
    case change
}

/// What the schedule, webhook and event-trigger routes share: finding a record by the `id` path
/// parameter as the caller may see it, and deleting one.
extension TriggerStore {
    /// The trigger named by the request's `id`, when `caller` may have `access` to it; `notFound`
    /// otherwise, so that another user's trigger cannot be told from a missing one.
    func find<Trigger: StoredTrigger>(
        _ type: Trigger.Type, in context: some RequestContext, for caller: Caller, _ access: Access, notFound: APIError
    ) async throws -> Trigger {
        guard let id = UUIDText.normalized(context.parameters.get("id") ?? ""), let trigger = try await find(type, id: id) else {
            throw notFound
        }
        try caller.check(access, Ownership(ownerID: trigger.userID), hidden: notFound)
        return trigger
    }

    /// Deletes the trigger named by the request's `id` when `caller` may, or throws `notFound`.
    func delete<Trigger: StoredTrigger>(
        _ type: Trigger.Type, in context: some RequestContext, for caller: Caller, notFound: APIError
    ) async throws {
        let trigger = try await find(type, in: context, for: caller, .change, notFound: notFound)
        guard try await delete(type, id: trigger.id) else { throw notFound }
    }
}

/// What the trigger routes check before a trigger may name a pipeline.
extension DefinitionStore {
    /// The normalised id of a pipeline `caller` may start (its own or a system-owned one, any for
    /// the service); 404 `PIPELINE_NOT_FOUND` otherwise.
    func usablePipelineID(_ raw: String, by caller: Caller) async throws -> PipelineID {
        guard let id = PipelineID(parsing: raw), let pipeline = try await find(id: id),
            caller.canRead(Ownership(ownerID: pipeline.userID, systemOwned: pipeline.systemOwned))
        else { throw APIError.pipelineNotFound(raw) }
        return id
    }
}

extension Caller {
    /// Checks `access` to a resource owned as `ownership` says; `hidden` when the caller may not
    /// even see it.
    func check(_ access: Access, _ ownership: Ownership, hidden: APIError) throws(APIError) {
        switch access {
        case .read: guard canRead(ownership) else { throw hidden }
        case .change: try authorizeChange(ownership, hidden: hidden)
        }
    }
}
