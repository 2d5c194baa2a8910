CREATE TABLE cluster_member (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    worker_id TEXT NOT NULL,
    joined_at TEXT NOT NULL
);
CREATE INDEX cluster_member_worker ON cluster_member (worker_id);
