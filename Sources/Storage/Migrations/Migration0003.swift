extension Migration {
    /// How many times a process died while working on a step or an execution (see
    /// docs/operations.md, "Crash loops"): after a configured number, the step is failed instead
    /// of run again.
    static let interruptions = Migration(
        version: 3,
        name: "interruptions",
        postgres: """
            ALTER TABLE step_execution ADD COLUMN interruptions integer NOT NULL DEFAULT 0;
            ALTER TABLE pipeline_execution ADD COLUMN interruptions integer NOT NULL DEFAULT 0;
            """,
        sqlite: """
            ALTER TABLE step_execution ADD COLUMN interruptions INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE pipeline_execution ADD COLUMN interruptions INTEGER NOT NULL DEFAULT 0;
            """
    )
}
