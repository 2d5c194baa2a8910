CREATE INDEX idx_outbox_execution ON outbox (execution_id, id);
