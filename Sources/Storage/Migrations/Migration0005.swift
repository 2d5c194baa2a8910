extension Migration {
    /// The execution an execution retries, as a column with a unique index: an execution is
    /// retried at most once, so that concurrent retries of it start one new execution. Retries
    /// made before (known from the stored definition's `retry_of`) keep the first one of each.
    static let executionRetryOf = Migration(
        version: 5,
        name: "execution_retry_of",
        postgres: """
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
            """,
        sqlite: """
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
            """
    )
}
