-- The attempts log of a page of executions (ExecutionAudit::attempts_of):
-- the ids as one array ($1), each found through the primary key (execution,
-- attempt number), in attempt order. The caller groups the records by id.
SELECT {attempt_columns}
FROM {attempts} WHERE execution_id = ANY($1::uuid[])
ORDER BY execution_id, attempt
