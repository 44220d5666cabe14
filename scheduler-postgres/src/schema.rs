//! Table location, the statements' text, and the embedded migrations.
//!
//! No SQL is ever built from caller strings except the schema and table
//! names, which are validated as plain identifiers and then always quoted
//! (so a valid name that happens to be a keyword, such as `user`, still
//! works, and case is kept as given).

use std::sync::Arc;

use scheduler_core::machine;
use scheduler_core::StoreError;
use sqlx_core::acquire::Acquire;
use sqlx_core::raw_sql::raw_sql;
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_postgres::Postgres;

use crate::rows::backend;

/// The default table name, the seed's.
pub const DEFAULT_TABLE: &str = "sys_cron_executions";

/// The table recording which migrations ran, one per schema, keyed by the
/// executions table's name so several executions tables can share a schema.
/// Our own (not sqlx's `_sqlx_migrations`), so that it can never clash with
/// an application's own sqlx migrations and their version numbers.
pub const MIGRATIONS_TABLE: &str = "sys_cron_schema_migrations";

/// The newest schema version this code creates and understands.
pub const SCHEMA_VERSION: i64 = 2;

/// Serialises migrations of every replica (and every table) on one server:
/// the bytes of `"schedmig"`. Held with `pg_advisory_xact_lock`, so it is
/// released by the migration transaction's commit or rollback.
const MIGRATION_LOCK_KEY: i64 = i64::from_be_bytes(*b"schedmig");

/// PostgreSQL truncates longer identifiers silently (`NAMEDATALEN - 1`).
const MAX_IDENT_BYTES: usize = 63;

/// Checks that `name` is a plain identifier: `[A-Za-z_][A-Za-z0-9_]*`, at
/// most 63 bytes.
pub(crate) fn validate_identifier(what: &str, name: &str) -> Result<(), StoreError> {
    let mut chars = name.chars();
    let well_formed = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !well_formed {
        return Err(StoreError::InvalidInput(format!(
            "{what} name {name:?} is not an identifier of the form [A-Za-z_][A-Za-z0-9_]*"
        )));
    }
    if name.len() > MAX_IDENT_BYTES {
        return Err(StoreError::InvalidInput(format!(
            "{what} name {name:?} is longer than {MAX_IDENT_BYTES} bytes"
        )));
    }
    Ok(())
}

fn quote(ident: &str) -> String {
    // Only called on validated identifiers, which contain no quote.
    format!("\"{ident}\"")
}

/// The names of the constraints and indexes of one executions table.
///
/// For the default table they are exactly the seed's, so adopting a table
/// the seed created is a no-op. Index-backed names (the unique constraint and
/// the indexes) must be unique within a schema, so another table gets its
/// own, derived from its name. These names are persisted: the derivation
/// must never change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectNames {
    pub chk_status: String,
    pub chk_attempt: String,
    pub chk_duration: String,
    pub unique: String,
    pub idx_running_stale: String,
    pub idx_failed_recent: String,
    pub idx_finished: String,
    pub idx_operator_retry: String,
}

impl ObjectNames {
    pub(crate) fn for_table(table: &str) -> Self {
        if table == DEFAULT_TABLE {
            return ObjectNames {
                chk_status: "chk_sys_cron_status".into(),
                chk_attempt: "chk_sys_cron_attempt".into(),
                chk_duration: "chk_sys_cron_duration".into(),
                unique: "uq_sys_cron_execution".into(),
                idx_running_stale: "idx_sys_cron_exec_running_stale".into(),
                idx_failed_recent: "idx_sys_cron_exec_failed_recent".into(),
                idx_finished: "idx_sys_cron_exec_finished".into(),
                idx_operator_retry: "idx_sys_cron_exec_operator_retry".into(),
            };
        }
        ObjectNames {
            chk_status: derived_name(table, "chk_status"),
            chk_attempt: derived_name(table, "chk_attempt"),
            chk_duration: derived_name(table, "chk_duration"),
            unique: derived_name(table, "uq_execution"),
            idx_running_stale: derived_name(table, "running_stale"),
            idx_failed_recent: derived_name(table, "failed_recent"),
            idx_finished: derived_name(table, "finished"),
            idx_operator_retry: derived_name(table, "operator_retry"),
        }
    }
}

/// `{table}_{suffix}`, or, when that would pass 63 bytes (and PostgreSQL
/// would truncate it, possibly onto another table's name), a prefix of the
/// table name, a hash of the whole name, and the suffix.
fn derived_name(table: &str, suffix: &str) -> String {
    let plain = format!("{table}_{suffix}");
    if plain.len() <= MAX_IDENT_BYTES {
        return plain;
    }
    // FNV-1a: tiny, and stable across Rust versions (unlike std's hasher),
    // which persisted names require.
    let hash = table.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    // Room for "_", 8 hex digits and "_". Validated identifiers are ASCII,
    // so any byte index is a char boundary.
    let keep = MAX_IDENT_BYTES - suffix.len() - 10;
    format!("{}_{hash:08x}_{suffix}", &table[..keep])
}

/// Where the statements take store time from. Chosen once, when the store
/// is built, so the statement texts are fixed for its whole life; either
/// way `$1` is the one time parameter, an `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeSource {
    /// The server's `now()` plus the test offset bound as `$1`: production,
    /// where the server is the one clock every replica agrees on.
    Server,
    /// The instant bound as `$1`, as microseconds since the Unix epoch,
    /// read from a client clock: tests that need exact instants.
    Client,
}

