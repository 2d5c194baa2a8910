extension Migration {
    /// Events that arrived before any step awaited their workflow id: a service can report on
    /// work faster than the step that started it is stored as waiting. They are kept for a while
    /// and given to the step once it waits.
    static let parkedInboundEvents = Migration(
        version: 2,
        name: "parked_inbound_events",
        postgres: """
            CREATE TABLE parked_inbound_event (
                id bigserial PRIMARY KEY,
                external_workflow_id varchar(255) NOT NULL,
                event_id varchar(255),
                source varchar(255),
                body json NOT NULL,
                received_at timestamptz NOT NULL
            );
            CREATE INDEX idx_parked_inbound_event_workflow ON parked_inbound_event (external_workflow_id);
            CREATE INDEX idx_parked_inbound_event_time ON parked_inbound_event (received_at);
            """,
        sqlite: """
            CREATE TABLE parked_inbound_event (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                external_workflow_id TEXT NOT NULL,
                event_id TEXT,
                source TEXT,
                body TEXT NOT NULL,
                received_at TEXT NOT NULL
            );
            CREATE INDEX idx_parked_inbound_event_workflow ON parked_inbound_event (external_workflow_id);
            CREATE INDEX idx_parked_inbound_event_time ON parked_inbound_event (received_at);
            """
    )
}
