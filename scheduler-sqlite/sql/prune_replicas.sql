-- The replica registry's retention, in the prune's IMMEDIATE transaction:
-- the rows of replicas last seen before the prune's cutoff (stopped or gone
-- long ago; a fleet that restarts often would otherwise pile them up).
DELETE FROM sys_cron_replicas WHERE last_seen_at < :cutoff
