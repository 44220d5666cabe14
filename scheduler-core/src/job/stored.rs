//! Stored schedules as jobs (`docs/contract.md` §12): the one validation a
//! stored schedule and a compiled-in [`JobSpec`] share
//! ([`validate_definition`]), the decision of every write
//! ([`apply_write`]), and the [`JobSpec`] a replica runs for a stored
//! schedule ([`JobSpec::from_stored`]).

use std::sync::Arc;

use time::OffsetDateTime;

use super::{HandlerFuture, JobOutput, JobSpec, RunContext, Scopes};
use crate::error::{SpecError, StoreError};
use crate::model::{
    name_problem, ScheduleDefinition, ScheduleForm, ScheduleWrite, StoredSchedule, StoredScopes,
    MAX_STORED_SCOPES,
};

/// A handler as registered by kind: what [`JobSpec::new`] takes, shared.
pub type KindHandler = Arc<dyn Fn(RunContext) -> HandlerFuture + Send + Sync>;

/// Checks a stored schedule named `name` by the rules of a compiled-in
/// job ([`JobSpec::validate`], `docs/contract.md` §6), plus what only a
/// stored one has: its kind and scope provider names (the limits of every
/// name, [`name_problem`]), a cadence or cron schedule (no custom planner),
/// and at most [`MAX_STORED_SCOPES`] fixed scopes.
///
/// # Errors
/// A [`SpecError`] naming the schedule and the field, for the first rule
/// broken.
pub fn validate_definition(name: &str, definition: &ScheduleDefinition) -> Result<(), SpecError> {
    let fail = |field, reason: String| Err(SpecError::new(name, field, reason));
    if definition.kind.trim().is_empty() {
        return fail("kind", "must not be empty or blank".to_owned());
    }
    if let Some(problem) = name_problem("kind", &definition.kind) {
        return fail("kind", problem);
    }
    if matches!(
        definition.schedule,
        ScheduleForm::Custom | ScheduleForm::Unknown
    ) {
        return fail(
            "schedule",
            "must be a cadence (kind \"every\") or a cron schedule (kind \"cron\")".to_owned(),
        );
    }
    match &definition.scopes {
        StoredScopes::Fixed(scopes) if scopes.is_empty() => {
            return fail("scopes", "must list at least one scope".to_owned());
        }
        StoredScopes::Fixed(scopes) if scopes.len() > MAX_STORED_SCOPES => {
            return fail(
                "scopes",
                format!(
                    "must list at most {MAX_STORED_SCOPES} scopes (got {}); register a scope provider in code for more",
                    scopes.len()
                ),
            );
        }
        StoredScopes::Provider(provider) if provider.trim().is_empty() => {
            return fail("scopes", "the provider's name must not be empty".to_owned());
        }
        StoredScopes::Provider(provider) => {
            if let Some(problem) = name_problem("scope provider", provider) {
                return fail("scopes", problem);
            }
        }
        StoredScopes::Fixed(_) => {}
    }
    // Fixed scopes are checked by the spec's own rules; a provider's are
    // only known at run time, so a stand-in takes its place here.
    let scopes = match &definition.scopes {
        StoredScopes::Fixed(list) => Scopes::fixed(list.iter().cloned()),
        StoredScopes::Provider(_) => Scopes::global(),
    };
    let unused: KindHandler = Arc::new(|_| Box::pin(async { Ok(JobOutput::default()) }));
    JobSpec::from_stored(name, definition, unused, scopes).validate()
}

/// Decides one write of the stored schedule `name` whose current state is
/// `current`, at store time `now`: the schedule as it must be stored
/// (`None`: deleted). Every store applies it under the job's claim lock,
/// so a claim that planned under one version never commits after another
/// is current (`docs/contract.md` §12).
///
/// # Errors
/// [`StoreError::InvalidInput`] naming the field for a definition
/// [`validate_definition`] refuses, or an unstorable name;
/// [`StoreError::Conflict`] for a create of an existing name, an update or
/// delete of a missing one, or a version that is no longer current (the
/// message names the current version). Nothing is written then.
pub fn apply_write(
    name: &str,
    write: &ScheduleWrite,
    current: Option<&StoredSchedule>,
    now: OffsetDateTime,
) -> Result<Option<StoredSchedule>, StoreError> {
    if let Some(problem) = name_problem("schedule name", name) {
        return Err(StoreError::InvalidInput(problem));
    }
    let check = |definition: &ScheduleDefinition| {
        validate_definition(name, definition).map_err(|e| StoreError::InvalidInput(e.to_string()))
    };
    let stale = |asked: i64, current: &StoredSchedule| {
        StoreError::Conflict(format!(
            "stored schedule {name:?} is at version {}, not {asked}: read it again",
            current.version
        ))
    };
    let missing = || StoreError::Conflict(format!("no stored schedule named {name:?}"));
    match (write, current) {
        (ScheduleWrite::Create(_), Some(current)) => Err(StoreError::Conflict(format!(
            "stored schedule {name:?} already exists (version {})",
            current.version
        ))),
        (ScheduleWrite::Create(definition), None) => {
            if name.trim().is_empty() {
                return Err(StoreError::InvalidInput(format!(
                    "{}",
                    SpecError::new(name, "name", "must not be empty or blank")
                )));
            }
            check(definition)?;
            Ok(Some(StoredSchedule {
                name: name.to_owned(),
                version: 1,
                definition: definition.clone(),
                created_at: now,
                updated_at: now,
            }))
        }
        (ScheduleWrite::Update { .. } | ScheduleWrite::Delete { .. }, None) => Err(missing()),
        (ScheduleWrite::Update { version, .. }, Some(current)) if *version != current.version => {
            Err(stale(*version, current))
        }
        (ScheduleWrite::Update { definition, .. }, Some(current)) => {
            check(definition)?;
            Ok(Some(StoredSchedule {
                version: current.version + 1,
                definition: definition.clone(),
                updated_at: now,
                ..current.clone()
            }))
        }
        (ScheduleWrite::Delete { version: Some(v) }, Some(current)) if *v != current.version => {
            Err(stale(*v, current))
        }
        (ScheduleWrite::Delete { .. }, Some(_)) => Ok(None),
    }
}

