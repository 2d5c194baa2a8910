import Foundation
import Storage
import StorageSQLite
import Testing
import _BudPipelineTestSupport

/// SQLite transactions that wait together share one commit, each in its own savepoint: every
/// caller gets its own result, and a failing one takes only its own changes with it.
@Suite("Grouped SQLite commits")
struct GroupedCommitTests {
    /// Runs `count` transactions queued behind a writer kept busy, so that they wait together;
    /// transaction `i` inserts row `i`, and those in `failing` fail after their insert — half by
    /// throwing, half by a write that changes an unexpected number of rows (a conflict).
    static func runQueued(
        _ database: SQLiteDatabase, count: Int, failing: Set<Int>
    ) async throws -> [Int: Result<Int, any Error>] {
        try await database.withSession { session in
            try session.executeScript("CREATE TABLE grouped (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        }
        let busy = Task { try await database.withSession { _ in Thread.sleep(forTimeInterval: 0.3) } }
        try await Task.sleep(for: .milliseconds(50))
        let results = await withTaskGroup(of: (Int, Result<Int, any Error>).self) { group in
            for index in 0..<count {
                group.addTask {
                    do {
                        let value = try await database.transaction { session in
                            try session.execute("INSERT INTO grouped (k, v) VALUES ($1, $2)", .integer(index), .text("row \(index)"))
                            if failing.contains(index) {
                                if index.isMultiple(of: 2) { throw DatabaseError.statement(code: "test", message: "failed", sql: "") }
                                session.enqueue(
                                    SQLStatement("UPDATE grouped SET v = 'x' WHERE k = -1", []), expectedRows: 1,
                                    conflictMessage: "row -1 is gone")
                            }
                            return index
                        }
                        return (index, .success(value))
                    } catch {
                        return (index, .failure(error))
                    }
                }
            }
            return await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        try await busy.value
        return results
    }

    /// The writer's settings (see `SQLiteConnection`): WAL, temporary b-trees in memory, and a WAL
    /// that shrinks back to 64 MiB after a burst instead of keeping its peak size on disk.
    @Test("the writer connection runs with the settings the server depends on")
    func writerSettings() async throws {
        try await TestDatabase.with(.sqlite) { test in
            let settings = try await test.database.transaction { session in
                try ["journal_mode", "journal_size_limit", "temp_store", "wal_autocheckpoint", "foreign_keys"].map { name in
                    try session.query("PRAGMA \(name)").first?[name] ?? ""
                }
            }
            #expect(settings == ["wal", "67108864", "2", "2000", "1"])
        }
    }

    @Test("transactions waiting together commit once, each with its own result")
    func waitingTransactionsShareACommit() async throws {
        try await TestDatabase.with(.sqlite) { test in
            let database = try #require(test.database as? SQLiteDatabase)
            let before = database.commitCounts
            let failing: Set<Int> = [3, 8, 11, 14]
            let results = try await Self.runQueued(database, count: 20, failing: failing)
            for index in 0..<20 {
                let result = try #require(results[index])
                if failing.contains(index) {
                    #expect(throws: DatabaseError.self) { try result.get() }
                } else {
                    #expect(try result.get() == index)
                }
            }
            let rows = try await database.read("SELECT k FROM grouped ORDER BY k").map { try $0.int("k") }
            #expect(rows == (0..<20).filter { !failing.contains($0) }, "a failed member's insert is undone, the others kept")
            let after = database.commitCounts
            #expect(after.transactions - before.transactions == 20)
            #expect(after.commits - before.commits < 20, "the queued transactions shared commits: \(after)")
        }
    }

    @Test("when a member fills the disk, every caller is answered and what it was told is what was kept")
    func aFullDatabaseLeavesEveryAnswerTrue() async throws {
        try await TestDatabase.with(.sqlite) { test in
            let database = try #require(test.database as? SQLiteDatabase)
            try await database.withSession { session in
                try session.executeScript("CREATE TABLE grouped (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
                // The file may grow by a few pages only: a large row fails with SQLITE_FULL.
                let pages = try session.query("PRAGMA page_count").first?.int("page_count") ?? 0
                _ = try session.query("PRAGMA max_page_count = \(pages + 4)")
            }
            let busy = Task { try await database.withSession { _ in Thread.sleep(forTimeInterval: 0.3) } }
            try await Task.sleep(for: .milliseconds(50))
            let results = await withTaskGroup(of: (Int, Bool).self) { group in
                for index in 0..<12 {
                    group.addTask {
                        let value = index == 5 ? String(repeating: "x", count: 200_000) : "row \(index)"
                        let committed = try? await database.transaction { session in
                            try session.execute("INSERT INTO grouped (k, v) VALUES ($1, $2)", .integer(index), .text(value))
                        }
                        return (index, committed != nil)
                    }
                }
                return await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
            }
            try await busy.value
            #expect(results.count == 12, "every caller was answered")
            #expect(results[5] == false)
            let kept = Set(try await database.read("SELECT k FROM grouped").map { try $0.int("k") })
            #expect(kept == Set(results.filter(\.value).map(\.key)), "told committed exactly when kept")
            #expect(!kept.contains(5))
        }
    }

    @Test("a conflict in a member is reported as a conflict to its caller only")
    func aConflictStaysWithItsMember() async throws {
        try await TestDatabase.with(.sqlite) { test in
            let database = try #require(test.database as? SQLiteDatabase)
            let results = try await Self.runQueued(database, count: 4, failing: [1])
            #expect(throws: DatabaseError.self) { try results[1]?.get() }
            if case .failure(let error as DatabaseError)? = results[1] { #expect(error.kind == .conflict) }
            for index in [0, 2, 3] { #expect(try results[index]?.get() == index) }
        }
    }
}
