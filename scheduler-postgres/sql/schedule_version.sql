-- The current version of stored schedule $1 (no row: deleted, or never
-- stored), read by a stored schedule's claim once it holds the job's claim
-- lock (Steering::superseded), so no write of the schedule commits between
-- this read and the claim's writes. A compiled-in job's claim never sends it.
SELECT version FROM {schedules} WHERE name = $1
