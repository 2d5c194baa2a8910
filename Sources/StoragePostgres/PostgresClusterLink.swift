import CLibPQ
import Foundation
public import Storage
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

extension PostgresDatabase {
    /// Joins the group of processes on this database (see ``PostgresClusterLink``); returns once
    /// this process is a member, or throws when the database cannot be reached.
    public func joinCluster(workerID: String) async throws -> (any ClusterLink)? {
        try await PostgresClusterLink.join(url: connectionInfo, workerID: workerID) { [self] payloads in
            try await sendNotifications(payloads)
        }
    }

    /// Sends `payloads` on the group's channel, in order, in one statement.
    func sendNotifications(_ payloads: [String]) async throws {
        guard !payloads.isEmpty else { return }
        for payload in payloads where payload.utf8.count > maximumClusterPayloadBytes || payload.utf8.contains(0) {
            throw DatabaseError.statement(
                code: "22023", message: "a cluster message of \(payload.utf8.count) bytes is too long or holds NUL", sql: "pg_notify")
        }
        let list = "[" + payloads.map(Self.jsonString).joined(separator: ",") + "]"
        try await transaction { session in
            _ = try session.query(
                "SELECT count(pg_notify($1, p.n || ':' || p.payload)) AS sent FROM json_array_elements_text($2::json) WITH ORDINALITY AS p(payload, n)",
                .text(PostgresClusterLink.channel), .text(list))
        }
    }

    /// `text` as a JSON string literal.
    private static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// A process's place in the group of processes that share one PostgreSQL database.
///
/// One thread owns two connections of its own (outside the pool):
/// - the *listening* connection: `LISTEN`s on the group's channel, and holds a session advisory
///   lock on the process's row in `cluster_member` for as long as it lives;
/// - the *watching* connection: waits, with a lock request that the server answers only when the
///   holder's session ends, on the advisory lock of the member after this one in the ring (see
///   ``ClusterRing``). When that request is granted the member is gone: its row is deleted, the
///   others are told, and this process hands back its claims (``ClusterSignal/memberGone(workerID:)``).
///
/// The thread waits on both sockets at once (`poll`, a quarter of a second at most, so that it
/// notices ``leave()``). A lost connection is opened again with a growing pause; the listening
/// one then joins anew (a new row and lock) and reports ``ClusterSignal/reconnected``.
/// Every notification is `<n>:<payload>`, `n` its place in its statement: PostgreSQL delivers
/// identical notifications of one transaction once, and two equal payloads are still two
/// messages. Membership changes travel as payloads starting with `~`, which the link keeps to
/// itself; a notification of another form is not one of ours and is dropped.
final class PostgresClusterLink: ClusterLink, Sendable {
    /// The `LISTEN` channel every process of the group uses.
    static let channel = "budpipeline"
    /// The first key of every member's advisory lock (the second is its row id): `BPCL`.
    static let lockClass: Int32 = 0x4250_434C

    let signals: AsyncStream<ClusterSignal>
    private let stopped: Atomic<Bool>
    private let finished: AsyncStream<Void>
    private let sender: @Sendable ([String]) async throws -> Void

    private init(
        signals: AsyncStream<ClusterSignal>, finished: AsyncStream<Void>, sender: @escaping @Sendable ([String]) async throws -> Void
    ) {
        self.signals = signals
        self.stopped = Atomic(false)
        self.finished = finished
        self.sender = sender
    }

    static func join(url: String, workerID: String, send: @escaping @Sendable ([String]) async throws -> Void) async throws
        -> PostgresClusterLink
    {
        let (signals, signalSink) = AsyncStream<ClusterSignal>.makeStream(bufferingPolicy: .bufferingNewest(100_000))
        let (finished, finishedSink) = AsyncStream<Void>.makeStream()
        let (joined, joinedSink) = AsyncStream<Result<Void, DatabaseError>>.makeStream()
        let link = PostgresClusterLink(signals: signals, finished: finished, sender: send)
        let thread = Thread { [link] in
            var loop = ClusterListenerLoop(url: url, workerID: workerID, signals: signalSink)
            loop.run(isStopped: { link.stopped.load(ordering: .acquiring) }, joined: joinedSink)
            signalSink.finish()
            finishedSink.finish()
        }
        thread.name = "bp-cluster"
        thread.start()
        for await outcome in joined {
            if case .failure(let error) = outcome {
                await link.leave()
                throw error
            }
            break
        }
        return link
    }

    func send(_ payloads: [String]) async throws {
        try await sender(payloads)
    }

