-- Every stored schedule (LeaseStore::schedules), by name in byte order
-- ("C", the column's collation, so the primary key's index gives the order
-- without a sort). The definition comes back as JSON text, which
-- StoredSchedule::definition_from_json reads for every store alike.
SELECT name, version, definition::text AS definition, created_at, updated_at
FROM {schedules} ORDER BY name COLLATE "C"
