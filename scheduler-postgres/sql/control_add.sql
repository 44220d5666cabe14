-- A new control (`ExecutionAudit::add_control`), active, created at store
-- time: $2 id (v7), $3 kind, $4 job, $5 and $6 scope (NULL for every
-- scope), $7 note (bounded), $8 a pause's until, $9 its skip_missed, $10 and
-- $11 a backfill's range, whose cursor starts at $10.
INSERT INTO {controls} ({control_columns})
VALUES ($2, $3, $4, $5, $6, $7, 'active', NULL, {now}, NULL, $8, $9, $10, $11, $10, {now})
RETURNING {control_columns}
