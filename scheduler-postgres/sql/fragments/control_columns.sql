-- Every column of a control, as `rows::control` reads them (by name), in the
-- order of the controls table.
id, kind, job_name, scope_kind, scope_id, note, state, reason, created_at, ended_at,
until_time, skip_missed, from_time, to_time, cursor_time, updated_at
