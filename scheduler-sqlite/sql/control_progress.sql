-- How far a trigger's or a backfill's runs got (Progress::of_rows): its rows
-- by status, through the partial index of rows with a control (the term
-- `control_id = :id` implies the index's `control_id IS NOT NULL`).
SELECT count(CASE WHEN status = 'SUCCESS' THEN 1 END),
    count(CASE WHEN status = 'FAILED' THEN 1 END),
    count(CASE WHEN status = 'RUNNING' THEN 1 END)
FROM sys_cron_executions WHERE control_id = :id
