import BudJSON
public import CoreMetrics
public import Foundation
import PipelineEngine
import Telemetry

/// Everything BudPipeline stores, over either backend, as one part per kind of record. SQL is
/// written once for both dialects where it can be; the few dialect-specific statements say so.
public struct PipelineStore: Sendable {
    public let database: any Database
    /// Whether the last write went through (see ``StorageHealth``).
    public let health: StorageHealth
    public let definitions: DefinitionStore
    public let executions: ExecutionStore
    public let outbox: OutboxStore
    public let timers: TimerStore
    public let leases: LeaseStore
    public let retention: RetentionStore
    public let triggers: TriggerStore
    public let inboundEvents: InboundEventStore
    public let interruptions: InterruptionStore
    public let cluster: ClusterStore

    /// `metrics` receives the failed database operations by kind (``MetricCatalog/databaseErrors``).
    public init(database: any Database, metrics: any MetricsFactory = NOOPMetricsHandler.instance) {
        let health = StorageHealth()
        let monitored = MonitoredDatabase(
            base: database, health: health,
            errors: metrics is NOOPMetricsHandler ? nil : CounterFamily(MetricCatalog.databaseErrors, factory: metrics))
        self.database = monitored
        self.health = health
        definitions = DefinitionStore(database: monitored)
        executions = ExecutionStore(database: monitored)
        outbox = OutboxStore(database: monitored)
        timers = TimerStore(database: monitored)
        leases = LeaseStore(database: monitored)
        retention = RetentionStore(database: monitored)
        triggers = TriggerStore(database: monitored)
        inboundEvents = InboundEventStore(database: monitored)
        interruptions = InterruptionStore(database: monitored)
        cluster = ClusterStore(database: monitored)
    }

    /// Writes one small row, to learn whether the database takes writes again; updates
    /// ``health`` either way.
    public func probeWrites(now: Date = Date()) async -> Bool {
        do {
            try await database.transaction { session in
                try session.execute(
                    "INSERT INTO storage_probe (id, checked_at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
                    .date(now))
            }
            return true
        } catch {
            return false
        }
    }

    public var dialect: SQLDialect { database.dialect }
}

/// Failures of the store beyond the database's own.
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The record does not exist.
    case notFound(String)

    public var description: String {
        switch self {
        case .notFound(let what): "\(what) not found"
        }
    }
}

/// One part of ``PipelineStore``: the queries for one kind of record, over the shared database.
protocol StorePart: Sendable {
    var database: any Database { get }
}

extension StorePart {
    var dialect: SQLDialect { database.dialect }
}

extension SQLDialect {
    /// `column` is one of the integers of the JSON array bound as parameter `$number`: lists travel
    /// as one parameter, so the statement's text is the same however long the list is. On
    /// PostgreSQL the list becomes an array compared with `= ANY`, which an index on `column`
    /// serves (an `IN` over a set-returning function is planned as a scan of the whole table once
    /// the table is large enough and the function's row estimate is its default of 100).
    func condition(_ column: String, inIntegersOfJSONArray number: Int) -> String {
        condition(column, inJSONArray: number, ofType: "bigint")
    }

    /// `column` is one of the ids (UUID text) of the JSON array bound as parameter `$number`; see
    /// ``condition(_:inIntegersOfJSONArray:)``.
    func condition(_ column: String, inIDsOfJSONArray number: Int) -> String {
        condition(column, inJSONArray: number, ofType: "uuid")
    }

    private func condition(_ column: String, inJSONArray number: Int, ofType type: String) -> String {
        self == .postgres
            ? "\(column) = ANY(ARRAY(SELECT CAST(value AS \(type)) FROM json_array_elements_text(CAST($\(number) AS json))))"
            : "\(column) IN (SELECT value FROM json_each($\(number)))"
    }

    /// The text value of `key` (a constant, never input) of the JSON object in `column`; NULL
    /// when the key is missing.
    func jsonText(of column: String, key: StaticString) -> String {
        self == .postgres ? "(\(column) ->> '\(key)')" : "json_extract(\(column), '$.\(key)')"
    }

    /// What a claim's subquery adds so that concurrent claimers skip each other's rows:
    /// `FOR UPDATE SKIP LOCKED` on PostgreSQL; nothing on SQLite, whose single writer serialises
    /// claims.
    var skipLocked: String { self == .postgres ? "FOR UPDATE SKIP LOCKED" : "" }
}