impl TimeSource {
    /// The store-time expression, without parentheses.
    fn bare(self) -> &'static str {
        match self {
            TimeSource::Server => "now() + $1::interval",
            TimeSource::Client => "'epoch'::timestamptz + $1::interval",
        }
    }
}

/// Where the executions table lives, and every statement on it.
#[derive(Debug)]
pub(crate) struct Sql {
    /// `"schema"."table"` or `"table"`, for messages.
    pub table_display: String,
    schema: Option<String>,
    table: String,
    names: ObjectNames,
    pub now: Arc<str>,
    pub insert_fresh: Arc<str>,
    pub reclaim: Arc<str>,
    pub heartbeat: Arc<str>,
    pub finish_success: Arc<str>,
    pub finish_failure: Arc<str>,
    /// Many terminal writes in one statement (see where it is built).
    pub finish_many: Arc<str>,
    pub sweep: Arc<str>,
    pub latest: Arc<str>,
    pub retry_due: Arc<str>,
    pub get: Arc<str>,
    /// Every scope's summary (see [`summaries`]).
    pub summaries_all: Arc<str>,
    /// One job's scope summaries, the job bound as `$2`.
    pub summaries_job: Arc<str>,
    /// An operator's retry: reads and locks the row, with store time.
    pub lock_for_retry: Arc<str>,
    /// An operator's retry: writes the repaired fields back.
    pub operator_retry: Arc<str>,
    /// A dry run of pruning: how many rows match.
    pub prune_count: Arc<str>,
    /// Pruning: one bounded DELETE.
    pub prune: Arc<str>,
    /// `SELECT <columns> FROM <table>`, for the filtered list.
    pub select_all: String,
}

/// The scope summaries of `ScopeSummary::of_rows` in one statement, with
/// `filter` (empty, or a condition on the job name as `$2`) on the rows.
///
/// Store time is computed once (`n`) and every classification compares with
/// it. One pass over the rows groups them per scope and counts them into the
/// classes of `of_rows`, whose conditions are mutually exclusive in the same
/// order: RUNNING is stale when `stale_after < now` (a null `stale_after`
/// counts as live); FAILED is exhausted when `attempt >= max_attempts`, else
/// `stale_timeout` by its code, else a pending retry (a null code is not
/// `stale_timeout`, hence `IS DISTINCT FROM`), whose due time is
/// `coalesce(next_retry_at, now)`. The same pass finds the latest plan time
/// and the latest SUCCESS plan time, and those rows are then read back by
/// the unique key: two point probes of its index per scope, no walk through
/// history. The `LATERAL ... LIMIT 1` keeps them probes: as plain joins the
/// planner, which cannot know how few groups there are, may hash-join them
/// against a scan of the whole table. One statement sees one snapshot, so
/// the latest row always exists.
///
/// Two texts rather than `($2 IS NULL OR job_name = $2)`: a generic plan of
/// that form could not use the unique index for one job. Scopes come in
/// byte order (`"C"`), as the memory store sorts Rust strings.
fn summaries(t: &str, filter: &str, time: TimeSource) -> String {
    let failed_left = "e.status = 'FAILED' AND e.attempt < e.max_attempts";
    let pending = format!("{failed_left} AND e.error_code IS DISTINCT FROM 'stale_timeout'");
    let now = time.bare();
    format!(
        "WITH n AS (SELECT {now} AS now), \
         g AS ( \
            SELECT e.job_name, e.scope_kind, e.scope_id, \
                   max(e.plan_time) AS latest_plan_time, \
                   max(e.plan_time) FILTER (WHERE e.status = 'SUCCESS') AS success_plan_time, \
                   count(*) FILTER (WHERE e.status = 'RUNNING' \
                                    AND (e.stale_after IS NULL OR e.stale_after >= n.now)) \
                       AS running, \
                   count(*) FILTER (WHERE e.status = 'RUNNING' AND e.stale_after < n.now) \
                       AS stale, \
                   count(*) FILTER (WHERE {pending}) AS retry_pending, \
                   min(coalesce(e.next_retry_at, n.now)) FILTER (WHERE {pending}) \
                       AS first_retry_at, \
                   count(*) FILTER (WHERE e.status = 'FAILED' AND e.attempt >= e.max_attempts) \
                       AS exhausted, \
                   count(*) FILTER (WHERE {failed_left} AND e.error_code = 'stale_timeout') \
                       AS stale_timeout \
            FROM {t} e CROSS JOIN n {filter} \
            GROUP BY e.job_name, e.scope_kind, e.scope_id \
         ) \
         SELECT g.job_name, g.scope_kind, g.scope_id, g.success_plan_time, \
                s.finished_at AS success_finished_at, g.running, g.stale, g.retry_pending, \
                g.first_retry_at, g.exhausted, g.stale_timeout, \
                l.plan_time, l.status, l.attempt, l.max_attempts, l.next_retry_at, l.error_code \
         FROM g \
         CROSS JOIN LATERAL ( \
            SELECT x.plan_time, x.status, x.attempt, x.max_attempts, x.next_retry_at, \
                   x.error_code \
            FROM {t} x \
            WHERE x.job_name = g.job_name AND x.scope_kind = g.scope_kind \
              AND x.scope_id = g.scope_id AND x.plan_time = g.latest_plan_time \
            LIMIT 1 \
         ) l \
         LEFT JOIN LATERAL ( \
            SELECT x.finished_at \
            FROM {t} x \
            WHERE x.job_name = g.job_name AND x.scope_kind = g.scope_kind \
              AND x.scope_id = g.scope_id AND x.plan_time = g.success_plan_time \
            LIMIT 1 \
         ) s ON true \
         ORDER BY g.job_name COLLATE \"C\", g.scope_kind COLLATE \"C\", \
                  g.scope_id COLLATE \"C\""
    )
}

