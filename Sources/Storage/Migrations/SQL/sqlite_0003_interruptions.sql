ALTER TABLE step_execution ADD COLUMN interruptions INTEGER NOT NULL DEFAULT 0;
ALTER TABLE pipeline_execution ADD COLUMN interruptions INTEGER NOT NULL DEFAULT 0;
CREATE TABLE storage_probe (id INTEGER PRIMARY KEY, checked_at TEXT NOT NULL);