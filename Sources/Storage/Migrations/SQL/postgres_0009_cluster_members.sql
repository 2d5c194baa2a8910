CREATE TABLE cluster_member (
    id bigserial PRIMARY KEY,
    worker_id varchar(255) NOT NULL,
    joined_at timestamptz NOT NULL
);
CREATE INDEX cluster_member_worker ON cluster_member (worker_id);
