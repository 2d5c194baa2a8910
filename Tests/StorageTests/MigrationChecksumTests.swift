import Testing

@testable import Storage

/// The migrations' SQL as released: a database records each applied migration's checksum, and a
/// server refuses a schema whose applied SQL changed. Editing an applied migration's file would
/// make every existing database refuse to start; these pins fail first.
@Suite("Migration checksums")
struct MigrationChecksumTests {
    static let released: [(version: Int, name: String, postgres: String, sqlite: String)] = [
        (1, "initial_schema", "0be2051adac9a3b2", "94c5da5a7c9c18da"),
        (2, "parked_inbound_events", "435403576a31c9e0", "29b99af571f7c08b"),
        (3, "interruptions", "b7a95e69c51da024", "de8ccb885b4b4967"),
        (4, "ownership and signed webhooks", "29a8c95e4a0bb682", "9b610c8abc218902"),
        (5, "execution_retry_of", "ec15508c87252464", "a43edb51dea9adee"),
        (6, "outbox_execution_index", "e7107880ca78675c", "e7107880ca78675c"),
        (7, "outbox_due_order_index", "c34ca4a75ac0b253", "c34ca4a75ac0b253"),
        (8, "outbox_due_in_write_order", "2f4c66fadfacfbbb", "2f4c66fadfacfbbb"),
    ]

    @Test func releasedMigrationsKeepTheirSQL() {
        for pin in Self.released {
            guard let migration = Migration.all.first(where: { $0.version == pin.version }) else {
                Issue.record("migration \(pin.version) is gone")
                continue
            }
            #expect(migration.name == pin.name)
            #expect(migration.checksum(for: .postgres) == pin.postgres, "PostgreSQL SQL of migration \(pin.version) changed")
            #expect(migration.checksum(for: .sqlite) == pin.sqlite, "SQLite SQL of migration \(pin.version) changed")
        }
    }

    @Test func versionsAreConsecutiveAndEachHasBothDialects() {
        #expect(Migration.all.map(\.version) == Array(1...Migration.all.count))
        for migration in Migration.all {
            #expect(!migration.sql(for: .postgres).isEmpty && !migration.sql(for: .sqlite).isEmpty)
        }
    }
}