/// Every column, in the order [`crate::rows::execution`] reads them by name.
const COLUMNS: &str = "id, job_name, scope_kind, scope_id, plan_time, status, attempt, \
     max_attempts, next_retry_at, runner_id, lease_token, heartbeat_at, stale_after, \
     started_at, finished_at, duration_ms, rows_affected, result, error_code, error_msg, \
     created_at, updated_at";

impl Sql {
    /// The statements on `table`, with store time from the server.
    pub(crate) fn new(schema: Option<&str>, table: &str) -> Result<Self, StoreError> {
        Self::with_time(schema, table, TimeSource::Server)
    }

    /// The statements on `table`, with store time from `time`.
    pub(crate) fn with_time(
        schema: Option<&str>,
        table: &str,
        time: TimeSource,
    ) -> Result<Self, StoreError> {
        if let Some(schema) = schema {
            validate_identifier("schema", schema)?;
        }
        validate_identifier("table", table)?;
        if table == MIGRATIONS_TABLE {
            return Err(StoreError::InvalidInput(format!(
                "table name {table:?} is reserved for the migration records"
            )));
        }
        let t = match schema {
            Some(s) => format!("{}.{}", quote(s), quote(table)),
            None => quote(table),
        };
        let names = ObjectNames::for_table(table);
        let text = |s: String| -> Arc<str> { s.into() };

        // Every instant is store time, always from $1: in production the
        // server's `now()` (fixed for the whole transaction) plus the test
        // offset; with a client clock, its reading (see TimeSource).
        let now = format!("({})", time.bare());

        let insert_fresh = text(format!(
            "INSERT INTO {t} ({COLUMNS}) \
             SELECT k.id, $2, k.scope_kind, k.scope_id, k.plan_time, 'RUNNING', 1, $4, NULL, $3, \
                    k.token, {now}, {now} + $5::interval, {now}, NULL, NULL, NULL, '{{}}'::jsonb, \
                    NULL, NULL, {now}, {now} \
             FROM unnest($6::text[], $7::text[], $8::timestamptz[], $9::uuid[], $10::uuid[]) \
                  AS k(scope_kind, scope_id, plan_time, id, token) \
             ON CONFLICT ON CONSTRAINT {uq} DO NOTHING \
             RETURNING id, started_at, stale_after",
            uq = quote(&names.unique),
        ));

        // The guards are machine::retry_eligible and machine::steal_eligible.
        // The CTE locks the rows that pass them (FOR UPDATE re-checks the
        // guards against the newest version if a concurrent writer got
        // there first) and remembers the status they had, which tells a
        // retry from a takeover; RETURNING could only see the new status.
        let reclaim = text(format!(
            "WITH c AS ( \
                SELECT e.id, e.status AS old_status, k.token, k.ord \
                FROM unnest($6::text[], $7::text[], $8::timestamptz[], $9::uuid[]) \
                     WITH ORDINALITY AS k(scope_kind, scope_id, plan_time, token, ord) \
                JOIN {t} e ON e.job_name = $2 AND e.scope_kind = k.scope_kind \
                          AND e.scope_id = k.scope_id AND e.plan_time = k.plan_time \
                WHERE e.attempt < e.max_attempts \
                  AND ((e.status = 'FAILED' \
                        AND (e.next_retry_at IS NULL OR e.next_retry_at <= {now}) \
                        AND ($5 OR e.error_code IS DISTINCT FROM 'stale_timeout')) \
                    OR (e.status = 'RUNNING' AND $5 AND e.stale_after < {now})) \
                FOR UPDATE OF e \
             ) \
             UPDATE {t} e SET status = 'RUNNING', attempt = e.attempt + 1, runner_id = $3, \
                lease_token = c.token, heartbeat_at = {now}, stale_after = {now} + $4::interval, \
                started_at = {now}, finished_at = NULL, duration_ms = NULL, next_retry_at = NULL, \
                error_code = NULL, error_msg = NULL, updated_at = {now} \
             FROM c WHERE e.id = c.id \
             RETURNING c.ord, c.old_status, e.id, e.lease_token, e.attempt, e.max_attempts, \
                       e.started_at, e.stale_after"
        ));

        let guard = "id = $2 AND lease_token = $3 AND status = 'RUNNING'";
        let heartbeat = text(format!(
            "UPDATE {t} SET heartbeat_at = {now}, stale_after = {now} + $4::interval, \
                updated_at = {now} \
             WHERE {guard} RETURNING stale_after"
        ));
        let finish_success = text(format!(
            "UPDATE {t} SET status = 'SUCCESS', finished_at = {now}, duration_ms = $4, \
                rows_affected = $5, result = $6, next_retry_at = NULL, error_code = NULL, \
                error_msg = NULL, updated_at = {now} \
             WHERE {guard}"
        ));
        // A failure keeps rows_affected and result as they are, like
        // machine::finish; the retry time exists only while attempts remain.
        let finish_failure = text(format!(
            "UPDATE {t} SET status = 'FAILED', finished_at = {now}, duration_ms = $4, \
                next_retry_at = CASE WHEN attempt < max_attempts \
                                     THEN {now} + $7::interval END, \
                error_code = $5, error_msg = $6, updated_at = {now} \
             WHERE {guard}"
        ));
        // Both statements above for many leases at once, one row of
        // parallel arrays per lease (plain arrays: no type of ours has to
        // exist on the server). Every column is set exactly as the single
        // statement of the item's kind sets it: a success writes its
        // rows_affected and result and clears the retry time and the error
        // (the arrays hold NULL codes and messages for successes); a failure
        // keeps rows_affected and result, and gets a retry time only while
        // attempts remain. Store time is computed once, in `n`. The guard is
        // per row, so a lost lease is simply not RETURNed. Each (id, token)
        // must appear at most once, so that no row joins twice (an UPDATE
        // would then pick one of the joined rows unpredictably); the caller
        // sees to it.
        //
        // The planner trap again (docs/contract.md §10): the leases were
        // claimed moments ago, so the statistics may still say that hardly
        // any row is RUNNING. As a restriction on `e`, `status = 'RUNNING'` then makes
        // the RUNNING rows look like one, and the plan walks them once,
        // reading all the arrays again for each (seen: 17 s for 5,000 leases
        // among 10,000 RUNNING rows). So the guard compares with `f.live`, a
        // column of the arrays' side held back from flattening by OFFSET 0:
        // a join clause, which no statistics on `status` can make selective,
        // and which a concurrent writer's change is rechecked against like
        // any other. The plan then probes the primary key once per lease,
        // or hashes the table when that is cheaper.
        let finish_many = text(format!(
            "UPDATE {t} e SET status = f.status, finished_at = n.now, \
                duration_ms = f.duration_ms, \
                rows_affected = CASE WHEN f.status = 'SUCCESS' \
                                     THEN f.rows_affected ELSE e.rows_affected END, \
                result = CASE WHEN f.status = 'SUCCESS' THEN f.result ELSE e.result END, \
                next_retry_at = CASE WHEN f.status = 'FAILED' AND e.attempt < e.max_attempts \
                                     THEN n.now + f.retry_after END, \
                error_code = f.error_code, error_msg = f.error_msg, updated_at = n.now \
             FROM (SELECT {now} AS now) n, \
                  (SELECT u.*, 'RUNNING'::text AS live \
                   FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::int4[], $6::int8[], \
                               $7::jsonb[], $8::text[], $9::text[], $10::interval[]) \
                        WITH ORDINALITY AS u(id, token, status, duration_ms, rows_affected, \
                                             result, error_code, error_msg, retry_after, ord) \
                   OFFSET 0) f \
             WHERE e.id = f.id AND e.lease_token = f.token AND e.status = f.live \
             RETURNING f.ord"
        ));
        // `next_retry_at` is machine::swept_retry_at's, bound as $4: null
        // for a reentrant job, "never" for one that waits for an operator.
        let sweep = text(format!(
            "UPDATE {t} SET status = 'FAILED', finished_at = {now}, next_retry_at = $4, \
                error_code = 'stale_timeout', error_msg = $3, updated_at = {now} \
             WHERE job_name = $2 AND status = 'RUNNING' AND stale_after < {now}"
        ));

        // The planner trap of docs/contract.md §10: this shape (unnest of the
        // client's arrays, a LIMIT 1 lateral probe of the unique index per
        // scope) stays fast on a freshly filled table that has no statistics
        // yet.
        let latest = text(format!(
            "SELECT k.ord, e.plan_time, e.status, e.attempt, e.max_attempts, e.next_retry_at, \
                    e.error_code \
             FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS k(scope_kind, scope_id, ord) \
             CROSS JOIN LATERAL ( \
                SELECT x.plan_time, x.status, x.attempt, x.max_attempts, x.next_retry_at, \
                       x.error_code \
                FROM {t} x \
                WHERE x.job_name = $1 AND x.scope_kind = k.scope_kind \
                  AND x.scope_id = k.scope_id \
                ORDER BY x.plan_time DESC LIMIT 1 \
             ) e"
        ));

        // machine::retry_eligible, in two branches: the job's own retries
        // from $3 on (through the index of FAILED rows by plan time), and
        // an operator's retries whatever their plan time (through the small
        // index of operator_retry rows, so old history is never walked).
        // At most $5 of each kind per scope, the oldest: a per-scope limit,
        // so one scope's failures cannot crowd another's out. Byte order
        // ("C") for the scope tie-break, as the memory store sorts Rust
        // strings, whatever the database's collation.
        let eligible = format!(
            "job_name = $2 AND status = 'FAILED' AND attempt < max_attempts \
             AND (next_retry_at IS NULL OR next_retry_at <= {now}) \
             AND ($4 OR error_code IS DISTINCT FROM 'stale_timeout')"
        );
        let retry_due = text(format!(
            "SELECT scope_kind, scope_id, plan_time, operator_retry FROM ( \
                SELECT scope_kind, scope_id, plan_time, operator_retry, \
                       row_number() OVER (PARTITION BY scope_kind, scope_id, operator_retry \
                                          ORDER BY plan_time) AS nth \
                FROM (SELECT scope_kind, scope_id, plan_time, false AS operator_retry \
                      FROM {t} WHERE {eligible} AND plan_time >= $3 \
                        AND error_code IS DISTINCT FROM '{operator}' \
                      UNION ALL \
                      SELECT scope_kind, scope_id, plan_time, true \
                      FROM {t} WHERE {eligible} AND error_code = '{operator}') d \
             ) r WHERE nth <= $5 \
             ORDER BY plan_time, scope_kind COLLATE \"C\", scope_id COLLATE \"C\", operator_retry",
            operator = machine::OPERATOR_RETRY_CODE,
        ));

        // An operator's retry (machine::operator_retry, applied in Rust so
        // the rule lives in one place): the row is read and locked with the
        // store time the rule is applied at, then the fields the rule changes
        // are written back. The lock keeps a claim, finish or prune from
        // slipping in between; the status guard restates the only state the
        // rule accepts, so a write can never land on any other.
        let lock_for_retry = text(format!(
            "SELECT {COLUMNS}, {now} AS store_now FROM {t} WHERE id = $2 FOR UPDATE"
        ));
        let operator_retry = text(format!(
            "UPDATE {t} SET max_attempts = $2, next_retry_at = $3, error_code = $4, \
                error_msg = $5, updated_at = $6 \
             WHERE id = $1 AND status = 'FAILED' \
             RETURNING {COLUMNS}"
        ));

        // Pruning: terminal rows finished before $1, oldest first, at most $2
        // per statement, so that one call never holds many row locks or
        // writes much WAL at once; the inner query walks the partial index on
        // finished_at (whose predicate is exactly this status list) in order
        // and stops at the limit. The outer WHERE repeats the conditions on
        // purpose: if a concurrent claim retried a selected FAILED row, the
        // DELETE waits for it and re-checks the outer conditions against the
        // new version (RUNNING, finished_at NULL), which then no longer
        // matches; the inner query's row version would still say FAILED, so
        // without them a live lease could be deleted.
        //
        // Rows finished at one instant (a sweep's, a batch's) are taken in
        // key order, bytewise ("C"), as the memory and SQLite stores take
        // them: with `finished_at` alone, which of them a limited prune
        // deletes would be whatever order the plan meets them in. The index
        // still gives the order by `finished_at`; only rows that tie are
        // sorted (an incremental sort), and the LIMIT still stops the walk.
        let terminal_before = "status IN ('SUCCESS', 'FAILED') AND finished_at < $1";
        let prune_count = text(format!("SELECT count(*) FROM {t} WHERE {terminal_before}"));
        let prune = text(format!(
            "DELETE FROM {t} \
             WHERE id IN (SELECT id FROM {t} WHERE {terminal_before} \
                          ORDER BY finished_at, job_name COLLATE \"C\", \
                                   scope_kind COLLATE \"C\", scope_id COLLATE \"C\", plan_time \
                          LIMIT $2) \
               AND {terminal_before}"
        ));

        Ok(Sql {
            now: text(format!("SELECT {now}")),
            insert_fresh,
            reclaim,
            heartbeat,
            finish_success,
            finish_failure,
            finish_many,
            sweep,
            latest,
            retry_due,
            get: text(format!("SELECT {COLUMNS} FROM {t} WHERE id = $1")),
            summaries_all: text(summaries(&t, "", time)),
            summaries_job: text(summaries(&t, "WHERE e.job_name = $2", time)),
            lock_for_retry,
            operator_retry,
            prune_count,
            prune,
            select_all: format!("SELECT {COLUMNS} FROM {t}"),
            table_display: t,
            schema: schema.map(str::to_owned),
            table: table.to_owned(),
            names,
        })
    }

