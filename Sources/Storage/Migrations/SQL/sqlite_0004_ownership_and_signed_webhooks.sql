ALTER TABLE pipeline_execution ADD COLUMN user_id TEXT;
CREATE INDEX idx_pipeline_execution_user ON pipeline_execution (user_id, created_at DESC) WHERE user_id IS NOT NULL;
ALTER TABLE webhook ADD COLUMN signing_secret TEXT;
ALTER TABLE webhook ADD COLUMN signature_tolerance_seconds INTEGER NOT NULL DEFAULT 300;
CREATE TABLE webhook_delivery (
    webhook_id TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (webhook_id, delivery_id)
);
CREATE INDEX idx_webhook_delivery_received ON webhook_delivery (received_at);