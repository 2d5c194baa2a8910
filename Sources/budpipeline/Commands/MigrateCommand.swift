import ArgumentParser
import BudJSON
import Foundation
import Logging
import PipelineRuntime
import Storage

/// `budpipeline migrate`: applies the schema migrations this build knows.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply pending database migrations (or show them with --status).",
        discussion: """
            Each migration runs in its own transaction; several processes may run this at once. \
            A database whose schema is newer than this build is refused.
            """
    )

    @OptionGroup var database: DatabaseOptions

    @Flag(help: "Show applied and pending migrations without changing anything.")
    var status = false

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func run() async throws {
        try database.settings.apply()
        try CLILogging.bootstrap(defaultLevel: .error)
        try await database.withDatabase { opened, location in
            try await report(Migrator(database: opened), location: location)
        }
    }

    private func report(_ migrator: Migrator, location: DatabaseLocation) async throws {
        do {
            if status {
                let current = try await migrator.status()
                print(
                    json
                        ? JSONValue.object(SchemaReport.json(current, location: location)).serializedString(options: .prettyPrinted)
                        : SchemaReport.text(current))
                if current.incompatibility != nil { throw ExitCode(1) }
                return
            }
            let applied = try await migrator.migrate()
            let after = try await migrator.status()
            if json {
                var report = SchemaReport.json(after, location: location)
                report["applied_now"] = .array(applied.map(JSONValue.int))
                print(JSONValue.object(report).serializedString(options: .prettyPrinted))
            } else if applied.isEmpty {
                print("\(location): schema up to date at version \(after.currentVersion)")
            } else {
                print(
                    "\(location): applied migration(s) \(applied.map(String.init).joined(separator: ", ")); schema at version \(after.currentVersion)"
                )
            }
        } catch let error as DatabaseError {
            throw CLIError("\(location): \(error)")
        }
    }
}

/// `budpipeline probe-db`: connects, names the server and reports the schema's state.
struct ProbeDatabaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe-db",
        abstract: "Connect to the database and report the server version and pending migrations.",
        discussion: "Exits with status 1 when the database cannot be reached or its schema cannot be used by this build."
    )

    @OptionGroup var database: DatabaseOptions

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func run() async throws {
        try database.settings.apply()
        try CLILogging.bootstrap(defaultLevel: .error)
        try await database.withDatabase { opened, location in
            try await report(opened, location: location)
        }
    }

    private func report(_ opened: any Database, location: DatabaseLocation) async throws {
        do {
            let version = try await opened.serverVersion()
            let status = try await Migrator(database: opened).status()
            if json {
                var report = SchemaReport.json(status, location: location)
                report["server_version"] = .string(version)
                print(JSONValue.object(report).serializedString(options: .prettyPrinted))
            } else {
                print("\(location): \(version)")
                print(SchemaReport.text(status))
            }
            if status.incompatibility != nil { throw ExitCode(1) }
        } catch let error as DatabaseError {
            throw CLIError("\(location): \(error)")
        }
    }
}

/// How the migration commands print a schema's state.
enum SchemaReport {
    static func text(_ status: SchemaStatus) -> String {
        var lines = ["schema version \(status.currentVersion) (this build knows \(status.latestKnownVersion))"]
        for applied in status.applied {
            lines.append("  applied  \(applied.version) \(applied.name) at \(SQLTimestamp.format(applied.appliedAt))")
        }
        for version in status.pending {
            let name = Migration.all.first { $0.version == version }?.name ?? ""
            lines.append("  pending  \(version) \(name)")
        }
        if let problem = status.incompatibility { lines.append("error: \(problem)") }
        return lines.joined(separator: "\n")
    }

    static func json(_ status: SchemaStatus, location: DatabaseLocation) -> JSONObject {
        [
            "database": .string(location.description),
            "current_version": .int(status.currentVersion),
            "latest_known_version": .int(status.latestKnownVersion),
            "applied": .array(
                status.applied.map {
                    ["version": .int($0.version), "name": .string($0.name), "applied_at": .string(SQLTimestamp.format($0.appliedAt))]
                }),
            "pending": .array(status.pending.map(JSONValue.int)),
            "unknown": .array(status.unknown.map(JSONValue.int)),
            "modified": .array(status.modified.map(JSONValue.int)),
            "up_to_date": .bool(status.isUpToDate),
            "error": status.incompatibility.map(JSONValue.string) ?? .null,
        ]
    }
}
