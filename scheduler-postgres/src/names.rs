//! Where the executions table lives, and the names of the objects that
//! belong to it.
//!
//! No SQL is ever built from caller strings except the schema and table
//! names, which are validated as plain identifiers and then always quoted
//! (so a valid name that happens to be a keyword, such as `user`, still
//! works, and case is kept as given).

use scheduler_core::hash::fnv1a_32;
use scheduler_core::StoreError;

use crate::options::PartitionInterval;
use crate::schema::MIGRATIONS_TABLE;

/// The default table name, the seed's.
pub const DEFAULT_TABLE: &str = "sys_cron_executions";

/// The replica registry's table beside the default executions table.
const DEFAULT_REPLICAS_TABLE: &str = "sys_cron_replicas";

/// The controls' table beside the default executions table.
const DEFAULT_CONTROLS_TABLE: &str = "sys_cron_controls";

/// The stored schedules' table beside the default executions table.
const DEFAULT_SCHEDULES_TABLE: &str = "sys_cron_schedules";

/// The tally of ended FAILED rows beside the default executions table.
const DEFAULT_TALLY_TABLE: &str = "sys_cron_failed_tally";

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

pub(crate) fn quote(ident: &str) -> String {
    // Only called on validated identifiers, which contain no quote.
    format!("\"{ident}\"")
}

/// An executions table: its schema (or the `search_path`'s), its name, and
/// the names of its objects, its attempts log's, replica registry's,
/// controls' and stored schedules' tables among them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Table {
    /// `"schema"."table"` or `"table"`, as the statements name it.
    pub display: String,
    /// The attempts log's table, as the statements name it.
    pub attempts: String,
    /// The replica registry's table, as the statements name it.
    pub replicas: String,
    /// The controls' table, as the statements name it.
    pub controls: String,
    /// The stored schedules' table, as the statements name it.
    pub schedules: String,
    /// The tally of ended FAILED rows by scope (migration 8), as the
    /// statements name it.
    pub tally: String,
    /// The trigger function that keeps [`Table::tally`] (migration 8),
    /// schema-qualified like a table.
    pub tally_apply: String,
    pub schema: Option<String>,
    pub name: String,
    pub names: ObjectNames,
    /// The table's DEFAULT partition, as the statements name it (a name
    /// derived from the table's, whether or not the table is partitioned).
    pub default_partition: String,
    /// Whether new tables are created partitioned, and by what interval
    /// ([`PgStoreOptions::partitioned`](crate::PgStoreOptions::partitioned)).
    pub partitioned: Option<PartitionInterval>,
}

impl Table {
    /// The table `name`, in `schema` or found through the `search_path`.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] for names that are not plain
    /// identifiers, and for the names of the migrations table and of the
    /// default table's replica registry, controls and stored schedules.
    pub(crate) fn new(schema: Option<&str>, name: &str) -> Result<Self, StoreError> {
        if let Some(schema) = schema {
            validate_identifier("schema", schema)?;
        }
        validate_identifier("table", name)?;
        if [
            MIGRATIONS_TABLE,
            DEFAULT_REPLICAS_TABLE,
            DEFAULT_CONTROLS_TABLE,
            DEFAULT_SCHEDULES_TABLE,
            DEFAULT_TALLY_TABLE,
        ]
        .contains(&name)
        {
            return Err(StoreError::InvalidInput(format!(
                "table name {name:?} is reserved for the scheduler's own records"
            )));
        }
        if name == ObjectNames::for_table(DEFAULT_TABLE).attempts {
            return Err(StoreError::InvalidInput(format!(
                "table name {name:?} is reserved for the attempts log of {DEFAULT_TABLE}"
            )));
        }
        let table = Table {
            display: String::new(),
            attempts: String::new(),
            replicas: String::new(),
            controls: String::new(),
            schedules: String::new(),
            tally: String::new(),
            tally_apply: String::new(),
            schema: schema.map(str::to_owned),
            name: name.to_owned(),
            names: ObjectNames::for_table(name),
            default_partition: String::new(),
            partitioned: None,
        };
        Ok(Table {
            display: table.qualified(name),
            attempts: table.qualified(&table.names.attempts),
            replicas: table.qualified(&table.names.replicas),
            controls: table.qualified(&table.names.controls),
            schedules: table.qualified(&table.names.schedules),
            tally: table.qualified(&table.names.tally),
            tally_apply: table.qualified(&table.names.tally_apply),
            default_partition: table.qualified(&derived_name(name, "default")),
            ..table
        })
    }

    /// `name` in this table's schema, quoted.
    pub(crate) fn qualified(&self, name: &str) -> String {
        match &self.schema {
            Some(s) => format!("{}.{}", quote(s), quote(name)),
            None => quote(name),
        }
    }
}

