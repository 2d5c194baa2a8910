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
            return .postgres(url: try postgresURL(host: host, environment: environment))
        }
        let directory = environment["BUDPIPELINE_DATA_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "data"
        return .sqlite(path: (directory as NSString).appendingPathComponent("budpipeline.sqlite"))
    }

    /// The URL the `PSQL_*` settings name, each part percent-encoded (so that no value can add
    /// a part of its own); a port that is not a whole number in 1…65535 is refused.
    static func postgresURL(host: String, environment: [String: String]) throws(ConfigurationError) -> String {
        var port = 5432
        if let text = environment["PSQL_PORT"], !text.isEmpty {
            guard let number = Int(text), (1...65_535).contains(number) else {
                throw ConfigurationError("PSQL_PORT=\(text.prefix(40)) is not a port number (1–65535)")
            }
            port = number
        }
        func encoded(_ text: String, _ allowed: CharacterSet) throws(ConfigurationError) -> String {
            guard let encoded = text.addingPercentEncoding(withAllowedCharacters: allowed) else {
                throw ConfigurationError("PSQL_* settings do not form a valid URL")
            }
            return encoded
        }
        // An IPv6 address goes in brackets; any other host is encoded like a user name (no
        // ':', '@', '/', '?' or '#' of its own).
        let isIPv6 = host.contains(":") && host.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." }
        let hostPart = isIPv6 ? "[\(host)]" : try encoded(host, .urlUserAllowed)
        var credentials = ""
        if let user = environment["PSQL_USER"], !user.isEmpty {
            credentials = try encoded(user, .urlUserAllowed)
            if let password = environment["PSQL_PASSWORD"], !password.isEmpty {
                credentials += ":" + (try encoded(password, .urlUserAllowed))
            }
            credentials += "@"
        }
        let name = environment["PSQL_DB_NAME"].flatMap { $0.isEmpty ? nil : $0 } ?? "budpipeline"
        return "postgresql://\(credentials)\(hostPart):\(port)/\(try encoded(name, .urlUserAllowed))"
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