    func leave() async {
        stopped.store(true, ordering: .releasing)
        for await _ in finished {}
    }
}

/// The thread's side of ``PostgresClusterLink``: its connections and what it knows of the group.
/// Used by that one thread only.
private struct ClusterListenerLoop {
    let url: String
    let workerID: String
    let signals: AsyncStream<ClusterSignal>.Continuation

    var listener: PostgresConnection?
    var watcher: PostgresConnection?
    /// This process's row, while the listening connection holds its lock.
    var memberID: Int64?
    /// The member the watching connection waits on, while its lock request is out.
    var watching: ClusterMember?
    /// Whether the ring must be looked at again (a member joined or left, a connection came back).
    var membershipChanged = true
    /// Whether this process was a member before: joining again means messages were missed.
    var wasMember = false
    var pause: Duration = .milliseconds(100)

    init(url: String, workerID: String, signals: AsyncStream<ClusterSignal>.Continuation) {
        self.url = url
        self.workerID = workerID
        self.signals = signals
    }

    mutating func run(isStopped: () -> Bool, joined: AsyncStream<Result<Void, DatabaseError>>.Continuation) {
        var reportedJoin = false
        while !isStopped() {
            do throws(DatabaseError) {
                if listener == nil { try joinGroup() }
                if !reportedJoin {
                    joined.yield(.success(()))
                    joined.finish()
                    reportedJoin = true
                }
                if watcher == nil { watcher = try PostgresConnection(url: url) }
                if membershipChanged { try watchNext() }
                try waitForTraffic()
                pause = .milliseconds(100)
            } catch {
                if !reportedJoin {
                    joined.yield(.failure(error))
                    joined.finish()
                    closeAll()
                    return
                }
                drop(afterFailureOf: error)
                sleep(for: pause, unless: isStopped)
                pause = min(pause * 2, .seconds(5))
            }
        }
        leaveGroup()
    }

    // MARK: Joining and leaving

    /// Opens the listening connection, adds this process's row and takes its lock.
    private mutating func joinGroup() throws(DatabaseError) {
        let connection = try PostgresConnection(url: url)
        do throws(DatabaseError) {
            try connection.executeScript("LISTEN \(PostgresClusterLink.channel)")
            let rows = try connection.query(
                SQLStatement("INSERT INTO cluster_member (worker_id, joined_at) VALUES ($1, now()) RETURNING id", [.text(workerID)]))
            guard let id = try? rows.first?.int("id") else { throw DatabaseError.connection("the member row has no id") }
            _ = try connection.query(Self.lock("pg_advisory_lock", id: Int64(id)))
            _ = try connection.query(Self.announcement("~join"))
            listener = connection
            memberID = Int64(id)
            membershipChanged = true
            if wasMember { signals.yield(.reconnected) }
            wasMember = true
        } catch {
            connection.close()
            throw error
        }
    }

    /// Leaves on purpose: deletes the row and tells the others (the lock ends with the connection).
    private mutating func leaveGroup() {
        if let listener, let memberID {
            _ = try? listener.query(SQLStatement("DELETE FROM cluster_member WHERE id = $1", [.integer(Int(memberID))]))
            _ = try? listener.query(Self.announcement("~gone"))
        }
        closeAll()
    }

    private mutating func closeAll() {
        cancelWatch()
        watcher?.close()
        watcher = nil
        listener?.close()
        listener = nil
        memberID = nil
    }

    /// Closes whichever connection failed; the loop opens it again.
    private mutating func drop(afterFailureOf error: DatabaseError) {
        if let listener, PQstatus(listener.connection) != CONNECTION_OK || error.kind == .connection {
            listener.close()
            self.listener = nil
            memberID = nil
        }
        watcher?.close()
        watcher = nil
        watching = nil
        membershipChanged = true
    }

    // MARK: Watching

    /// Points the watching connection at the member after this one, withdrawing its previous
    /// request first.
    private mutating func watchNext() throws(DatabaseError) {
        guard let watcher, let memberID else { return }
        cancelWatch()
        membershipChanged = false
        let rows = try watcher.query(SQLStatement("SELECT id, worker_id FROM cluster_member ORDER BY id"))
        let members = rows.compactMap { row -> ClusterMember? in
            guard let id = try? row.int("id"), let worker = try? row.string("worker_id") else { return nil }
            return ClusterMember(id: Int64(id), workerID: worker)
        }
        guard let next = ClusterRing.watched(by: memberID, among: members) else { return }
        let request = Self.lock("pg_advisory_lock", id: next.id)
        let sent = request.sql.withCString { sql in
            PQsendQueryParams(watcher.connection, sql, 0, nil, nil, nil, nil, 0)
        }
        guard sent == 1 else { throw DatabaseError.connection("could not wait on a member's lock") }
        watching = next
    }

