public import Foundation

/// One versioned schema change, written once per dialect.
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    let postgres: String
    let sqlite: String

    /// A migration whose SQL is the UTF-8 text of `postgres` and `sqlite` (the files' bytes).
    init(version: Int, name: String, postgres: [UInt8], sqlite: [UInt8]) {
        self.version = version
        self.name = name
        self.postgres = String(decoding: postgres, as: UTF8.self)
        self.sqlite = String(decoding: sqlite, as: UTF8.self)
    }

    func sql(for dialect: SQLDialect) -> String {
        dialect == .postgres ? postgres : sqlite
    }

    /// A fingerprint of the SQL (FNV-1a, 64 bits, hex): a migration edited after it was applied
    /// is reported instead of silently diverging.
    func checksum(for dialect: SQLDialect) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in sql(for: dialect).utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// Where a database's schema stands against this build.
public struct SchemaStatus: Sendable, Equatable {
    public struct Applied: Sendable, Equatable {
        public let version: Int
        public let name: String
        public let appliedAt: Date
    }

    public let applied: [Applied]
    /// Known migrations not applied yet, oldest first.
    public let pending: [Int]
    /// Applied versions this build does not know: the schema is newer than the build.
    public let unknown: [Int]
    /// Applied versions whose SQL differs from this build's.
    public let modified: [Int]

    public var currentVersion: Int { applied.map(\.version).max() ?? 0 }
    public var latestKnownVersion: Int { Migration.all.map(\.version).max() ?? 0 }
    public var isUpToDate: Bool { pending.isEmpty && unknown.isEmpty && modified.isEmpty }

    /// Why a server must not start on this schema, if it must not.
    public var incompatibility: String? {
        if !unknown.isEmpty {
            return
                "the database schema is at version \(currentVersion), newer than this build knows (\(latestKnownVersion)): upgrade budpipeline"
        }
        if !modified.isEmpty {
            let versions = modified.map(String.init).joined(separator: ", ")
            return "migration(s) \(versions) were applied with different SQL than this build's: the schema cannot be trusted"
        }
        return nil
    }
}

/// Applies versioned migrations and reports the schema's state. Safe to run from several
/// processes at once: PostgreSQL serialises them with an advisory lock, SQLite with its write lock.
public struct Migrator: Sendable {
    public let database: any Database

    public init(database: any Database) {
        self.database = database
    }

    /// The schema's state; an empty database has every migration pending.
    public func status() async throws -> SchemaStatus {
        let dialect = database.dialect
        let rows = try await database.withSession { session -> [Row] in
            guard try Self.ledgerExists(session, dialect) else { return [] }
            return try session.query("SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version")
        }
        var applied: [SchemaStatus.Applied] = []
        var modified: [Int] = []
        var unknown: [Int] = []
        let known = Dictionary(uniqueKeysWithValues: Migration.all.map { ($0.version, $0) })
        for row in rows {
            let version = try row.int("version")
            applied.append(SchemaStatus.Applied(version: version, name: try row.string("name"), appliedAt: try row.date("applied_at")))
            if let migration = known[version] {
                if migration.checksum(for: dialect) != (try row.string("checksum")) { modified.append(version) }
            } else {
                unknown.append(version)
            }
        }
        let appliedVersions = Set(applied.map(\.version))
        let pending = Migration.all.map(\.version).filter { !appliedVersions.contains($0) }
        return SchemaStatus(applied: applied, pending: pending, unknown: unknown, modified: modified)
    }

    /// Applies every pending migration up to version `target` (all by default), each in its own
    /// transaction, and returns the versions applied. Refuses a schema that is newer than this
    /// build or was modified.
    @discardableResult
    public func migrate(upTo target: Int = .max) async throws -> [Int] {
        let dialect = database.dialect
        return try await database.withSession { session in
            if dialect == .postgres { try session.executeScript("SELECT pg_advisory_lock(\(Self.advisoryLockKey))") }
            defer {
                if dialect == .postgres { try? session.executeScript("SELECT pg_advisory_unlock(\(Self.advisoryLockKey))") }
            }
            try session.executeScript(Self.ledgerTable(dialect))
            var appliedNow: [Int] = []
            let rows = try session.query("SELECT version, checksum FROM schema_migrations")
            var applied: [Int: String] = [:]
            for row in rows { applied[try row.int("version")] = try row.string("checksum") }
            let known = Set(Migration.all.map(\.version))
            if let newer = applied.keys.filter({ !known.contains($0) }).max() {
                throw DatabaseError.schema(
                    "the database schema has migration \(newer), newer than this build knows (\(known.max() ?? 0)): upgrade budpipeline")
            }
            for migration in Migration.all where migration.version <= target {
                if let checksum = applied[migration.version] {
                    guard checksum == migration.checksum(for: dialect) else {
                        throw DatabaseError.schema(
                            "migration \(migration.version) (\(migration.name)) was applied with different SQL than this build's")
                    }
                    continue
                }
                let begin = dialect == .postgres ? "BEGIN" : "BEGIN IMMEDIATE"
                let record = """
                    INSERT INTO schema_migrations (version, name, checksum, applied_at)
                    VALUES (\(migration.version), '\(migration.name)', '\(migration.checksum(for: dialect))', '\(SQLTimestamp.format(Date()))')
                    """
                do {
                    try session.executeScript("\(begin);\n\(migration.sql(for: dialect))\n;\(record);\nCOMMIT")
                } catch {
                    try? session.executeScript("ROLLBACK")
                    throw DatabaseError.schema("migration \(migration.version) (\(migration.name)) failed: \(error)")
                }
                appliedNow.append(migration.version)
            }
            return appliedNow
        }
    }

    /// Throws unless the schema is exactly the one this build expects.
    public func requireCurrentSchema() async throws {
        let status = try await status()
        if let problem = status.incompatibility { throw DatabaseError.schema(problem) }
        guard status.pending.isEmpty else {
            let versions = status.pending.map(String.init).joined(separator: ", ")
            throw DatabaseError.schema(
                "the database has pending migrations (\(versions)): run `budpipeline migrate`, or start with --migrate or AUTO_MIGRATE=true"
            )
        }
    }

    /// A fixed key for `pg_advisory_lock` ("budpipeline migrations").
    private static let advisoryLockKey = 7_236_512_044_117_391

    private static func ledgerExists(_ session: any DatabaseSession, _ dialect: SQLDialect) throws -> Bool {
        switch dialect {
        case .postgres:
            return try session.query("SELECT to_regclass('schema_migrations') IS NOT NULL AS present").first?.bool("present") ?? false
        case .sqlite:
            return try !session.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").isEmpty
        }
    }

    private static func ledgerTable(_ dialect: SQLDialect) -> String {
        let timestamp = dialect == .postgres ? "timestamptz" : "TEXT"
        return """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name varchar(255) NOT NULL,
                checksum varchar(64) NOT NULL,
                applied_at \(timestamp) NOT NULL
            )
            """
    }
}
