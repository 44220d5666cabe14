-- Tells listeners that the controls of job $1 changed, on the channel
-- {channel} (`CONTROLS_CHANNEL`, shared by every table of the database: the
-- payload is the job's name alone). Sent in the transaction of the change,
-- so it is delivered when, and only if, the change commits.
SELECT pg_notify({channel}, $1)::text