/// The names of the constraints and indexes of one executions table, of
/// its attempts log's table and constraints, of the replica registry's
/// the controls' and the stored schedules' tables beside it, and of its
/// tally of ended FAILED rows and the trigger function that keeps it.
///
/// For the default table they are exactly the seed's, so adopting a table
/// the seed created is a no-op (the attempts log is ours: its names follow
/// the seed's style). Relation and index-backed names (tables, the unique
/// constraint, primary keys, the indexes) must be unique within a schema,
/// so another table gets its own, derived from its name. These names are
/// persisted: the derivation must never change.
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
    pub replicas: String,
    pub attempts: String,
    pub attempts_pk: String,
    pub chk_attempts_outcome: String,
    pub idx_control_id: String,
    pub idx_forced_retry: String,
    pub idx_running_scope: String,
    pub idx_failed_scope: String,
    pub controls: String,
    pub controls_pk: String,
    pub chk_controls_kind: String,
    pub chk_controls_state: String,
    pub chk_controls_shape: String,
    pub idx_controls_job: String,
    pub schedules: String,
    pub schedules_pk: String,
    pub chk_schedules_version: String,
    pub tally: String,
    pub tally_pk: String,
    pub tally_apply: String,
    pub idx_failed_retryable: String,
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
                replicas: DEFAULT_REPLICAS_TABLE.into(),
                attempts: "sys_cron_execution_attempts".into(),
                attempts_pk: "pk_sys_cron_execution_attempts".into(),
                chk_attempts_outcome: "chk_sys_cron_attempts_outcome".into(),
                idx_control_id: "idx_sys_cron_exec_control_id".into(),
                idx_forced_retry: "idx_sys_cron_exec_forced_retry".into(),
                idx_running_scope: "idx_sys_cron_exec_running_scope".into(),
                idx_failed_scope: "idx_sys_cron_exec_failed_scope".into(),
                controls: DEFAULT_CONTROLS_TABLE.into(),
                controls_pk: "pk_sys_cron_controls".into(),
                chk_controls_kind: "chk_sys_cron_controls_kind".into(),
                chk_controls_state: "chk_sys_cron_controls_state".into(),
                chk_controls_shape: "chk_sys_cron_controls_shape".into(),
                idx_controls_job: "idx_sys_cron_controls_job".into(),
                schedules: DEFAULT_SCHEDULES_TABLE.into(),
                schedules_pk: "pk_sys_cron_schedules".into(),
                chk_schedules_version: "chk_sys_cron_schedules_version".into(),
                tally: DEFAULT_TALLY_TABLE.into(),
                tally_pk: "pk_sys_cron_failed_tally".into(),
                tally_apply: "sys_cron_failed_tally_apply".into(),
                idx_failed_retryable: "idx_sys_cron_exec_failed_retryable".into(),
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
            replicas: derived_name(table, "replicas"),
            attempts: derived_name(table, "attempts"),
            attempts_pk: derived_name(table, "attempts_pk"),
            chk_attempts_outcome: derived_name(table, "attempts_outcome"),
            idx_control_id: derived_name(table, "control_id"),
            idx_forced_retry: derived_name(table, "forced_retry"),
            idx_running_scope: derived_name(table, "running_scope"),
            idx_failed_scope: derived_name(table, "failed_scope"),
            controls: derived_name(table, "controls"),
            controls_pk: derived_name(table, "controls_pk"),
            chk_controls_kind: derived_name(table, "controls_kind"),
            chk_controls_state: derived_name(table, "controls_state"),
            chk_controls_shape: derived_name(table, "controls_shape"),
            idx_controls_job: derived_name(table, "controls_job"),
            schedules: derived_name(table, "schedules"),
            schedules_pk: derived_name(table, "schedules_pk"),
            chk_schedules_version: derived_name(table, "schedules_version"),
            tally: derived_name(table, "failed_tally"),
            tally_pk: derived_name(table, "failed_tally_pk"),
            tally_apply: derived_name(table, "failed_tally_apply"),
            idx_failed_retryable: derived_name(table, "failed_retryable"),
        }
    }

    /// Each constraint and index name, quoted, under the placeholder the
    /// migrations use (the tables are [`Table`]'s, qualified: a table name
    /// is qualified by its schema, an index name is not).
    pub(crate) fn placeholders(&self) -> [(&'static str, String); 23] {
        [
            ("chk_status", quote(&self.chk_status)),
            ("chk_attempt", quote(&self.chk_attempt)),
            ("chk_duration", quote(&self.chk_duration)),
            ("uq", quote(&self.unique)),
            ("idx_running_stale", quote(&self.idx_running_stale)),
            ("idx_failed_recent", quote(&self.idx_failed_recent)),
            ("idx_finished", quote(&self.idx_finished)),
            ("idx_operator_retry", quote(&self.idx_operator_retry)),
            ("attempts_pk", quote(&self.attempts_pk)),
            ("chk_attempts_outcome", quote(&self.chk_attempts_outcome)),
            ("idx_control_id", quote(&self.idx_control_id)),
            ("idx_forced_retry", quote(&self.idx_forced_retry)),
            ("idx_running_scope", quote(&self.idx_running_scope)),
            ("idx_failed_scope", quote(&self.idx_failed_scope)),
            ("controls_pk", quote(&self.controls_pk)),
            ("chk_controls_kind", quote(&self.chk_controls_kind)),
            ("chk_controls_state", quote(&self.chk_controls_state)),
            ("chk_controls_shape", quote(&self.chk_controls_shape)),
            ("idx_controls_job", quote(&self.idx_controls_job)),
            ("schedules_pk", quote(&self.schedules_pk)),
            ("chk_schedules_version", quote(&self.chk_schedules_version)),
            ("tally_pk", quote(&self.tally_pk)),
            ("idx_failed_retryable", quote(&self.idx_failed_retryable)),
        ]
    }
}

