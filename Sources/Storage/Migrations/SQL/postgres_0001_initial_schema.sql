CREATE FUNCTION budpipeline_expect_rows(actual integer, expected integer, message text) RETURNS void
LANGUAGE plpgsql AS $body$
BEGIN
    IF actual <> expected THEN
        RAISE EXCEPTION USING ERRCODE = 'BP409', MESSAGE = message;
    END IF;
END
$body$;

CREATE TABLE pipeline_definition (
    id uuid PRIMARY KEY,
    version integer NOT NULL DEFAULT 1,
    name varchar(255) NOT NULL,
    description text,
    icon varchar(255),
    dag_definition json NOT NULL,
    status varchar(20) NOT NULL DEFAULT 'DRAFT' CONSTRAINT ck_pipeline_definition_status CHECK (status IN ('DRAFT', 'ACTIVE', 'ARCHIVED')),
    user_id uuid,
    system_owned boolean NOT NULL DEFAULT false,
    step_count integer NOT NULL DEFAULT 0 CONSTRAINT ck_pipeline_definition_step_count CHECK (step_count >= 0),
    created_by varchar(255) NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX idx_pipeline_definition_name ON pipeline_definition (name);
CREATE INDEX idx_pipeline_definition_status ON pipeline_definition (status);
CREATE INDEX idx_pipeline_definition_created_at ON pipeline_definition (created_at DESC);
CREATE INDEX idx_pipeline_definition_user_id ON pipeline_definition (user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX uq_pipeline_definition_owner_name ON pipeline_definition (COALESCE(CAST(user_id AS text), ''), name);

CREATE TABLE pipeline_execution (
    id uuid PRIMARY KEY,
    version integer NOT NULL DEFAULT 1,
    pipeline_id uuid REFERENCES pipeline_definition (id) ON DELETE SET NULL,
    pipeline_definition json NOT NULL,
    initiator varchar(255) NOT NULL,
    start_time timestamptz,
    end_time timestamptz,
    status varchar(20) NOT NULL DEFAULT 'PENDING'
        CONSTRAINT ck_pipeline_execution_status CHECK (status IN ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED')),
    progress_percentage double precision NOT NULL DEFAULT 0
        CONSTRAINT ck_pipeline_execution_progress CHECK (progress_percentage >= 0 AND progress_percentage <= 100),
    final_outputs json,
    error_info json,
    subscriber_ids varchar(500),
    payload_type varchar(100),
    notification_workflow_id varchar(255),
    event_sequence bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX idx_pipeline_execution_pipeline_id ON pipeline_execution (pipeline_id);
CREATE INDEX idx_pipeline_execution_status ON pipeline_execution (status);
CREATE INDEX idx_pipeline_execution_initiator ON pipeline_execution (initiator);
CREATE INDEX idx_pipeline_execution_created_at ON pipeline_execution (created_at DESC);
CREATE INDEX idx_pipeline_execution_retention ON pipeline_execution (end_time)
    WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED');

CREATE TABLE step_execution (
    id uuid PRIMARY KEY,
    execution_id uuid NOT NULL REFERENCES pipeline_execution (id) ON DELETE CASCADE,
    version integer NOT NULL DEFAULT 1,
    step_id varchar(255) NOT NULL,
    step_name varchar(255) NOT NULL,
    status varchar(20) NOT NULL DEFAULT 'PENDING' CONSTRAINT ck_step_execution_status CHECK (
        status IN ('PENDING', 'RUNNING', 'AWAITING_EVENT', 'RETRYING', 'COMPLETED', 'FAILED', 'SKIPPED', 'TIMEOUT', 'CANCELLED')),
    start_time timestamptz,
    end_time timestamptz,
    progress_percentage double precision NOT NULL DEFAULT 0
        CONSTRAINT ck_step_execution_progress CHECK (progress_percentage >= 0 AND progress_percentage <= 100),
    eta_seconds integer,
    outputs json,
    error_message text,
    retry_count integer NOT NULL DEFAULT 0 CONSTRAINT ck_step_execution_retry_count CHECK (retry_count >= 0),
    sequence_number integer NOT NULL CONSTRAINT ck_step_execution_sequence CHECK (sequence_number > 0),
    awaiting_event boolean NOT NULL DEFAULT false,
    external_workflow_id varchar(255),
    handler_type varchar(255),
    timeout_at timestamptz,
    failure_tolerated boolean NOT NULL DEFAULT false,
    dispatch json,
    lease_owner varchar(255),
    lease_expires_at timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CONSTRAINT uq_step_execution_step_id UNIQUE (execution_id, step_id)
);

CREATE INDEX idx_step_execution_external_workflow ON step_execution (external_workflow_id)
    WHERE status = 'AWAITING_EVENT';
CREATE INDEX idx_step_execution_lease ON step_execution (lease_expires_at) WHERE status = 'RUNNING';

CREATE TABLE progress_event (
    id uuid PRIMARY KEY,
    execution_id uuid NOT NULL REFERENCES pipeline_execution (id) ON DELETE CASCADE,
    event_type varchar(50) NOT NULL CONSTRAINT ck_progress_event_type
        CHECK (event_type IN ('workflow_progress', 'step_completed', 'eta_update', 'workflow_completed')),
    progress_percentage double precision NOT NULL
        CONSTRAINT ck_progress_event_progress CHECK (progress_percentage >= 0 AND progress_percentage <= 100),
    eta_seconds integer CONSTRAINT ck_progress_event_eta CHECK (eta_seconds IS NULL OR eta_seconds >= 0),
    current_step_desc varchar(500),
    event_details json,
    timestamp timestamptz NOT NULL,
    sequence_number bigint NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX idx_progress_event_execution_sequence ON progress_event (execution_id, sequence_number);


CREATE TABLE execution_subscription (
    id uuid PRIMARY KEY,
    execution_id uuid NOT NULL REFERENCES pipeline_execution (id) ON DELETE CASCADE,
    callback_topic varchar(255) NOT NULL,
    subscription_time timestamptz NOT NULL,
    expiry_time timestamptz,
    delivery_status varchar(20) NOT NULL DEFAULT 'ACTIVE'
        CONSTRAINT ck_execution_subscription_status CHECK (delivery_status IN ('ACTIVE', 'EXPIRED', 'FAILED')),
    created_at timestamptz NOT NULL,
    CONSTRAINT uq_execution_subscription_topic UNIQUE (execution_id, callback_topic)
);

CREATE TABLE execution_timer (
    execution_id uuid NOT NULL REFERENCES pipeline_execution (id) ON DELETE CASCADE,
    timer_key varchar(600) NOT NULL,
    due_at timestamptz NOT NULL,
    claimed_by varchar(255),
    claimed_until timestamptz,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (execution_id, timer_key)
);
CREATE INDEX idx_execution_timer_due ON execution_timer (due_at);

CREATE TABLE outbox (
    id bigserial PRIMARY KEY,
    execution_id uuid REFERENCES pipeline_execution (id) ON DELETE CASCADE,
    event_type varchar(50) NOT NULL,
    payload json NOT NULL,
    status varchar(20) NOT NULL DEFAULT 'PENDING' CONSTRAINT ck_outbox_status CHECK (status IN ('PENDING', 'DEAD')),
    attempts integer NOT NULL DEFAULT 0,
    available_at timestamptz NOT NULL,
    claimed_by varchar(255),
    claimed_until timestamptz,
    last_error text,
    created_at timestamptz NOT NULL
);
CREATE INDEX idx_outbox_available ON outbox (available_at) WHERE status = 'PENDING';

CREATE TABLE processed_inbound_event (
    event_id varchar(255) PRIMARY KEY,
    source varchar(255),
    event_type varchar(255),
    outcome json,
    processed_at timestamptz NOT NULL
);
CREATE INDEX idx_processed_inbound_event_time ON processed_inbound_event (processed_at);

CREATE TABLE schedule (
    id uuid PRIMARY KEY,
    version integer NOT NULL DEFAULT 1,
    pipeline_id uuid NOT NULL,
    name varchar(255) NOT NULL,
    description text,
    schedule_type varchar(20) NOT NULL CONSTRAINT ck_schedule_type CHECK (schedule_type IN ('cron', 'interval', 'one_time', 'manual')),
    expression varchar(255),
    timezone varchar(64) NOT NULL DEFAULT 'UTC',
    run_at timestamptz,
    params json NOT NULL,
    enabled boolean NOT NULL DEFAULT true,
    status varchar(20) NOT NULL DEFAULT 'active'
        CONSTRAINT ck_schedule_status CHECK (status IN ('active', 'paused', 'expired', 'completed')),
    next_run_at timestamptz,
    last_run_at timestamptz,
    last_execution_id uuid,
    last_execution_status varchar(20),
    run_count integer NOT NULL DEFAULT 0,
    max_runs integer,
    expires_at timestamptz,
    user_id uuid,
    created_by varchar(255),
    claimed_by varchar(255),
    claimed_until timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX idx_schedule_due ON schedule (next_run_at) WHERE enabled AND status = 'active';
CREATE INDEX idx_schedule_pipeline ON schedule (pipeline_id);

CREATE TABLE webhook (
    id uuid PRIMARY KEY,
    version integer NOT NULL DEFAULT 1,
    pipeline_id uuid NOT NULL,
    name varchar(255) NOT NULL,
    secret_hash varchar(128),
    allowed_ips json,
    headers_to_include json NOT NULL,
    params json NOT NULL,
    enabled boolean NOT NULL DEFAULT true,
    last_triggered_at timestamptz,
    trigger_count integer NOT NULL DEFAULT 0,
    user_id uuid,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX idx_webhook_pipeline ON webhook (pipeline_id);

CREATE TABLE event_trigger (
    id uuid PRIMARY KEY,
    version integer NOT NULL DEFAULT 1,
    pipeline_id uuid NOT NULL,
    name varchar(255) NOT NULL,
    event_type varchar(255) NOT NULL,
    filters json NOT NULL,
    params json NOT NULL,
    enabled boolean NOT NULL DEFAULT true,
    last_triggered_at timestamptz,
    trigger_count integer NOT NULL DEFAULT 0,
    user_id uuid,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX idx_event_trigger_type ON event_trigger (event_type) WHERE enabled;