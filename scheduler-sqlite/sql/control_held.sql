-- The pause in force (active, `until_time` not reached at :now) that
-- already targets exactly what a new pause would: job :job and scope
-- (:scope_kind, :scope_id), both NULL for every scope (`IS`, so NULL
-- matches NULL). Read in add_control's IMMEDIATE transaction, so no other
-- control can be stored between this read and control_add.sql.
SELECT {control_columns}
FROM sys_cron_controls INDEXED BY idx_sys_cron_controls_job
WHERE job_name = :job AND kind = 'pause' AND ended_at IS NULL
    AND (until_time IS NULL OR until_time > :now)
    AND scope_kind IS :scope_kind AND scope_id IS :scope_id
ORDER BY created_at, id
LIMIT 1
