public import Foundation

/// What the processes sharing one database tell each other, as one process receives it.
public enum ClusterSignal: Sendable, Equatable {
    /// A message some process sent with ``ClusterLink/send(_:)`` (this one included).
    case message(String)
    /// A process sharing the database is gone: its connection to the database ended (it died,
    /// or lost the network) without it leaving. Its claimed work is free to be taken over.
    case memberGone(workerID: String)
    /// This process was cut off from the others for a while (its listening connection was lost and
    /// is back): messages sent meanwhile did not arrive, so whatever they would have said must be
    /// looked up again.
    case reconnected
}

/// A process's membership in the group of processes that share one database, and the channel
/// they talk over (PostgreSQL: `LISTEN/NOTIFY` and advisory locks; see docs/operations.md,
/// "Scaling out").
///
/// A link joins the group when it opens and leaves it with ``leave()``; a process that dies
/// without leaving is reported to another member as ``ClusterSignal/memberGone(workerID:)``
/// as soon as the database notices its connection closed.
public protocol ClusterLink: Sendable {
    /// Everything this process receives, in the order the database delivered it; ends after
    /// ``leave()``.
    var signals: AsyncStream<ClusterSignal> { get }

    /// Sends each payload to every member, in order, after which they arrive as
    /// ``ClusterSignal/message(_:)``. A payload longer than ``maximumPayloadBytes`` is refused.
    func send(_ payloads: [String]) async throws

    /// Leaves the group: the others are told, and the link's connections close.
    func leave() async
}

/// The longest message a link carries, in UTF-8 bytes (PostgreSQL's `NOTIFY` takes fewer than
/// 8,000).
public let maximumClusterPayloadBytes = 7_900

/// A member of the group as the store lists it: its row and the worker id it claims work as.
public struct ClusterMember: Sendable, Equatable {
    /// Also the key of the advisory lock the member holds while it lives.
    public var id: Int64
    public var workerID: String

    public init(id: Int64, workerID: String) {
        self.id = id
        self.workerID = workerID
    }
}

/// Who watches whom: the members form a ring in the order of their ids and each watches the next
/// one (the last watches the first), so that every member is watched by exactly one other with one
/// connection each, however many there are. When a member goes, its watcher moves on to the one
/// after it: a member that died while its own watcher was gone too is found by the next.
public enum ClusterRing {
    /// The member `self` watches among `members` (itself included or not); `nil` when it is alone.
    public static func watched(by selfID: Int64, among members: [ClusterMember]) -> ClusterMember? {
        let others = members.filter { $0.id != selfID }.sorted { $0.id < $1.id }
        return others.first { $0.id > selfID } ?? others.first
    }
}
