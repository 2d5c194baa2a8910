import ArgumentParser
import CoreMetrics
import Foundation
import Storage
import StoragePostgres
import StorageSQLite

/// A fresh database for a benchmark run: a SQLite file in a temporary directory, or a new
/// database on a PostgreSQL server.
enum BenchmarkDatabase {
    enum Backend: String, ExpressibleByArgument {
        case sqlite
        case postgres
    }

    /// Opens it; PostgreSQL needs an admin URL (`postgresURL` or BUDPIPELINE_TEST_POSTGRES_URL).
    static func open(_ backend: Backend, postgresURL: String?, metrics: (any MetricsFactory)? = nil) async throws -> (any Database, String)
    {
        switch backend {
        case .sqlite:
            let directory = NSTemporaryDirectory() + "bp-bench-\(UUID().uuidString)"
            let path = directory + "/budpipeline.sqlite"
            return (try await SQLiteDatabase.open(path: path, metrics: metrics), "sqlite://\(path)")
        case .postgres:
            guard let admin = postgresURL ?? ProcessInfo.processInfo.environment["BUDPIPELINE_TEST_POSTGRES_URL"] else {
                throw ValidationError("--backend postgres needs --postgres-url or BUDPIPELINE_TEST_POSTGRES_URL")
            }
            let name = "bp_bench_\(UUID().uuidString.prefix(8).lowercased())"
            let server = try await PostgresDatabase.connect(url: admin, maximumConnections: 1)
            try await server.withSession { session in try session.executeScript("CREATE DATABASE \(name)") }
            await server.close()
            guard let slash = admin.lastIndex(of: "/") else { throw ValidationError("unexpected URL \(admin)") }
            let url = admin[..<slash] + "/" + name
            return (try await PostgresDatabase.connect(url: url, metrics: metrics), url)
        }
    }
}
