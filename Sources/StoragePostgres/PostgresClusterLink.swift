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
///   lock on the process's row in `cluster_member` for as long as it lives (the row and the lock
///   are made in one statement, so no other process sees the row unlocked);
/// - the *watching* connection: waits, with a lock request that the server grants only when the
///   holder's session ends, on the advisory lock of the member after this one in the ring (see
///   ``ClusterRing``). When that request is granted the member is gone: whoever deletes its row
///   tells the others and reports ``ClusterSignal/memberGone(workerID:)`` — unless the member
///   joined before the database server last started (a restart ended every session: the member
///   may be alive and joining again, so its stale row is removed and nothing is reported; its
///   claims run out as usual if it is not).
///
/// The thread waits on both sockets at once (`poll`, a quarter of a second at most, so that it
/// notices ``leave()``). A failure of one connection closes that one only: a lost watching
/// connection is opened again without touching the membership; a lost listening one joins anew (a
/// new row and lock), at once the first time, then after a growing pause, and reports
/// ``ClusterSignal/reconnected``. Both connections use TCP keepalives and no statement, lock or
/// idle timeouts, so that neither is cut while it waits.
///
/// Every notification is `<n>:<payload>`, `n` its place in its statement: PostgreSQL delivers
/// identical notifications of one transaction once, and two equal payloads are still two
/// messages. Membership changes travel as payloads starting with `~`, which the link keeps to
/// itself; a notification of another form is not one of ours and is dropped.
final class PostgresClusterLink: ClusterLink, Sendable {
    /// The `LISTEN` channel every process of the group uses.
    static let channel = "budpipeline"
    /// The first key of every member's advisory lock (the second is its row id): `BPCL`.
    static let lockClass: Int32 = 0x4250_434C
    /// The most signals waiting to be handled; beyond it the oldest messages are dropped (and the
    /// process is told, as after a reconnect), never a member's death.
    static let signalBuffer = 10_000

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
        let (signals, signalSink) = AsyncStream<ClusterSignal>.makeStream(bufferingPolicy: .bufferingNewest(signalBuffer))
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
        var outcome: Result<Void, DatabaseError>?
        for await first in joined {
            outcome = first
            break
        }
        switch outcome {
        case .success?:
            return link
        case .failure(let error)?:
            await link.leave()
            throw error
        case nil:
            // Cancelled while joining.
            await link.leave()
            throw CancellationError()
        }
    }

    func send(_ payloads: [String]) async throws {
        try await sender(payloads)
    }

    func leave() async {
        stopped.store(true, ordering: .releasing)
        for await _ in finished {}
    }
}

/// A member as the watching connection sees it.
private struct WatchedMember: Equatable {
    var member: ClusterMember
    /// Whether it joined after the database server last started.
    var joinedSinceServerStart: Bool
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
    var watching: WatchedMember?
    /// Whether the ring must be looked at again (a member joined or left, a connection came back).
    var membershipChanged = true
    /// When the ring was last looked at: at most every ``rebuildInterval``, however many members
    /// come and go (or whatever arrives on the channel).
    var lastRebuild = ContinuousClock.now - .seconds(1)
    /// Whether this process was a member before: joining again means messages were missed.
    var wasMember = false
    /// When to try again a connection that failed, and the pause after the next failure.
    var joinAgainAt = ContinuousClock.now
    var joinPause: Duration = .zero
    var watchAgainAt = ContinuousClock.now
    var watchPause: Duration = .zero
    /// Deaths and reconnects the full signal buffer pushed out, to be given again.
    var lostControlSignals: [ClusterSignal] = []
    var lostMessages = false

    static let rebuildInterval: Duration = .milliseconds(100)
    /// TCP keepalives: a connection whose peer vanished is noticed within about a minute.
    static let connectionDefaults: [(keyword: String, value: String)] = [
        ("keepalives", "1"), ("keepalives_idle", "30"), ("keepalives_interval", "10"), ("keepalives_count", "3"),
    ]

    init(url: String, workerID: String, signals: AsyncStream<ClusterSignal>.Continuation) {
        self.url = url
        self.workerID = workerID
        self.signals = signals
    }

