ALTER TABLE step_execution ADD COLUMN interruptions integer NOT NULL DEFAULT 0;
ALTER TABLE pipeline_execution ADD COLUMN interruptions integer NOT NULL DEFAULT 0;
CREATE TABLE storage_probe (id integer PRIMARY KEY, checked_at timestamptz NOT NULL);