    /// Withdraws the outstanding lock request, if any, and reads its answer. A request granted
    /// just before it was withdrawn still means its member is gone.
    private mutating func cancelWatch() {
        guard let watcher, let member = watching else { return }
        watching = nil
        if let cancel = PQgetCancel(watcher.connection) {
            var message = [CChar](repeating: 0, count: 256)
            _ = PQcancel(cancel, &message, Int32(message.count))
            PQfreeCancel(cancel)
        }
        var granted = false
        while let result = PQgetResult(watcher.connection) {
            if PQresultStatus(result) == PGRES_TUPLES_OK { granted = true }
            PQclear(result)
        }
        if granted { memberGone(member) }
    }

    /// The member the watching connection waited on is gone: its lock was granted. It died when
    /// its row is still there (a member that leaves deletes its row first); whoever deletes the
    /// row reports it, so one death is reported once.
    private mutating func memberGone(_ member: ClusterMember) {
        guard let watcher else { return }
        let deleted = try? watcher.query(SQLStatement("DELETE FROM cluster_member WHERE id = $1 RETURNING id", [.integer(Int(member.id))]))
        _ = try? watcher.query(Self.lock("pg_advisory_unlock", id: member.id))
        membershipChanged = true
        guard deleted?.isEmpty == false else { return }
        _ = try? watcher.query(Self.announcement("~gone"))
        signals.yield(.memberGone(workerID: member.workerID))
    }

    // MARK: Waiting

    /// Waits up to a quarter of a second for either connection to have something to read, and
    /// reads it.
    private mutating func waitForTraffic() throws(DatabaseError) {
        guard let listener else { return }
        // Notifications that came in with the answer to a statement of this connection are
        // already read: the socket would not say so.
        takeNotifications(from: listener)
        var sockets = [pollfd(fd: PQsocket(listener.connection), events: Int16(POLLIN), revents: 0)]
        if let watcher, watching != nil {
            sockets.append(pollfd(fd: PQsocket(watcher.connection), events: Int16(POLLIN), revents: 0))
        }
        let ready = poll(&sockets, nfds_t(sockets.count), 250)
        guard ready > 0 else { return }
        if sockets[0].revents != 0 { try readNotifications(from: listener) }
        if sockets.count > 1, sockets[1].revents != 0 { try readWatchAnswer() }
    }

    private mutating func readNotifications(from listener: PostgresConnection) throws(DatabaseError) {
        guard PQconsumeInput(listener.connection) == 1, PQstatus(listener.connection) == CONNECTION_OK else {
            throw DatabaseError.connection("the listening connection was lost")
        }
        takeNotifications(from: listener)
    }

    /// Hands on the notifications libpq has read.
    private mutating func takeNotifications(from listener: PostgresConnection) {
        while let notification = PQnotifies(listener.connection) {
            let text = notification.pointee.extra.map { String(cString: $0) } ?? ""
            PQfreemem(notification)
            guard let separator = text.firstIndex(of: ":"), text[..<separator].allSatisfy(\.isNumber) else { continue }
            let payload = String(text[text.index(after: separator)...])
            if payload.hasPrefix("~") {
                membershipChanged = true
            } else {
                signals.yield(.message(payload))
            }
        }
    }

    private mutating func readWatchAnswer() throws(DatabaseError) {
        guard let watcher, let member = watching else { return }
        guard PQconsumeInput(watcher.connection) == 1 else { throw DatabaseError.connection("the watching connection was lost") }
        guard PQisBusy(watcher.connection) == 0 else { return }
        var granted = false
        var failed = false
        while let result = PQgetResult(watcher.connection) {
            switch PQresultStatus(result) {
            case PGRES_TUPLES_OK: granted = true
            default: failed = true
            }
            PQclear(result)
        }
        watching = nil
        if granted {
            memberGone(member)
        } else if failed {
            throw DatabaseError.connection("the wait on a member's lock failed")
        }
    }

    // MARK: Statements

    private static func lock(_ function: String, id: Int64) -> SQLStatement {
        // Literal keys: the watching request is sent without parameters, outside pipeline mode.
        SQLStatement("SELECT \(function)(\(PostgresClusterLink.lockClass), \(Int32(truncatingIfNeeded: id)))")
    }

    private static func announcement(_ payload: String) -> SQLStatement {
        SQLStatement("SELECT pg_notify($1, $2)", [.text(PostgresClusterLink.channel), .text("0:" + payload)])
    }

    private func sleep(for duration: Duration, unless isStopped: () -> Bool) {
        var left = duration
        while left > .zero, !isStopped() {
            let step = min(left, .milliseconds(100))
            Thread.sleep(forTimeInterval: Double(step.components.attoseconds) / 1e18 + Double(step.components.seconds))
            left -= step
        }
    }
}
