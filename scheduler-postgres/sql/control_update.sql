-- The write-back of a change of a control ($1), under the row lock
-- control_lock.sql took: every column `ControlChange::apply` may change
-- takes the value it computed ($2 state, $3 reason, $4 ended_at, $5
-- skip_missed, $6 cursor, $7 updated_at), so the rule lives only there.
UPDATE {controls} SET state = $2, reason = $3, ended_at = $4, skip_missed = $5,
    cursor_time = $6, updated_at = $7
WHERE id = $1
RETURNING {control_columns}
