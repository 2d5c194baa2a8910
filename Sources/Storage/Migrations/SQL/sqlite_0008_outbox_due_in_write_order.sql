UPDATE outbox SET available_at = d.due FROM (
    SELECT id, max(available_at) OVER (PARTITION BY execution_id ORDER BY id) AS due
    FROM outbox WHERE status = 'PENDING' AND execution_id IS NOT NULL) d
WHERE outbox.id = d.id AND outbox.available_at < d.due;
UPDATE outbox SET status = 'DEAD', last_error = 'the event belongs to no execution'
WHERE status = 'PENDING' AND execution_id IS NULL;
