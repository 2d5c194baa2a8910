extension Migration {
    /// How many times a process died while working on a step or an execution (see
    /// docs/operations.md, "Crash loops"): after a configured number, the step is failed instead
    /// of run again. And a one-row table `/ready` writes to learn whether the database takes
    /// writes again after a full or read-only disk.
    static let interruptions = Migration(
        version: 3,
        name: "interruptions",
        postgres: """
            ALTER TABLE step_execution ADD COLUMN interruptions integer NOT NULL DEFAULT 0;
            ALTER TABLE pipeline_execution ADD COLUMN interruptions integer NOT NULL DEFAULT 0;
            CREATE TABLE storage_probe (id integer PRIMARY KEY, checked_at timestamptz NOT NULL);
            """,
        sqlite: """
            ALTER TABLE step_execution ADD COLUMN interruptions INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE pipeline_execution ADD COLUMN interruptions INTEGER NOT NULL DEFAULT 0;
            CREATE TABLE storage_probe (id INTEGER PRIMARY KEY, checked_at TEXT NOT NULL);
            """
    )
}
