CREATE TABLE pipeline_definition (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    name TEXT NOT NULL,
    description TEXT,
    icon TEXT,
    dag_definition TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'DRAFT' CONSTRAINT ck_pipeline_definition_status CHECK (status IN ('DRAFT', 'ACTIVE', 'ARCHIVED')),
    user_id TEXT,
    system_owned INTEGER NOT NULL DEFAULT 0,
    step_count INTEGER NOT NULL DEFAULT 0 CONSTRAINT ck_pipeline_definition_step_count CHECK (step_count >= 0),
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX idx_pipeline_definition_name ON pipeline_definition (name);
CREATE INDEX idx_pipeline_definition_status ON pipeline_definition (status);
CREATE INDEX idx_pipeline_definition_created_at ON pipeline_definition (created_at DESC);
CREATE INDEX idx_pipeline_definition_user_id ON pipeline_definition (user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX uq_pipeline_definition_owner_name ON pipeline_definition (COALESCE(user_id, ''), name);

CREATE TABLE pipeline_execution (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    pipeline_id TEXT REFERENCES pipeline_definition (id) ON DELETE SET NULL,
    pipeline_definition TEXT NOT NULL,
    initiator TEXT NOT NULL,
    start_time TEXT,
    end_time TEXT,
    status TEXT NOT NULL DEFAULT 'PENDING'
        CONSTRAINT ck_pipeline_execution_status CHECK (status IN ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED')),
    progress_percentage REAL NOT NULL DEFAULT 0
        CONSTRAINT ck_pipeline_execution_progress CHECK (progress_percentage >= 0 AND progress_percentage <= 100),
    final_outputs TEXT,
    error_info TEXT,
    subscriber_ids TEXT,
    payload_type TEXT,
    notification_workflow_id TEXT,
    event_sequence INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX idx_pipeline_execution_pipeline_id ON pipeline_execution (pipeline_id);
CREATE INDEX idx_pipeline_execution_status ON pipeline_execution (status);
CREATE INDEX idx_pipeline_execution_initiator ON pipeline_execution (initiator);
CREATE INDEX idx_pipeline_execution_created_at ON pipeline_execution (created_at DESC);
CREATE INDEX idx_pipeline_execution_retention ON pipeline_execution (end_time)
    WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED');

CREATE TABLE step_execution (
    id TEXT PRIMARY KEY,
    execution_id TEXT NOT NULL REFERENCES pipeline_execution (id) ON DELETE CASCADE,
    version INTEGER NOT NULL DEFAULT 1,
    step_id TEXT NOT NULL,
    step_name TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'PENDING' CONSTRAINT ck_step_execution_status CHECK (
        status IN ('PENDING', 'RUNNING', 'AWAITING_EVENT', 'RETRYING', 'COMPLETED', 'FAILED', 'SKIPPED', 'TIMEOUT', 'CANCELLED')),
    start_time TEXT,
    end_time TEXT,
    progress_percentage REAL NOT NULL DEFAULT 0
        CONSTRAINT ck_step_execution_progress CHECK (progress_percentage >= 0 AND progress_percentage <= 100),
    eta_seconds INTEGER,
    outputs TEXT,
    error_message TEXT,
    retry_count INTEGER NOT NULL DEFAULT 0 CONSTRAINT ck_step_execution_retry_count CHECK (retry_count >= 0),
    sequence_number INTEGER NOT NULL CONSTRAINT ck_step_execution_sequence CHECK (sequence_number > 0),
    awaiting_event INTEGER NOT NULL DEFAULT 0,
    external_workflow_id TEXT,
    handler_type TEXT,
    timeout_at TEXT,
    failure_tolerated INTEGER NOT NULL DEFAULT 0,
    dispatch TEXT,
    lease_owner TEXT,
    lease_expires_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    CONSTRAINT uq_step_execution_step_id UNIQUE (execution_id, step_id)
);
CREATE INDEX idx_step_execution_sequence ON step_execution (execution_id, sequence_number);
CREATE INDEX idx_step_execution_external_workflow ON step_execution (external_workflow_id)
    WHERE status = 'AWAITING_EVENT';
CREATE INDEX idx_step_execution_lease ON step_execution (lease_expires_at) WHERE status = 'RUNNING';

CREATE TABLE progress_event (
    id TEXT PRIMARY KEY,
    execution_id TEXT NOT NULL REFERENCES pipeline_execution (id) ON DELETE CASCADE,
    event_type TEXT NOT NULL CONSTRAINT ck_progress_event_type
        CHECK (event_type IN ('workflow_progress', 'step_completed', 'eta_update', 'workflow_completed')),
    progress_percentage REAL NOT NULL
        CONSTRAINT ck_progress_event_progress CHECK (progress_percentage >= 0 AND progress_percentage <= 100),
    eta_seconds INTEGER CONSTRAINT ck_progress_event_eta CHECK (eta_seconds IS NULL OR eta_seconds >= 0),
    current_step_desc TEXT,
    event_details TEXT,
    timestamp TEXT NOT NULL,
    sequence_number INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX idx_progress_event_execution_sequence ON progress_event (execution_id, sequence_number);
CREATE INDEX idx_progress_event_execution_type ON progress_event (execution_id, event_type);

CREATE TABLE execution_subscription (
    id TEXT PRIMARY KEY,
    execution_id TEXT NOT NULL REFERENCES pipeline_execution (id) ON DELETE CASCADE,
    callback_topic TEXT NOT NULL,
    subscription_time TEXT NOT NULL,
    expiry_time TEXT,
    delivery_status TEXT NOT NULL DEFAULT 'ACTIVE'
        CONSTRAINT ck_execution_subscription_status CHECK (delivery_status IN ('ACTIVE', 'EXPIRED', 'FAILED')),
    created_at TEXT NOT NULL,
    CONSTRAINT uq_execution_subscription_topic UNIQUE (execution_id, callback_topic)
);

CREATE TABLE execution_timer (
    execution_id TEXT NOT NULL REFERENCES pipeline_execution (id) ON DELETE CASCADE,
    timer_key TEXT NOT NULL,
    due_at TEXT NOT NULL,
    claimed_by TEXT,
    claimed_until TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (execution_id, timer_key)
);
CREATE INDEX idx_execution_timer_due ON execution_timer (due_at);

CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT REFERENCES pipeline_execution (id) ON DELETE CASCADE,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'PENDING' CONSTRAINT ck_outbox_status CHECK (status IN ('PENDING', 'DEAD')),
    attempts INTEGER NOT NULL DEFAULT 0,
    available_at TEXT NOT NULL,
    claimed_by TEXT,
    claimed_until TEXT,
    last_error TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX idx_outbox_available ON outbox (available_at) WHERE status = 'PENDING';

CREATE TABLE processed_inbound_event (
    event_id TEXT PRIMARY KEY,
    source TEXT,
    event_type TEXT,
    outcome TEXT,
    processed_at TEXT NOT NULL
);
CREATE INDEX idx_processed_inbound_event_time ON processed_inbound_event (processed_at);

CREATE TABLE schedule (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    pipeline_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    schedule_type TEXT NOT NULL CONSTRAINT ck_schedule_type CHECK (schedule_type IN ('cron', 'interval', 'one_time', 'manual')),
    expression TEXT,
    timezone TEXT NOT NULL DEFAULT 'UTC',
    run_at TEXT,
    params TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    status TEXT NOT NULL DEFAULT 'active'
        CONSTRAINT ck_schedule_status CHECK (status IN ('active', 'paused', 'expired', 'completed')),
    next_run_at TEXT,
    last_run_at TEXT,
    last_execution_id TEXT,
    last_execution_status TEXT,
    run_count INTEGER NOT NULL DEFAULT 0,
    max_runs INTEGER,
    expires_at TEXT,
    user_id TEXT,
    created_by TEXT,
    claimed_by TEXT,
    claimed_until TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX idx_schedule_due ON schedule (next_run_at) WHERE enabled AND status = 'active';
CREATE INDEX idx_schedule_pipeline ON schedule (pipeline_id);

CREATE TABLE webhook (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    pipeline_id TEXT NOT NULL,
    name TEXT NOT NULL,
    secret_hash TEXT,
    allowed_ips TEXT,
    headers_to_include TEXT NOT NULL,
    params TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    last_triggered_at TEXT,
    trigger_count INTEGER NOT NULL DEFAULT 0,
    user_id TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX idx_webhook_pipeline ON webhook (pipeline_id);

CREATE TABLE event_trigger (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    pipeline_id TEXT NOT NULL,
    name TEXT NOT NULL,
    event_type TEXT NOT NULL,
    filters TEXT NOT NULL,
    params TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    last_triggered_at TEXT,
    trigger_count INTEGER NOT NULL DEFAULT 0,
    user_id TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX idx_event_trigger_type ON event_trigger (event_type) WHERE enabled;