/// `{table}_{suffix}`, or, when that would pass 63 bytes (and PostgreSQL
/// would truncate it, possibly onto another table's name), a prefix of the
/// table name, a hash of the whole name, and the suffix.
pub(crate) fn derived_name(table: &str, suffix: &str) -> String {
    let plain = format!("{table}_{suffix}");
    if plain.len() <= MAX_IDENT_BYTES {
        return plain;
    }
    // 32-bit FNV-1a: tiny, and stable across Rust versions (unlike std's
    // hasher), which persisted names require.
    let hash = fnv1a_32(&[table.as_bytes()]);
    // Room for "_", 8 hex digits and "_". Validated identifiers are ASCII,
    // so any byte index is a char boundary.
    let keep = MAX_IDENT_BYTES - suffix.len() - 10;
    format!("{}_{hash:08x}_{suffix}", &table[..keep])
}

#[cfg(test)]
mod tests {
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
        assert!(Table::new(None, MIGRATIONS_TABLE).is_err());
        assert!(Table::new(None, DEFAULT_REPLICAS_TABLE).is_err());
        assert!(Table::new(None, DEFAULT_CONTROLS_TABLE).is_err());
        assert!(Table::new(None, DEFAULT_SCHEDULES_TABLE).is_err());
        assert!(Table::new(None, DEFAULT_TALLY_TABLE).is_err());
        assert!(Table::new(None, "sys_cron_execution_attempts").is_err());
        assert!(Table::new(Some("bad schema"), "t").is_err());
    }

    #[test]
    fn default_table_keeps_the_seeds_names_and_others_derive_unique_ones() {
        let seed = ObjectNames::for_table(DEFAULT_TABLE);
        assert_eq!(seed.unique, "uq_sys_cron_execution");
        assert_eq!(seed.idx_finished, "idx_sys_cron_exec_finished");
        assert_eq!(seed.attempts, "sys_cron_execution_attempts");
        let other = ObjectNames::for_table("jobs");
        assert_eq!(other.unique, "jobs_uq_execution");
        assert_eq!(other.idx_running_stale, "jobs_running_stale");
        assert_eq!(other.replicas, "jobs_replicas");
        assert_eq!(seed.replicas, "sys_cron_replicas");
        assert_eq!(
            (other.attempts.as_str(), other.attempts_pk.as_str()),
            ("jobs_attempts", "jobs_attempts_pk")
        );
        let table = Table::new(Some("s"), "jobs").unwrap();
        assert_eq!(table.attempts, "\"s\".\"jobs_attempts\"");
        assert_eq!(table.replicas, "\"s\".\"jobs_replicas\"");
        assert_eq!(table.controls, "\"s\".\"jobs_controls\"");
        assert_eq!(seed.controls, "sys_cron_controls");
        assert_eq!(table.schedules, "\"s\".\"jobs_schedules\"");
        assert_eq!(seed.schedules, "sys_cron_schedules");
        assert_eq!(table.tally, "\"s\".\"jobs_failed_tally\"");
        assert_eq!(table.tally_apply, "\"s\".\"jobs_failed_tally_apply\"");

        let long_a = format!("{}a", "t".repeat(62));
        let long_b = format!("{}b", "t".repeat(62));
        let (a, b) = (
            ObjectNames::for_table(&long_a),
            ObjectNames::for_table(&long_b),
        );
        for name in [
            &a.unique,
            &a.idx_failed_recent,
            &a.chk_duration,
            &a.attempts_pk,
        ] {
            assert!(name.len() <= MAX_IDENT_BYTES, "{name}");
        }
        assert_ne!(
            a.unique, b.unique,
            "names differing only past the cut stay distinct"
        );
        assert!(a.unique.ends_with("_uq_execution"));
        // Persisted: exactly the name earlier versions derived.
        assert_eq!(
            a.unique,
            format!("{}_8d73021c_uq_execution", "t".repeat(41))
        );
    }
}
