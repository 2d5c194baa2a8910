DROP INDEX idx_outbox_available;
CREATE INDEX idx_outbox_due ON outbox (available_at, id) WHERE status = 'PENDING';
