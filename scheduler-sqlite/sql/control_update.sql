-- The write-back of a change to a control (ControlChange::apply, computed
-- from the row control_get.sql read in the same IMMEDIATE transaction):
-- every column a change may touch takes the value computed, so the rule
-- lives only there. Guarded by what was read (still active, the same
-- cursor), so the write can only land on the control the rule decided
-- about.
UPDATE sys_cron_controls
SET state = :state, reason = :reason, ended_at = :ended_at, skip_missed = :skip_missed,
    cursor_time = :cursor_time, updated_at = :updated_at
WHERE id = :id AND state = 'active' AND cursor_time IS :read_cursor
