extension Migration {
    /// Every migration this build knows, oldest first. The SQL of each is a file per dialect in
    /// `Migrations/SQL/` (`<dialect>_<version>_<name>.sql`), compiled into the binary: nothing is
    /// read from disk at run time. A file's bytes are its checksum: never edit an applied one,
    /// add a migration instead (`MigrationChecksumTests` pins the checksums of the released ones).
    public static let all: [Migration] = [
        // The first schema: pipeline definitions, executions and steps with the engine's
        // statuses, plus timers, leases, the outbox, processed inbound events, schedules, webhooks
        // and event triggers. JSON columns are PostgreSQL `json` (text kept as written, so a value
        // reads back with its keys in the order they were stored) and SQLite `TEXT`.
        Migration(
            version: 1, name: "initial_schema",
            postgres: PackageResources.postgres_0001_initial_schema_sql,
            sqlite: PackageResources.sqlite_0001_initial_schema_sql),
        // Events that arrived before any step awaited their workflow id: a service can report on
        // work faster than the step that started it is stored as waiting. They are kept for a
        // while and given to the step once it waits.
        Migration(
            version: 2, name: "parked_inbound_events",
            postgres: PackageResources.postgres_0002_parked_inbound_events_sql,
            sqlite: PackageResources.sqlite_0002_parked_inbound_events_sql),
        // How many times a process died while working on a step or an execution (see
        // docs/operations.md, "Crash loops"): after a configured number, the step is failed
        // instead of run again. And a one-row table `/ready` writes to learn whether the database
        // takes writes again after a full or read-only disk.
        Migration(
            version: 3, name: "interruptions",
            postgres: PackageResources.postgres_0003_interruptions_sql,
            sqlite: PackageResources.sqlite_0003_interruptions_sql),
        // Ownership and signed webhooks (see docs/security.md): executions keep the user they
        // belong to; a webhook may require an HMAC signature instead of its shared secret, which
        // needs the signing secret itself (its hash cannot verify a signature); and the delivery
        // ids a webhook received within its tolerance window, so a replayed delivery is refused.
        // Executions stored before have no owner: only the service caller sees them.
        Migration(
            version: 4, name: "ownership and signed webhooks",
            postgres: PackageResources.postgres_0004_ownership_and_signed_webhooks_sql,
            sqlite: PackageResources.sqlite_0004_ownership_and_signed_webhooks_sql),
        // The execution an execution retries, as a column with a unique index: an execution is
        // retried at most once, so that concurrent retries of it start one new execution. Retries
        // made before (known from the stored definition's `retry_of`) keep the first one of each.
        Migration(
            version: 5, name: "execution_retry_of",
            postgres: PackageResources.postgres_0005_execution_retry_of_sql,
            sqlite: PackageResources.sqlite_0005_execution_retry_of_sql),
        // The outbox by execution: a claim takes each execution's pending events together, from
        // its oldest one, and deleting an execution removes its events through the foreign key.
        // Without it both read the whole outbox, once per execution.
        Migration(
            version: 6, name: "outbox_execution_index",
            postgres: PackageResources.postgres_0006_outbox_execution_index_sql,
            sqlite: PackageResources.sqlite_0006_outbox_execution_index_sql),
        // Pending events in the order the publisher takes them, due time then id: a claim reads
        // the first due events straight from the index and stops, however long the backlog,
        // instead of collecting every due event and sorting them (see docs/performance.md,
        // "Publishing").
        Migration(
            version: 7, name: "outbox_due_order_index",
            postgres: PackageResources.postgres_0007_outbox_due_order_index_sql,
            sqlite: PackageResources.sqlite_0007_outbox_due_order_index_sql),
        // Pending events due in the order they were written, per execution, as the store keeps
        // them from version 7 on: events an older version wrote behind one waiting for a retry
        // become due with it (else they would sit at the front of the due order, unclaimable,
        // and fill the claim's window). Pending events of no execution are given up on.
        Migration(
            version: 8, name: "outbox_due_in_write_order",
            postgres: PackageResources.postgres_0008_outbox_due_in_write_order_sql,
            sqlite: PackageResources.sqlite_0008_outbox_due_in_write_order_sql),
        // The processes sharing a PostgreSQL database, each holding an advisory lock on its row's
        // id for as long as its connection lives: another process waiting on that lock learns at
        // once that it died, and hands its claimed work to the others (see docs/operations.md,
        // "Scaling out"). SQLite has one process and keeps the table empty.
        Migration(
            version: 9, name: "cluster_members",
            postgres: PackageResources.postgres_0009_cluster_members_sql,
            sqlite: PackageResources.sqlite_0009_cluster_members_sql),
    ]
}
