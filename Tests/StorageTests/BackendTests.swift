import Foundation
import Storage
import StoragePostgres
import StorageSQLite
import Testing
import _BudPipelineTestSupport

@Suite("Backends")
struct BackendTests {
    @Test("a file that is not a database is refused with its path")
    func sqliteRefusesGarbage() async throws {
        let path = NSTemporaryDirectory() + "bp-garbage-\(UUID().uuidString).sqlite"
        try Data(repeating: 0x41, count: 4096).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        await #expect {
            _ = try await SQLiteDatabase.open(path: path)
        } throws: { error in
            guard let error = error as? DatabaseError, error.kind == .connection else { return false }
            let message = error.message
            return message.contains(path) && message.contains("not a database")
        }
    }

    @Test("a directory that cannot be created is reported")
    func sqliteUncreatableDirectory() async throws {
        await #expect {
            _ = try await SQLiteDatabase.open(path: "/proc/budpipeline/nope/db.sqlite")
        } throws: { error in
            guard let error = error as? DatabaseError, error.kind == .connection else { return false }
            let message = error.message
            return message.contains("/proc/budpipeline/nope")
        }
    }

    @Test("an unreachable PostgreSQL server is a connection error")
    func postgresUnreachable() async throws {
        let started = ContinuousClock.now
        await #expect {
            _ = try await PostgresDatabase.connect(url: "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
        } throws: { error in
            guard let error = error as? DatabaseError, error.kind == .connection else { return false }
            let message = error.message
            return message.contains("127.0.0.1")
        }
        // Refused at once, or cut by connect_timeout at 2 s: far below the bound on any machine.
        #expect(ContinuousClock.now - started < .seconds(30))
    }

    @Test("each backend names its version", arguments: TestBackend.available)
    func serverVersion(backend: TestBackend) async throws {
        try await TestDatabase.with(backend, migrated: false) { test in
            let version = try await test.database.serverVersion()
            #expect(version.hasPrefix(backend == .sqlite ? "SQLite 3." : "PostgreSQL "))
        }
    }

    @Test("more callers than connections wait their turn", arguments: TestBackend.available)
    func poolQueueing(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            let database = test.database
            let sum = try await withThrowingTaskGroup(of: Int.self) { group in
                for value in 0..<200 {
                    group.addTask {
                        try await database.read("SELECT CAST($1 AS integer) AS value", .integer(value)).first?.int("value") ?? -1
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(sum == (0..<200).reduce(0, +))
        }
    }

    @Test("reads taken together keep their own snapshots and failures", arguments: TestBackend.available)
    func batchedReadsStayApart(backend: TestBackend) async throws {
        try await TestDatabase.with(backend) { test in
            let database = test.database
            // Many callers at once, so the pool takes their reads in batches: single statements,
            // multi-statement snapshots, and reads that fail, mixed.
            let outcomes = try await withThrowingTaskGroup(of: (Int, Int?).self) { group in
                for value in 0..<300 {
                    group.addTask {
                        switch value % 3 {
                        case 0:
                            let rows = try await database.read("SELECT CAST($1 AS integer) AS value", .integer(value))
                            return (value, try rows.first?.int("value"))
                        case 1:
                            let results = try await database.read([
                                SQLStatement("SELECT CAST($1 AS integer) AS value", [.integer(value)]),
                                SQLStatement("SELECT CAST($1 AS integer) + 1 AS value", [.integer(value)]),
                            ])
                            let first = try results[0].first?.int("value") ?? -1
                            let second = try results[1].first?.int("value") ?? -1
                            return (value, second == first + 1 ? first : nil)
                        default:
                            do {
                                _ = try await database.read([
                                    SQLStatement("SELECT 1 AS one"),
                                    SQLStatement("SELECT * FROM no_such_table_\(value)"),
                                ])
                                return (value, nil)
                            } catch let error as DatabaseError {
                                guard error.kind == .statement else { return (value, nil) }
                                return (value, value)
                            }
                        }
                    }
                }
                return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
            }
            #expect(outcomes.count == 300)
            #expect(outcomes.allSatisfy { $0.key == $0.value })
            let after = try await database.read("SELECT 7 AS seven")
            #expect(try after.first?.int("seven") == 7)
        }
    }

    @Test("a PostgreSQL connection the server dropped is replaced", .enabled(if: TestPostgres.isAvailable))
    func postgresReconnects() async throws {
        try await TestDatabase.with(.postgres) { test in
            let pid = try await test.database.read("SELECT pg_backend_pid() AS pid").first?.int("pid")
            let admin = try await PostgresDatabase.connect(url: try #require(TestPostgres.adminURL), maximumConnections: 1)
            try await admin.withSession { session in
                _ = try session.query("SELECT pg_terminate_backend($1)", .integer(pid ?? 0))
            }
            await admin.close()
            // The first call may see the dropped connection; the pool must not keep handing it out.
            _ = try? await test.database.read("SELECT 1 AS one")
            let rows = try await test.database.read("SELECT 1 AS one")
            #expect(try rows.first?.int("one") == 1)
        }
    }
}

@Suite("Prepared statement cache")
struct StatementCacheTests {
    @Test func theLeastRecentlyUsedEighthMakesRoom() {
        var cache = StatementCache<Int>(capacity: 16)
        for number in 0..<16 { #expect(cache.insert(number, for: "q\(number)").isEmpty) }
        // Using the first two keeps them; the next insert evicts the two oldest others.
        _ = cache.value(for: "q0")
        _ = cache.value(for: "q1")
        #expect(cache.insert(16, for: "q16").sorted() == [2, 3])
        #expect(cache.count == 15)
        #expect(cache.value(for: "q0") == 0)
        #expect(cache.value(for: "q2") == nil)
        // Replacing a statement hands back its old value.
        #expect(cache.insert(99, for: "q16") == [16])
        #expect(cache.removeAll().count == 15)
        #expect(cache.count == 0)
    }

    @Test("a PostgreSQL connection keeps at most 512 statements prepared, however many it runs")
    func postgresEvicts() async throws {
        guard TestPostgres.isAvailable else { return }
        let url = try await TestPostgres.createDatabase()
        let database = try await PostgresDatabase.connect(url: url, maximumConnections: 1)
        for number in 0..<700 {
            let rows = try await database.read([SQLStatement("SELECT CAST($1 AS integer) + \(number) AS total", [.integer(1)])])
            #expect(try rows.first?.first?.int("total") == number + 1)
        }
        let prepared = try await database.read([SQLStatement("SELECT CAST(count(*) AS integer) AS n FROM pg_prepared_statements")])
        let count = try prepared.first?.first?.int("n") ?? -1
        #expect(count > 400 && count <= 512, "prepared statements: \(count)")
        // The latest statements are the prepared ones (not the first 512 for good).
        let latest = try await database.read([
            SQLStatement("SELECT CAST(count(*) AS integer) AS n FROM pg_prepared_statements WHERE statement LIKE $1", [.text("%+ 699 AS%")])
        ])
        #expect(try latest.first?.first?.int("n") == 1)
        // Statements evicted and prepared again still give the right answers.
        for number in [0, 1, 699] {
            let rows = try await database.read([SQLStatement("SELECT CAST($1 AS integer) + \(number) AS total", [.integer(2)])])
            #expect(try rows.first?.first?.int("total") == number + 2)
        }
        await database.close()
    }
}