    mutating func run(isStopped: () -> Bool, joined: AsyncStream<Result<Void, DatabaseError>>.Continuation) {
        do throws(DatabaseError) {
            try joinGroup()
            joined.yield(.success(()))
            joined.finish()
        } catch {
            joined.yield(.failure(error))
            joined.finish()
            closeAll()
            return
        }
        while !isStopped() {
            let now = ContinuousClock.now
            if listener == nil, now >= joinAgainAt {
                do throws(DatabaseError) {
                    try joinGroup()
                    joinPause = .zero
                } catch {
                    joinPause = min(max(joinPause * 2, .milliseconds(100)), .seconds(5))
                    joinAgainAt = now + joinPause
                }
            }
            if listener != nil, watcher == nil, now >= watchAgainAt {
                do throws(DatabaseError) {
                    watcher = try Self.open(url)
                    watchPause = .zero
                    membershipChanged = true
                } catch {
                    watchPause = min(max(watchPause * 2, .milliseconds(100)), .seconds(5))
                    watchAgainAt = now + watchPause
                }
            }
            if membershipChanged, now - lastRebuild >= Self.rebuildInterval {
                do throws(DatabaseError) {
                    try watchNext()
                } catch {
                    dropWatcher()
                }
            }
            waitForTraffic()
            giveBackLostSignals()
        }
        leaveGroup()
    }

    // MARK: Connections

    /// A connection of the group's own: keepalives on, and nothing that would end a long wait.
    private static func open(_ url: String) throws(DatabaseError) -> PostgresConnection {
        let connection = try PostgresConnection(url: url, defaults: connectionDefaults)
        do throws(DatabaseError) {
            try connection.executeScript("SET statement_timeout = 0; SET lock_timeout = 0; SET idle_in_transaction_session_timeout = 0")
            if PQserverVersion(connection.connection) >= 140_000 { try connection.executeScript("SET idle_session_timeout = 0") }
        } catch {
            connection.close()
            throw error
        }
        return connection
    }

    private static func lockKey(_ id: Int64) -> Int32 {
        Int32(truncatingIfNeeded: id % 2_147_483_648)
    }

    // MARK: Joining and leaving

