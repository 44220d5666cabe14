-- Whether a pause in force (active, `until_time` not reached at store time)
-- already targets exactly what a new pause would: job $2 and scope ($3, $4),
-- both NULL for every scope. Read under the job's claim lock, so no other
-- addition can slip in between this read and control_add.sql.
SELECT {control_columns} FROM {controls}
WHERE job_name = $2 AND kind = 'pause' AND ended_at IS NULL
  AND (until_time IS NULL OR until_time > {now})
  AND scope_kind IS NOT DISTINCT FROM $3 AND scope_id IS NOT DISTINCT FROM $4
ORDER BY created_at, id
LIMIT 1
