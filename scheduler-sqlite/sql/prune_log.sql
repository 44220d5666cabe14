-- The attempts logs of the rows prune.sql just deleted (their ids, as one
-- JSON array), in the prune's IMMEDIATE transaction: each found through the
-- log's primary key.
DELETE FROM sys_cron_execution_attempts
WHERE execution_id IN (SELECT value FROM json_each(:ids))
