-- A new control (ExecutionAudit::add_control), every column bound from the
-- Control the store built: active, at store time, a backfill's cursor at its
-- start. What a kind does not use is NULL (skip_missed 0).
INSERT INTO sys_cron_controls ({control_columns})
VALUES (
    :id, :kind, :job, :scope_kind, :scope_id, :note, :state, :reason, :created_at,
    :ended_at, :until_time, :skip_missed, :from_time, :to_time, :cursor_time, :updated_at)