    fn qualified(&self, name: &str) -> String {
        match &self.schema {
            Some(s) => format!("{}.{}", quote(s), quote(name)),
            None => quote(name),
        }
    }

    /// Migration 1: the seed's table, constraints and indexes, verbatim but
    /// for the names of a non-default table.
    fn migration_1(&self) -> String {
        let t = &self.table_display;
        let n = &self.names;
        format!(
            "CREATE TABLE IF NOT EXISTS {t} (\n\
             id             UUID        PRIMARY KEY DEFAULT gen_random_uuid(),\n\
             job_name       TEXT        NOT NULL,\n\
             scope_kind     TEXT        NOT NULL DEFAULT 'global',\n\
             scope_id       TEXT        NOT NULL DEFAULT 'global',\n\
             plan_time      TIMESTAMPTZ NOT NULL,\n\
             status         TEXT        NOT NULL,\n\
             attempt        INTEGER     NOT NULL DEFAULT 1,\n\
             max_attempts   INTEGER     NOT NULL DEFAULT 3,\n\
             next_retry_at  TIMESTAMPTZ,\n\
             runner_id      TEXT,\n\
             lease_token    UUID        NOT NULL DEFAULT gen_random_uuid(),\n\
             heartbeat_at   TIMESTAMPTZ,\n\
             stale_after    TIMESTAMPTZ,\n\
             started_at     TIMESTAMPTZ,\n\
             finished_at    TIMESTAMPTZ,\n\
             duration_ms    INTEGER,\n\
             rows_affected  BIGINT,\n\
             result         JSONB       NOT NULL DEFAULT '{{}}'::jsonb,\n\
             error_code     TEXT,\n\
             error_msg      TEXT,\n\
             created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),\n\
             updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),\n\
             CONSTRAINT {chk_status} CHECK (status IN ('RUNNING', 'SUCCESS', 'FAILED')),\n\
             CONSTRAINT {chk_attempt} CHECK (attempt >= 1 AND max_attempts >= attempt),\n\
             CONSTRAINT {chk_duration} CHECK (duration_ms IS NULL OR duration_ms >= 0),\n\
             CONSTRAINT {uq} UNIQUE (job_name, scope_kind, scope_id, plan_time)\n\
             );\n\
             CREATE INDEX IF NOT EXISTS {running} ON {t} (stale_after) WHERE status = 'RUNNING';\n\
             CREATE INDEX IF NOT EXISTS {failed} ON {t} (job_name, plan_time DESC) \
             WHERE status = 'FAILED';\n\
             CREATE INDEX IF NOT EXISTS {finished} ON {t} (finished_at) \
             WHERE status IN ('SUCCESS', 'FAILED');\n",
            chk_status = quote(&n.chk_status),
            chk_attempt = quote(&n.chk_attempt),
            chk_duration = quote(&n.chk_duration),
            uq = quote(&n.unique),
            running = quote(&n.idx_running_stale),
            failed = quote(&n.idx_failed_recent),
            finished = quote(&n.idx_finished),
        )
    }