impl JobSpec {
    /// The job a replica runs for the stored schedule `name` with
    /// `definition`: its kind's `handler`, the `scopes` its definition
    /// names (resolved by the caller: a fixed list, or the registered
    /// provider), its schedule, options and arguments.
    pub fn from_stored(
        name: &str,
        definition: &ScheduleDefinition,
        handler: KindHandler,
        scopes: Scopes,
    ) -> JobSpec {
        JobSpec::new(name, scopes, move |ctx| handler(ctx))
            .schedule_form(&definition.schedule)
            .options(&definition.options)
            .arguments(definition.arguments.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    fn definition() -> ScheduleDefinition {
        serde_json::from_value(json!({
            "kind": "digest",
            "schedule": {"kind": "every", "every_us": 60_000_000},
        }))
        .unwrap()
    }

    fn field(def: &ScheduleDefinition) -> &'static str {
        validate_definition("s", def).unwrap_err().field
    }

    #[test]
    fn a_stored_schedule_is_refused_by_the_field_that_is_wrong() {
        assert_eq!(validate_definition("s", &definition()), Ok(()));
        let mut d = definition();
        d.kind = "a\0b".into();
        assert_eq!(field(&d), "kind");
        let mut d = definition();
        d.schedule = ScheduleForm::Cron {
            expression: "61 * * * *".into(),
            zone: "UTC".into(),
        };
        assert_eq!(field(&d), "cron");
        d.schedule = ScheduleForm::Cron {
            expression: "0 9 * * *".into(),
            zone: "Mars/Olympus".into(),
        };
        assert_eq!(field(&d), "cron");
        d.schedule = ScheduleForm::Every {
            cadence: Duration::ZERO,
            offset: Duration::ZERO,
        };
        assert_eq!(field(&d), "cadence");
        d.schedule = ScheduleForm::Every {
            cadence: Duration::from_secs(60),
            offset: Duration::from_secs(60),
        };
        assert_eq!(field(&d), "cadence_offset");
        d.schedule = ScheduleForm::Custom;
        assert_eq!(field(&d), "schedule");
        let mut d = definition();
        d.options.catch_up_window = Duration::from_secs(400 * 86_400);
        assert_eq!(field(&d), "catch_up_window");
        let mut d = definition();
        d.arguments.insert("big".into(), json!("x".repeat(20_000)));
        assert_eq!(field(&d), "arguments");
        let mut d = definition();
        d.arguments
            .insert("deep".into(), json!({"list": ["ok", "n\u{0}ul"]}));
        assert_eq!(field(&d), "arguments", "jsonb cannot hold NUL");
        let mut d = definition();
        d.scopes = StoredScopes::Fixed(vec![]);
        assert_eq!(field(&d), "scopes");
        d.scopes = StoredScopes::Provider("p\0".into());
        assert_eq!(field(&d), "scopes");
        let mut d = definition();
        d.options.stale_timeout = Duration::from_secs(1);
        assert_eq!(field(&d), "stale_timeout", "the rules of a compiled-in job");
    }

    #[test]
    fn writes_are_compare_and_set_on_the_version() {
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let t1 = t0 + Duration::from_secs(5);
        let created = apply_write("s", &ScheduleWrite::Create(definition()), None, t0)
            .unwrap()
            .unwrap();
        assert_eq!((created.version, created.updated_at), (1, t0));
        let again = apply_write(
            "s",
            &ScheduleWrite::Create(definition()),
            Some(&created),
            t1,
        );
        assert!(matches!(again, Err(StoreError::Conflict(m)) if m.contains("version 1")));
        let mut changed = definition();
        changed.paused = true;
        let update = ScheduleWrite::Update {
            version: 1,
            definition: changed.clone(),
        };
        let updated = apply_write("s", &update, Some(&created), t1)
            .unwrap()
            .unwrap();
        assert_eq!(
            (updated.version, updated.created_at, updated.updated_at),
            (2, t0, t1)
        );
        assert_eq!(updated.definition, changed);
        let lost = apply_write("s", &update, Some(&updated), t1).unwrap_err();
        assert!(
            matches!(&lost, StoreError::Conflict(m) if m.contains("at version 2, not 1")),
            "{lost}"
        );
        let delete = |version| ScheduleWrite::Delete { version };
        assert!(apply_write("s", &delete(Some(1)), Some(&updated), t1).is_err());
        assert!(matches!(
            apply_write("s", &delete(Some(2)), Some(&updated), t1),
            Ok(None)
        ));
        assert!(matches!(
            apply_write("s", &delete(None), Some(&updated), t1),
            Ok(None)
        ));
        assert!(matches!(
            apply_write("s", &delete(None), None, t1),
            Err(StoreError::Conflict(_))
        ));
        let mut bad = definition();
        bad.options.max_attempts = 0;
        let refused = apply_write("s", &ScheduleWrite::Create(bad), None, t0).unwrap_err();
        assert!(
            matches!(&refused, StoreError::InvalidInput(m) if m.contains("max_attempts")),
            "{refused}"
        );
        assert!(matches!(
            apply_write(" ", &ScheduleWrite::Create(definition()), None, t0),
            Err(StoreError::InvalidInput(_))
        ));
    }
}
