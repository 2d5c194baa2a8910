import BudJSON
public import BudPipelineHost
public import CoreMetrics
import Foundation
public import Storage
import StoragePostgres
import StorageSQLite

/// Where the store lives, from `DATABASE_URL`:
/// - `sqlite:///absolute/path.sqlite` or `sqlite://relative/path.sqlite`;
/// - `postgresql://…` or `postgres://…` (a libpq URI; driver suffixes such as
///   `postgresql+asyncpg://` are accepted, so an existing deployment's URL works unchanged).
///
/// Without `DATABASE_URL`, `PSQL_HOST`, `PSQL_PORT`, `PSQL_DB_NAME`, `PSQL_USER` and
/// `PSQL_PASSWORD` (names existing deployments set; docs/compatibility.md) name a PostgreSQL
/// server when `PSQL_HOST` is set; otherwise the store is the SQLite file `budpipeline.sqlite` in
/// `BUDPIPELINE_DATA_DIR` (default `./data`).
public enum DatabaseLocation: Sendable, Equatable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(url: String)

    /// Reads the location from `environment`; throws a one-line reason for an unusable URL.
    public static func from(environment: [String: String]) throws(ConfigurationError) -> DatabaseLocation {
        if let url = environment["DATABASE_URL"], !url.isEmpty { return try parse(url) }
        if let host = environment["PSQL_HOST"], !host.isEmpty {
            var components = URLComponents()
            components.scheme = "postgresql"
            components.host = host
            components.port = environment["PSQL_PORT"].flatMap(Int.init) ?? 5432
            components.user = environment["PSQL_USER"]
            components.password = environment["PSQL_PASSWORD"]
            components.path = "/" + (environment["PSQL_DB_NAME"] ?? "budpipeline")
            guard let url = components.string else { throw ConfigurationError("PSQL_* settings do not form a valid URL") }
            return .postgres(url: url)
        }
        let directory = environment["BUDPIPELINE_DATA_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "data"
        return .sqlite(path: (directory as NSString).appendingPathComponent("budpipeline.sqlite"))
    }

    /// Reads one URL.
    public static func parse(_ url: String) throws(ConfigurationError) -> DatabaseLocation {
        // A scheme is letters, digits, '+', '-' and '.'; anything else before the first ':' (a
        // keyword string, whose password may hold the ':') is no scheme.
        guard let colon = url.firstIndex(of: ":"),
            url[..<colon].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) }), colon > url.startIndex
        else {
            throw ConfigurationError("DATABASE_URL '\(redacted(url))' has no scheme: use sqlite:///path or postgresql://…")
        }
        let scheme = url[..<colon].lowercased()
        let rest = url[url.index(after: colon)...]
        let baseScheme = scheme.split(separator: "+").first.map(String.init) ?? scheme
        switch baseScheme {
        case "sqlite", "sqlite3":
            guard rest.hasPrefix("//") else {
                throw ConfigurationError("DATABASE_URL '\(redacted(url))': write sqlite:///absolute/path or sqlite://relative/path")
            }
            let path = String(rest.dropFirst(2))
            guard !path.isEmpty, path != "/" else { throw ConfigurationError("DATABASE_URL '\(redacted(url))' names no file") }
            return .sqlite(path: path)
        case "postgres", "postgresql":
            return .postgres(url: "postgresql:" + rest)
        default:
            throw ConfigurationError("DATABASE_URL scheme '\(scheme)' is not supported: use sqlite:///path or postgresql://…")
        }
    }

    /// Opens the database: a SQLite file (created if missing) or a PostgreSQL connection pool.
    /// `metrics` receives the pools' queue waits and refusals.
    public func open(poolSize: Int = 10, metrics: (any MetricsFactory)? = nil) async throws -> any Database {
        switch self {
        case .sqlite(let path): try await SQLiteDatabase.open(path: path, metrics: metrics)
        case .postgres(let url): try await PostgresDatabase.connect(url: url, maximumConnections: poolSize, metrics: metrics)
        }
    }

    /// Where the processes using this database keep their work marks:
    /// `<BUDPIPELINE_STATE_DIR>/work-marks/<fingerprint of the location>`. The state directory
    /// defaults to `state` beside a SQLite file, and for PostgreSQL to `state` in
    /// `BUDPIPELINE_DATA_DIR` (itself `./data` by default). Processes on one machine that share a
    /// database share the folder; processes of different databases never do.
    public func workMarksDirectory(environment: [String: String]) -> String {
        let base: String
        switch self {
        case .sqlite(let path): base = (path as NSString).deletingLastPathComponent
        case .postgres: base = environment["BUDPIPELINE_DATA_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "data"
        }
        let state =
            environment["BUDPIPELINE_STATE_DIR"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ((base.isEmpty ? "." : base) as NSString).appendingPathComponent("state")
        return ((state as NSString).appendingPathComponent("work-marks") as NSString).appendingPathComponent(
            StoredText.fingerprint(description))
    }

    /// The location without its password, for logs and messages.
    public var description: String {
        switch self {
        case .sqlite(let path): "sqlite://\(path)"
        case .postgres(let url): Self.redacted(url)
        }
    }

    /// `url` with its passwords replaced by `***`, read without a URL parser so that a URL none
    /// would accept is masked too (see ``ConnectionSecrets``).
    static func redacted(_ url: String) -> String {
        ConnectionSecrets.redacted(url)
    }
}
