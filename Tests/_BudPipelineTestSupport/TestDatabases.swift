import Foundation
public import Storage
import StoragePostgres
import StorageSQLite

/// The backends the contract suites run on.
public enum TestBackend: String, Sendable, CaseIterable, CustomStringConvertible {
    case sqlite
    case postgres

    public var description: String { rawValue }

    /// The backends available here: SQLite always; PostgreSQL when the test command started a
    /// server (`BUDPIPELINE_TEST_POSTGRES_URL`). With `BUDPIPELINE_REQUIRE_POSTGRES=1` (set by
    /// `scripts/test.sh`) a missing server is a failure, not a skip.
    public static var available: [TestBackend] {
        TestPostgres.adminURL == nil && !TestPostgres.isRequired ? [.sqlite] : [.sqlite, .postgres]
    }
}

/// The PostgreSQL server the test command started.
public enum TestPostgres {
    public static var adminURL: String? {
        ProcessInfo.processInfo.environment["BUDPIPELINE_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    public static var isRequired: Bool { ProcessInfo.processInfo.environment["BUDPIPELINE_REQUIRE_POSTGRES"] == "1" }

    /// Whether the PostgreSQL-only suites (several processes on one database) can run.
    public static var isAvailable: Bool { adminURL != nil || isRequired }

    /// Drops a database `createDatabase()` made, with whatever connections it still has (a
    /// server process a test left running): a test server otherwise keeps every test's database,
    /// and a developer's disk fills up over many runs.
    /// A server `scripts/postgres.sh` started for this run (`BUDPIPELINE_TEST_POSTGRES_DIR`) is
    /// deleted with everything in it afterwards: its databases are left (a drop costs a checkpoint).
    public static func dropDatabase(url: String) async {
        guard ProcessInfo.processInfo.environment["BUDPIPELINE_TEST_POSTGRES_DIR"] == nil else { return }
        guard let adminURL, let slash = url.lastIndex(of: "/") else { return }
        let name = url[url.index(after: slash)...]
        guard name.hasPrefix("bp_test_"), name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else { return }
        guard let admin = try? await PostgresDatabase.connect(url: adminURL, maximumConnections: 1) else { return }
        try? await admin.withSession { session in try session.executeScript("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
        await admin.close()
    }

    /// Creates an empty database on the test server and returns its URL.
    public static func createDatabase() async throws -> String {
        guard let adminURL else {
            throw DatabaseError.connection("BUDPIPELINE_TEST_POSTGRES_URL is not set: run the tests with scripts/test.sh")
        }
        let name = "bp_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        let admin = try await PostgresDatabase.connect(url: adminURL, maximumConnections: 1)
        do {
            try await admin.withSession { session in try session.executeScript("CREATE DATABASE \(name)") }
        } catch {
            await admin.close()
            throw error
        }
        await admin.close()
        guard let slash = adminURL.lastIndex(of: "/") else { throw DatabaseError.connection("unexpected admin URL \(adminURL)") }
        return adminURL[..<slash] + "/" + name
    }
}

/// A fresh, empty database of one backend, deleted when closed.
public struct TestDatabase: Sendable {
    public let backend: TestBackend
    public let database: any Database
    /// `DATABASE_URL` for a `budpipeline` process using the same database.
    public let url: String
    private let directory: String?

    /// Opens a new empty database; `migrated` applies the schema.
    public static func make(_ backend: TestBackend, migrated: Bool = true) async throws -> TestDatabase {
        let database: any Database
        let url: String
        var directory: String?
        switch backend {
        case .sqlite:
            let path = NSTemporaryDirectory() + "bp-sqlite-" + UUID().uuidString
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            directory = path
            database = try await SQLiteDatabase.open(path: path + "/budpipeline.sqlite")
            url = "sqlite://" + path + "/budpipeline.sqlite"
        case .postgres:
            url = try await TestPostgres.createDatabase()
            database = try await PostgresDatabase.connect(url: url)
        }
        if migrated { try await Migrator(database: database).migrate() }
        return TestDatabase(backend: backend, database: database, url: url, directory: directory)
    }

    public var store: PipelineStore { PipelineStore(database: database) }

    public func close() async {
        await database.close()
        if let directory { try? FileManager.default.removeItem(atPath: directory) }
        if backend == .postgres { await TestPostgres.dropDatabase(url: url) }
    }

    /// Runs `body` with a fresh database and closes it afterwards.
    public static func with<Result>(
        _ backend: TestBackend,
        migrated: Bool = true,
        _ body: (TestDatabase) async throws -> Result
    ) async throws -> Result {
        let database = try await make(backend, migrated: migrated)
        do {
            let result = try await body(database)
            await database.close()
            return result
        } catch {
            await database.close()
            throw error
        }
    }
}
