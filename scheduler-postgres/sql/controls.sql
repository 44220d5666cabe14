-- The controls a read selects (`ControlRead::selects`): every active one
-- (`ended_at IS NULL`, which the table's check makes the same as the state
-- `active`) and, when $1 is not NULL, those ended at or after it; of the
-- jobs {filter} names (empty, or a condition on the job names $2, an
-- array). Ordered by creation, then id (uuid compares bytewise, as Rust's
-- does). Each replica reads its jobs' controls once per tick: a job's two
-- ranges of the index on (job_name, ended_at).
SELECT {control_columns} FROM {controls}
WHERE {filter} (ended_at IS NULL OR ended_at >= $1)
ORDER BY created_at, id
