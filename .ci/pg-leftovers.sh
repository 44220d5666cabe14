#!/usr/bin/env bash
# What the PostgreSQL tests leave behind on the server of DATABASE_URL: the
# schemas (in that database) and the databases whose names the tests and
# benchmarks give what they create (sched_test_*, bench_*, chaos_*, cli_*).
# A passing test drops what it created; a failing one may leave it for a
# look (the tests' janitor drops such schemas once 15 minutes old).
#
#   bash .ci/pg-leftovers.sh > before.txt         # "schema NAME" / "database NAME" lines
#   cargo test --workspace
#   bash .ci/pg-leftovers.sh --since before.txt   # fails if anything new is left
#
# --since compares names, not only counts: the janitor may drop old
# leftovers during the run, which would hide as many new ones in a count.
set -euo pipefail

: "${DATABASE_URL:?DATABASE_URL must name the test server}"

list() {
  psql -X -q -At -v ON_ERROR_STOP=1 -d "$DATABASE_URL" <<'SQL'
SELECT 'schema ' || nspname FROM pg_namespace
WHERE nspname LIKE 'sched\_test\_%' OR nspname LIKE 'bench\_%'
   OR nspname LIKE 'chaos\_%' OR nspname LIKE 'cli\_%'
UNION ALL
SELECT 'database ' || datname FROM pg_database
WHERE datname LIKE 'sched\_test\_%' OR datname LIKE 'bench\_%'
   OR datname LIKE 'chaos\_%' OR datname LIKE 'cli\_%'
ORDER BY 1
SQL
}

case "${1:-}" in
  "")
    list
    ;;
  --since)
    before=${2:?--since needs the file an earlier run printed}
    now=$(mktemp)
    trap 'rm -f "$now"' EXIT
    list > "$now"
    new=$(comm -13 <(sort "$before") <(sort "$now"))
    count() { grep -c . "$1" || true; }
    echo "pg-leftovers: $(count "$before") before, $(count "$now") after" >&2
    if [ -n "$new" ]; then
      echo "pg-leftovers: the run left $(grep -c . <<<"$new") new schemas or databases:" >&2
      echo "$new" >&2
      exit 1
    fi
    echo "pg-leftovers: the run left nothing new behind" >&2
    ;;
  *)
    echo "usage: $0 [--since FILE]" >&2
    exit 2
    ;;
esac
