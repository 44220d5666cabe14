-- Every column of a control, in the order `codec::control` reads them.
id, job_name, scope_kind, scope_id, note, kind, state, reason, created_at, ended_at,
until_time, skip_missed, from_time, to_time, cursor_time, updated_at
