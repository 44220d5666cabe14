-- A dry run of pruning: how many rows match.
SELECT count(*) FROM {table} WHERE {prunable}
