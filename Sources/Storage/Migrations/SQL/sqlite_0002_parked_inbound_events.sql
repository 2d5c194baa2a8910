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