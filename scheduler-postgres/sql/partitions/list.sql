-- The range partitions of the executions table ($1), oldest first: each
-- one's name as statements use it (schema-qualified, quoted) and its
-- bounds, read back from the catalog (`pg_get_expr` prints each bound as the
-- literal it was created with, in the session's time zone and with its
-- offset, which the casts read back exactly). partitions.rs creates a range
-- only where no partition overlaps it, whatever its name (an operator's or
-- a tool's). The DEFAULT partition is not listed: it is never created
-- ahead nor dropped.
SELECT format('%I.%I', n.nspname, c.relname) AS name,
       (regexp_match(pg_get_expr(c.relpartbound, c.oid),
                     'FROM \(''([^'']+)''\)'))[1]::timestamptz AS lower,
       (regexp_match(pg_get_expr(c.relpartbound, c.oid),
                     'TO \(''([^'']+)''\)'))[1]::timestamptz AS upper
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE i.inhparent = $1::regclass
  AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
ORDER BY upper
