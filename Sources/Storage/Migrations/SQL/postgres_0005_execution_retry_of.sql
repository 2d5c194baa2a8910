ALTER TABLE pipeline_execution ADD COLUMN retry_of uuid;
UPDATE pipeline_execution AS execution SET retry_of = first_retry.retry_of
FROM (
    SELECT DISTINCT ON (pipeline_definition ->> 'retry_of') id, CAST(pipeline_definition ->> 'retry_of' AS uuid) AS retry_of
    FROM pipeline_execution
    WHERE pipeline_definition ->> 'retry_of' IS NOT NULL
    ORDER BY pipeline_definition ->> 'retry_of', created_at, id
) AS first_retry
WHERE execution.id = first_retry.id;
CREATE UNIQUE INDEX uq_pipeline_execution_retry_of ON pipeline_execution (retry_of) WHERE retry_of IS NOT NULL;