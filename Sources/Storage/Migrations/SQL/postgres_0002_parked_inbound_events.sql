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