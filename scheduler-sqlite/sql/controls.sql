-- The controls a ControlRead selects (ControlRead::selects): the active ones
-- and those that ended at or after :since (NULL when the read asks for active
-- ones only: `ended_at >= NULL` is not true), ordered by `created_at`, then
-- id (hyphenated lowercase text sorts as the uuid's bytes do).
--
-- {filter} is `job_name IN (SELECT value FROM json_each(:jobs))` for the
-- manager's per-tick read of its jobs (a JSON array of names): each branch
-- is then one range of the (job_name, ended_at) index per job, the active
-- controls (`ended_at IS NULL`: a CHECK holds it to the active state) and
-- the recently ended ones, so a job's old controls are never walked. Or
-- `1`, for an operator's read of every job: a pass over the table.
SELECT {control_columns}
FROM sys_cron_controls
WHERE ({filter}) AND ended_at IS NULL
UNION ALL
SELECT {control_columns}
FROM sys_cron_controls
WHERE ({filter}) AND ended_at >= :since
ORDER BY created_at, id
