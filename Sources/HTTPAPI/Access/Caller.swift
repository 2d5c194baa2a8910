import HTTPTypes
import Hummingbird
import PipelineEngine

/// Who is calling, as far as ownership goes (see docs/security.md, "Who may do what").
///
/// The service caller is the gateway (budapp) or an operator: it is authenticated with the app API
/// token (or the server runs unauthenticated on loopback) and sends no `X-User-ID`. It acts on
/// every resource and may act for a user. A user caller sends `X-User-ID` and acts only on its
/// own resources; it reads system-owned pipelines, and nothing else of anyone else's.
public enum Caller: Sendable, Equatable, CustomStringConvertible {
    case service
    case user(String)

    /// The header that makes a caller a user.
    static let userHeader = HTTPField.Name("X-User-ID")!

    /// The caller of `request`: a user when `X-User-ID` holds a UUID (any case, stored
    /// lower-case); the service only when the header is absent. Any other value — empty or blank
    /// included, as a gateway forwarding a missing user might send — is refused (400
    /// `INVALID_USER_ID`) rather than read as absent, which would widen the caller's reach to
    /// everything.
    init(_ request: Request) throws(APIError) {
        let values = request.headers[values: Self.userHeader]
        guard let text = values.first, values.count == 1 || values.allSatisfy({ $0 == text }) else {
            if values.isEmpty {
                self = .service
                return
            }
            throw APIError(.badRequest, code: "INVALID_USER_ID", message: "X-User-ID is given more than once with different values")
        }
        guard let id = UUIDText.normalized(text) else {
            throw APIError(.badRequest, code: "INVALID_USER_ID", message: "X-User-ID is not a UUID")
        }
        self = .user(id)
    }

    /// The user, for a user caller.
    public var userID: String? {
        if case .user(let id) = self { id } else { nil }
    }

    public var description: String {
        switch self {
        case .service: "service"
        case .user(let id): "user \(id)"
        }
    }

    /// Whether the caller may see a resource owned as `ownership` says.
    public func canRead(_ ownership: Ownership) -> Bool {
        switch self {
        case .service: true
        case .user(let id): ownership.ownerID == id || ownership.systemOwned
        }
    }

    /// Checks that the caller may change (or run, or delete) a resource owned as `ownership` says:
    /// a resource it may not even see is `hidden` (answer it as not found), a system-owned one it
    /// only reads is refused with 403 `SYSTEM_OWNED`.
    public func authorizeChange(_ ownership: Ownership, hidden: APIError) throws(APIError) {
        switch self {
        case .service: return
        case .user(let id):
            if ownership.ownerID == id, !ownership.systemOwned { return }
            guard ownership.systemOwned else { throw hidden }
            throw APIError(
                .forbidden, code: "SYSTEM_OWNED", message: "This resource is system-owned: only the service may change it")
        }
    }

    /// The owner of a resource the caller creates, given the body's `user_id` (already read as a
    /// UUID, `nil` when absent): the service may name any user (or none: the resource is the
    /// service's); a user may only name itself.
    public func owner(naming bodyUserID: String?) throws(APIError) -> String? {
        switch self {
        case .service: return bodyUserID
        case .user(let id):
            guard bodyUserID == nil || bodyUserID == id else {
                throw APIError(
                    .forbidden, code: "OWNER_NOT_ALLOWED", message: "Only the service may create a resource for another user (user_id)")
            }
            return id
        }
    }

    /// Checks that the caller may mark a resource system-owned: only the service may.
    public func authorizeSystemOwned(_ systemOwned: Bool) throws(APIError) {
        guard systemOwned, case .user = self else { return }
        throw APIError(.forbidden, code: "SYSTEM_OWNED", message: "Only the service may create a system-owned resource")
    }
}

/// Whose a stored resource is: its owner (`nil`: the service's) and whether it is system-owned
/// (readable by every user, changed only by the service).
public struct Ownership: Sendable, Equatable {
    public var ownerID: String?
    public var systemOwned: Bool

    public init(ownerID: String?, systemOwned: Bool = false) {
        self.ownerID = ownerID
        self.systemOwned = systemOwned
    }
}