    /// Opens the listening connection, and adds this process's row with its lock taken in the
    /// same statement (a key some other session holds is refused: the row is removed and joining
    /// fails, to be tried again with a new row).
    private mutating func joinGroup() throws(DatabaseError) {
        let connection = try Self.open(url)
        do throws(DatabaseError) {
            try connection.executeScript("LISTEN \(PostgresClusterLink.channel)")
            let rows = try connection.query(
                SQLStatement(
                    """
                    WITH joined AS (INSERT INTO cluster_member (worker_id, joined_at) VALUES ($1, now()) RETURNING id)
                    SELECT id, pg_try_advisory_lock(\(PostgresClusterLink.lockClass), (id % 2147483648)::int4) AS locked FROM joined
                    """, [.text(workerID)]))
            guard let row = rows.first, let id = try? row.int("id") else { throw DatabaseError.connection("the member row has no id") }
            guard (try? row.bool("locked")) == true else {
                _ = try? connection.query(SQLStatement("DELETE FROM cluster_member WHERE id = $1", [.integer(id)]))
                throw DatabaseError.connection("another session holds the advisory lock of member \(id)")
            }
            _ = try connection.query(Self.announcement("~join"))
            listener = connection
            memberID = Int64(id)
            membershipChanged = true
            if wasMember { emit(.reconnected) }
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
        dropWatcher()
        dropListener()
    }

    /// Closes the listening connection (its lock and membership end with it); the loop joins again.
    private mutating func dropListener() {
        listener?.close()
        listener = nil
        memberID = nil
        membershipChanged = true
    }

    /// Closes the watching connection, withdrawing its lock request with it; the loop opens it again.
    private mutating func dropWatcher() {
        watcher?.close()
        watcher = nil
        watching = nil
        membershipChanged = true
    }

    // MARK: Watching

    /// Points the watching connection at the member after this one; nothing changes when that is
    /// the member it already waits on. A request for another member is withdrawn by closing the
    /// connection (a cancel may never reach the server that holds the wait).
    private mutating func watchNext() throws(DatabaseError) {
        guard let watcher, let memberID else { return }
        lastRebuild = ContinuousClock.now
        membershipChanged = false
        let rows = try watcher.query(
            SQLStatement("SELECT id, worker_id, joined_at > pg_postmaster_start_time() AS recent FROM cluster_member ORDER BY id"))
        var members: [WatchedMember] = []
        for row in rows {
            guard let id = try? row.int("id"), let worker = try? row.string("worker_id") else { continue }
            members.append(
                WatchedMember(
                    member: ClusterMember(id: Int64(id), workerID: worker), joinedSinceServerStart: (try? row.bool("recent")) ?? true))
        }
        let next = ClusterRing.watched(by: memberID, among: members.map(\.member)).flatMap { next in members.first { $0.member == next } }
        guard next != watching else { return }
        if watching != nil {
            dropWatcher()
            return
        }
        guard let next else { return }
        let request = Self.lock("pg_advisory_lock", id: next.member.id)
        let sent = request.sql.withCString { sql in
            PQsendQueryParams(watcher.connection, sql, 0, nil, nil, nil, nil, 0)
        }
        guard sent == 1 else { throw DatabaseError.connection("could not wait on a member's lock") }
        watching = next
    }

    /// The member the watching connection waited on is gone: its lock was granted. Whoever
    /// deletes its row reports it (a member that leaves deletes its row first), so one death is
    /// reported once; a member that joined before the server's last start is not reported.
    private mutating func memberGone(_ gone: WatchedMember) {
        guard let watcher else { return }
        let deleted = try? watcher.query(
            SQLStatement("DELETE FROM cluster_member WHERE id = $1 RETURNING id", [.integer(Int(gone.member.id))]))
        _ = try? watcher.query(Self.lock("pg_advisory_unlock", id: gone.member.id))
        membershipChanged = true
        if watcher.isClosed { dropWatcher() }
        guard deleted?.isEmpty == false else { return }
        _ = try? watcher.query(Self.announcement("~gone"))
        if gone.joinedSinceServerStart { emit(.memberGone(workerID: gone.member.workerID)) }
    }

    // MARK: Waiting

    /// Waits up to a quarter of a second for either connection to have something to read, and
    /// reads it; a connection that fails is dropped.
    private mutating func waitForTraffic() {
        guard let listener else {
            Thread.sleep(forTimeInterval: 0.05)
            return
        }
        // Notifications that came in with the answer to a statement of this connection are
        // already read: the socket would not say so.
        takeNotifications(from: listener)
        var sockets = [pollfd(fd: PQsocket(listener.connection), events: Int16(POLLIN), revents: 0)]
        if let watcher, watching != nil {
            sockets.append(pollfd(fd: PQsocket(watcher.connection), events: Int16(POLLIN), revents: 0))
        }
        let timeout: Int32 = membershipChanged ? 50 : 250
        guard poll(&sockets, nfds_t(sockets.count), timeout) > 0 else { return }
        if sockets[0].revents != 0 {
            guard PQconsumeInput(listener.connection) == 1, PQstatus(listener.connection) == CONNECTION_OK else {
                dropListener()
                return
            }
            takeNotifications(from: listener)
        }
        if sockets.count > 1, sockets[1].revents != 0 { readWatchAnswer() }
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
                emit(.message(payload))
            }
        }
    }

    private mutating func readWatchAnswer() {
        guard let watcher, let gone = watching else { return }
        guard PQconsumeInput(watcher.connection) == 1 else {
            dropWatcher()
            return
        }
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
            memberGone(gone)
        } else if failed {
            dropWatcher()
        }
    }

    // MARK: Signals

    /// Gives `signal` to the process; one that pushes a death or a reconnect out of the full
    /// buffer keeps it to be given again.
    private mutating func emit(_ signal: ClusterSignal) {
        if case .dropped(let oldest) = signals.yield(signal) {
            lostMessages = true
            if case .message = oldest {} else { lostControlSignals.append(oldest) }
        }
    }

    /// After messages were dropped: the deaths and reconnects among them again, then a reconnect
    /// (whatever the dropped messages said must be looked up again).
    private mutating func giveBackLostSignals() {
        guard lostMessages else { return }
        lostMessages = false
        let again = lostControlSignals.prefix(PostgresClusterLink.signalBuffer / 2)
        lostControlSignals = []
        for signal in again { signals.yield(signal) }
        signals.yield(.reconnected)
    }

    // MARK: Statements

    private static func lock(_ function: String, id: Int64) -> SQLStatement {
        // Literal keys: the watching request is sent without parameters, outside pipeline mode.
        SQLStatement("SELECT \(function)(\(PostgresClusterLink.lockClass), \(lockKey(id)))")
    }

    private static func announcement(_ payload: String) -> SQLStatement {
        SQLStatement("SELECT pg_notify($1, $2)", [.text(PostgresClusterLink.channel), .text("0:" + payload)])
    }
}
