ALTER TABLE pipeline_execution ADD COLUMN retry_of TEXT;
UPDATE pipeline_execution SET retry_of = json_extract(pipeline_definition, '$.retry_of')
WHERE id IN (
    SELECT id FROM (
        SELECT id, ROW_NUMBER() OVER (
            PARTITION BY json_extract(pipeline_definition, '$.retry_of') ORDER BY created_at, id) AS position
        FROM pipeline_execution
        WHERE json_extract(pipeline_definition, '$.retry_of') IS NOT NULL
    )
    WHERE position = 1
);
CREATE UNIQUE INDEX uq_pipeline_execution_retry_of ON pipeline_execution (retry_of) WHERE retry_of IS NOT NULL;