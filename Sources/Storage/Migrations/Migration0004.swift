extension Migration {
    /// Ownership and signed webhooks (see docs/security.md): executions keep the user they belong
    /// to; a webhook may require an HMAC signature instead of its shared secret, which needs the
    /// signing secret itself (its hash cannot verify a signature); and the delivery ids a webhook
    /// received within its tolerance window, so a replayed delivery is refused. Executions stored
    /// before have no owner: only the service caller sees them.
    static let ownership = Migration(
        version: 4,
        name: "ownership and signed webhooks",
        postgres: """
            ALTER TABLE pipeline_execution ADD COLUMN user_id uuid;
            CREATE INDEX idx_pipeline_execution_user ON pipeline_execution (user_id, created_at DESC) WHERE user_id IS NOT NULL;
            ALTER TABLE webhook ADD COLUMN signing_secret varchar(128);
            ALTER TABLE webhook ADD COLUMN signature_tolerance_seconds integer NOT NULL DEFAULT 300;
            CREATE TABLE webhook_delivery (
                webhook_id uuid NOT NULL,
                delivery_id varchar(200) NOT NULL,
                received_at timestamptz NOT NULL,
                PRIMARY KEY (webhook_id, delivery_id)
            );
            CREATE INDEX idx_webhook_delivery_received ON webhook_delivery (received_at);
            """,
        sqlite: """
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
            """
    )
}
