-- How far the runs of control $1 got (`Progress::of_rows`): its rows by
-- status, through the partial index on control_id.
SELECT count(*) FILTER (WHERE status = 'SUCCESS') AS succeeded,
       count(*) FILTER (WHERE status = 'FAILED') AS failed,
       count(*) FILTER (WHERE status = 'RUNNING') AS running
FROM {table} WHERE control_id = $1