    /// Migration 2: a partial index of the rows an operator retried, so the
    /// retry read finds them without walking the job's failures.
    fn migration_2(&self) -> String {
        format!(
            "CREATE INDEX IF NOT EXISTS {name} ON {t} (job_name) \
             WHERE status = 'FAILED' AND error_code = '{operator}';\n",
            name = quote(&self.names.idx_operator_retry),
            t = self.table_display,
            operator = machine::OPERATOR_RETRY_CODE,
        )
    }

    /// Brings the table to [`SCHEMA_VERSION`] in one transaction under the
    /// migration advisory lock, so concurrent replicas run it once.
    /// `on` is the store's pool, or a connection being opened by it (see
    /// `PgLeaseStore::connect_lazy_with`).
    pub(crate) async fn migrate<'c>(
        &self,
        on: impl Acquire<'c, Database = Postgres>,
    ) -> Result<(), StoreError> {
        let err = backend("migrate");
        let mut tx = on.begin().await.map_err(err)?;
        sqlx_core::query::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK_KEY)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        if let Some(schema) = &self.schema {
            // Checked first: CREATE SCHEMA IF NOT EXISTS demands the
            // database's CREATE privilege even when the schema exists.
            let exists: bool = sqlx_core::query_scalar::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            )
            .bind(schema)
            .fetch_one(&mut *tx)
            .await
            .map_err(err)?;
            if !exists {
                raw_sql(AssertSqlSafe(format!("CREATE SCHEMA {}", quote(schema))))
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
            }
        }
        let migrations = self.qualified(MIGRATIONS_TABLE);
        raw_sql(AssertSqlSafe(format!(
            "CREATE TABLE IF NOT EXISTS {migrations} (\
                table_name  TEXT        NOT NULL, \
                version     BIGINT      NOT NULL, \
                description TEXT        NOT NULL, \
                applied_at  TIMESTAMPTZ NOT NULL DEFAULT now(), \
                PRIMARY KEY (table_name, version))"
        )))
        .execute(&mut *tx)
        .await
        .map_err(err)?;
        let found: Option<i64> = sqlx_core::query_scalar::query_scalar(AssertSqlSafe(format!(
            "SELECT max(version) FROM {migrations} WHERE table_name = $1"
        )))
        .bind(&self.table)
        .fetch_one(&mut *tx)
        .await
        .map_err(err)?;
        let found = found.unwrap_or(0);
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                found,
                known: SCHEMA_VERSION,
            });
        }
        let steps = [
            (
                1,
                "executions table, constraints and indexes",
                self.migration_1(),
            ),
            (2, "index of operator retries", self.migration_2()),
        ];
        for (version, description, sql) in steps {
            if version <= found {
                continue;
            }
            raw_sql(AssertSqlSafe(sql))
                .execute(&mut *tx)
                .await
                .map_err(err)?;
            sqlx_core::query::query(AssertSqlSafe(format!(
                "INSERT INTO {migrations} (table_name, version, description) VALUES ($1, $2, $3)"
            )))
            .bind(&self.table)
            .bind(version)
            .bind(description)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        }
        tx.commit().await.map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn identifiers_are_validated() {
        for ok in ["a", "_", "sys_cron_executions", "A1_b2", &"x".repeat(63)] {
            assert!(validate_identifier("table", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1a",
            "a-b",
            "a b",
            "a\"b",
            "a;drop",
            "ü",
            "a\0",
            &"x".repeat(64),
        ] {
            let err = validate_identifier("table", bad).unwrap_err();
            assert!(matches!(err, StoreError::InvalidInput(_)), "{bad:?}");
        }
        assert!(Sql::new(None, MIGRATIONS_TABLE).is_err());
        assert!(Sql::new(Some("bad schema"), "t").is_err());
    }

    #[test]
    fn default_table_keeps_the_seeds_names_and_others_derive_unique_ones() {
        let seed = ObjectNames::for_table(DEFAULT_TABLE);
        assert_eq!(seed.unique, "uq_sys_cron_execution");
        assert_eq!(seed.idx_finished, "idx_sys_cron_exec_finished");
        let other = ObjectNames::for_table("jobs");
        assert_eq!(other.unique, "jobs_uq_execution");
        assert_eq!(other.idx_running_stale, "jobs_running_stale");

        let long_a = format!("{}a", "t".repeat(62));
        let long_b = format!("{}b", "t".repeat(62));
        let (a, b) = (
            ObjectNames::for_table(&long_a),
            ObjectNames::for_table(&long_b),
        );
        for name in [&a.unique, &a.idx_failed_recent, &a.chk_duration] {
            assert!(name.len() <= MAX_IDENT_BYTES, "{name}");
        }
        assert_ne!(
            a.unique, b.unique,
            "names differing only past the cut stay distinct"
        );
        assert!(a.unique.ends_with("_uq_execution"));
    }

    /// A server for the plan test, found as `tests/common` finds one: none
    /// without `DATABASE_URL` (said where libtest cannot hide it), a failure
    /// instead when `SCHEDULER_REQUIRE_POSTGRES=1`.
    async fn server() -> Option<sqlx_postgres::PgPool> {
        let required = std::env::var("SCHEDULER_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
        let pool = match std::env::var("DATABASE_URL") {
            Ok(url) if !url.is_empty() => sqlx_postgres::PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(std::time::Duration::from_secs(5))
                .connect(&url)
                .await
                .map_err(|e| format!("PostgreSQL unreachable ({e})")),
            _ => Err("DATABASE_URL not set".to_owned()),
        };
        match pool {
            Ok(pool) => Some(pool),
            Err(why) => {
                assert!(!required, "SCHEDULER_REQUIRE_POSTGRES=1 but {why}");
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED: {why}: the plan test did not run"
                );
                None
            }
        }
    }

    /// A fresh schema, named and stamped as tests/common does, so its
    /// janitor removes it should a test fail before dropping it.
    async fn test_schema(pool: &sqlx_postgres::PgPool) -> String {
        let schema = format!("sched_test_{}", uuid::Uuid::new_v4().simple());
        raw_sql(AssertSqlSafe(format!(
            "DO $$ BEGIN \
               CREATE SCHEMA \"{schema}\"; \
               EXECUTE format('COMMENT ON SCHEMA \"{schema}\" IS %L', \
                              'created ' || extract(epoch FROM now())::bigint); \
             END $$"
        )))
        .execute(pool)
        .await
        .unwrap();
        schema
    }

    /// The bounded DELETE of pruning finds its rows by walking the partial
    /// index on `finished_at` (the seed's name, or the derived one), in a
    /// custom plan and in a generic one, on a table large enough for the
    /// planner to care.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pruning_walks_the_finished_index() {
        let Some(pool) = server().await else { return };
        let schema = test_schema(&pool).await;
        for table in [DEFAULT_TABLE, "prune_plan"] {
            let sql = Sql::new(Some(&schema), table).unwrap();
            sql.migrate(&pool).await.unwrap();
            let t = &sql.table_display;
            let mut conn = pool.acquire().await.unwrap();
            raw_sql(AssertSqlSafe(format!(
                "INSERT INTO {t} (job_name, scope_kind, scope_id, plan_time, status, finished_at) \
                 SELECT 'job', 't', 'x' || i % 100, now() - i * interval '1 minute', \
                        CASE WHEN i % 100 = 0 THEN 'RUNNING' \
                             WHEN i % 7 = 0 THEN 'FAILED' ELSE 'SUCCESS' END, \
                        CASE WHEN i % 100 <> 0 THEN now() - i * interval '1 minute' END \
                 FROM generate_series(1, 50000) i; \
                 ANALYZE {t}"
            )))
            .execute(&mut *conn)
            .await
            .unwrap();
            let uses_index = |plan: &[String]| {
                let wanted = format!("using {} on", sql.names.idx_finished);
                plan.iter().any(|line| line.contains(&wanted))
            };
            let custom: Vec<String> = sqlx_core::query_scalar::query_scalar(AssertSqlSafe(
                format!("EXPLAIN {}", sql.prune),
            ))
            .bind(time::OffsetDateTime::now_utc())
            .bind(1000_i64)
            .fetch_all(&mut *conn)
            .await
            .unwrap();
            assert!(uses_index(&custom), "{table}: {custom:#?}");
            raw_sql(AssertSqlSafe(format!(
                "PREPARE prune_probe(timestamptz, bigint) AS {}; \
                 SET plan_cache_mode = force_generic_plan",
                sql.prune
            )))
            .execute(&mut *conn)
            .await
            .unwrap();
            let generic: Vec<String> =
                sqlx_core::query_scalar::query_scalar("EXPLAIN EXECUTE prune_probe(now(), 1000)")
                    .fetch_all(&mut *conn)
                    .await
                    .unwrap();
            assert!(uses_index(&generic), "{table}: {generic:#?}");
            raw_sql("DEALLOCATE prune_probe; RESET plan_cache_mode")
                .execute(&mut *conn)
                .await
                .unwrap();
        }
        raw_sql(AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE")))
            .execute(&pool)
            .await
            .unwrap();
    }

    /// The batched terminal write finds its rows by lease, never by
    /// walking the RUNNING rows once per lease, even when the statistics
    /// say no row is RUNNING and 10,000 are: in a custom plan and in a
    /// generic one (the first shows its cost, the second is what a
    /// connection settles on).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn finishing_many_probes_by_lease_whatever_the_statistics_say() {
        let Some(pool) = server().await else { return };
        let schema = test_schema(&pool).await;
        let sql = Sql::new(Some(&schema), DEFAULT_TABLE).unwrap();
        sql.migrate(&pool).await.unwrap();
        let t = &sql.table_display;
        let mut conn = pool.acquire().await.unwrap();
        // Statistics taken while every row was terminal, kept stale (no
        // autovacuum) while 10,000 leases are claimed.
        raw_sql(AssertSqlSafe(format!(
            "ALTER TABLE {t} SET (autovacuum_enabled = false); \
             INSERT INTO {t} (job_name, scope_kind, scope_id, plan_time, status, finished_at) \
             SELECT 'old', 't', 'x' || i, now(), 'SUCCESS', now() \
             FROM generate_series(1, 20000) i; \
             ANALYZE {t}; \
             INSERT INTO {t} (job_name, scope_kind, scope_id, plan_time, status, stale_after) \
             SELECT 'new', 't', 'x' || i, now(), 'RUNNING', now() + interval '1 hour' \
             FROM generate_series(1, 10000) i"
        )))
        .execute(&mut *conn)
        .await
        .unwrap();
        let leases: Vec<(uuid::Uuid, uuid::Uuid)> =
            sqlx_core::query_as::query_as(AssertSqlSafe(format!(
                "SELECT id, lease_token FROM {t} WHERE status = 'RUNNING' ORDER BY id LIMIT 5000"
            )))
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        let n = leases.len();
        let arrays = (
            leases.iter().map(|l| l.0).collect::<Vec<_>>(),
            leases.iter().map(|l| l.1).collect::<Vec<_>>(),
            vec!["SUCCESS"; n],
            vec![1_i32; n],
            vec![Some(1_i64); n],
            vec![Some(sqlx_core::types::Json(serde_json::json!({}))); n],
            vec![None::<&str>; n],
            vec![None::<&str>; n],
            vec![None::<sqlx_postgres::types::PgInterval>; n],
        );
        let zero = sqlx_postgres::types::PgInterval {
            months: 0,
            days: 0,
            microseconds: 0,
        };
        let sane = |plan: &[String]| {
            let running = format!("using {} on", sql.names.idx_running_stale);
            !plan
                .iter()
                .any(|line| line.contains(&running) || line.contains("Join Filter"))
        };
        // A custom plan (EXPLAIN with the values bound), then the generic
        // one (EXPLAIN EXECUTE of a prepared statement, generic forced; its
        // plan does not depend on the values, which it cannot take as
        // parameters anyway).
        raw_sql(AssertSqlSafe(format!(
            "PREPARE finish_probe(interval, uuid[], uuid[], text[], int4[], int8[], jsonb[], \
                                  text[], text[], interval[]) AS {}; \
             SET plan_cache_mode = force_generic_plan",
            sql.finish_many
        )))
        .execute(&mut *conn)
        .await
        .unwrap();
        let custom: Vec<String> = sqlx_core::query_scalar::query_scalar(AssertSqlSafe(format!(
            "EXPLAIN {}",
            sql.finish_many
        )))
        .bind(zero)
        .bind(&arrays.0)
        .bind(&arrays.1)
        .bind(&arrays.2)
        .bind(&arrays.3)
        .bind(&arrays.4)
        .bind(&arrays.5)
        .bind(&arrays.6)
        .bind(&arrays.7)
        .bind(&arrays.8)
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        assert!(sane(&custom), "{custom:#?}");
        let generic: Vec<String> = sqlx_core::query_scalar::query_scalar(
            "EXPLAIN EXECUTE finish_probe('0', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}')",
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        assert!(sane(&generic), "{generic:#?}");
        raw_sql("DEALLOCATE finish_probe; RESET plan_cache_mode")
            .execute(&mut *conn)
            .await
            .unwrap();
        drop(conn);
        raw_sql(AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE")))
            .execute(&pool)
            .await
            .unwrap();
    }

    /// A client clock changes the store-time expression and nothing else;
    /// the server's statements never mention the epoch.
    #[test]
    fn a_client_clock_changes_only_the_store_time_expression() {
        for (schema, table) in [(None, DEFAULT_TABLE), (Some("s"), "t")] {
            let server = format!("{:?}", Sql::new(schema, table).unwrap());
            let client = format!(
                "{:?}",
                Sql::with_time(schema, table, TimeSource::Client).unwrap()
            );
            assert!(!server.contains("epoch"), "{server}");
            assert!(!client.contains("now()"), "{client}");
            assert_eq!(
                client.replace(TimeSource::Client.bare(), TimeSource::Server.bare()),
                server
            );
        }
    }

    #[test]
    fn names_are_quoted_and_qualified() {
        let sql = Sql::new(Some("Sched"), "user").unwrap();
        assert_eq!(sql.table_display, "\"Sched\".\"user\"");
        assert!(sql.get.contains("FROM \"Sched\".\"user\" WHERE id = $1"));
        assert_eq!(
            Sql::new(None, DEFAULT_TABLE).unwrap().table_display,
            "\"sys_cron_executions\""
        );
    }
}
