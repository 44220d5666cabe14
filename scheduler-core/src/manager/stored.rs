//! Stored schedules (`docs/contract.md` §12) in a replica: the kinds and
//! scope providers its code registered, and the stored schedules each tick
//! reads and runs beside the compiled-in jobs.
//!
//! Each tick reads every stored schedule in one store call. A schedule
//! runs as the [`JobSpec`] of its current version
//! ([`JobSpec::from_stored`]), kept while the version stays the same; a
//! new version is a new job with nothing remembered of the old one, which
//! the version guard of the claims makes exact: a claim planned under a
//! version that is no longer current claims nothing
//! ([`ClaimKind::Superseded`](crate::model::ClaimKind::Superseded)), and a
//! version plans only from the instant it became current (`updated_at`).
//! When the read fails the tick goes on with the last good read (its
//! claims are guarded all the same).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};

use ::metrics::counter;
use futures::FutureExt;
use time::OffsetDateTime;
use tracing::{error, warn};

use super::tick::TickOutcome;
use super::{Manager, Registered};
use crate::error::{BoxError, SpecError};
use crate::job::{JobOutput, JobSpec, KindHandler, RunContext, Scopes};
use crate::metrics::{self, STORED_SCHEDULES_SKIPPED_TOTAL};
use crate::model::{name_problem, Scope, StoredSchedule, StoredScopes};

/// What a replica's code registered for stored schedules.
#[derive(Default)]
pub(super) struct Catalog {
    kinds: BTreeMap<String, KindHandler>,
    providers: HashMap<String, Scopes>,
}

/// The stored schedules of the last good read, as jobs.
#[derive(Default)]
pub(super) struct StoredJobs {
    /// By name: the job of each schedule's current version this replica runs.
    jobs: BTreeMap<String, Arc<Registered>>,
    /// The versions already reported as skipped: reported once each.
    reported: HashSet<(String, i64)>,
}

/// The stored version a job runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct StoredVersion {
    /// The version its claims name.
    pub(super) version: i64,
    /// When it became current: its plans are those at or after it.
    pub(super) since: OffsetDateTime,
    /// Paused by its definition: swept, never planned or claimed.
    pub(super) paused: bool,
}

impl Manager {
    /// Registers the handler of stored schedules of `kind`: from the next
    /// tick on, this replica runs every stored schedule of that kind
    /// (`docs/contract.md` §12), calling `handler` as a compiled-in job's,
    /// with the schedule's arguments in
    /// [`RunContext::arguments`](crate::job::RunContext::arguments). The
    /// replica announces its kinds to the replica registry.
    ///
    /// # Errors
    /// A [`SpecError`] (field `kind`) for a name that can never be stored
    /// or is registered already.
    pub fn register_kind<F, Fut>(
        &self,
        kind: impl Into<String>,
        handler: F,
    ) -> Result<(), SpecError>
    where
        F: Fn(RunContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<JobOutput, BoxError>> + Send + 'static,
    {
        let kind = kind.into();
        check_name(&kind, "kind")?;
        let mut catalog = self.inner.catalog.write().expect("catalog lock");
        if catalog.kinds.contains_key(&kind) {
            return Err(SpecError::new(&kind, "kind", "is already registered"));
        }
        let handler: KindHandler = Arc::new(move |ctx| handler(ctx).boxed());
        catalog.kinds.insert(kind, handler);
        drop(catalog);
        self.inner
            .registry
            .lock()
            .expect("registry lock")
            .job_registered();
        Ok(())
    }

    /// Registers a scope provider that stored schedules name
    /// (`{"provider": name}`), called as a compiled-in job's
    /// ([`Scopes::dynamic`]) once per tick and schedule.
    ///
    /// # Errors
    /// A [`SpecError`] (field `scopes`) for a name that can never be
    /// stored or is registered already.
    pub fn register_scope_provider<F, Fut>(
        &self,
        name: impl Into<String>,
        provider: F,
    ) -> Result<(), SpecError>
    where
        F: Fn(OffsetDateTime) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<Scope>, BoxError>> + Send + 'static,
    {
        let name = name.into();
        check_name(&name, "scopes")?;
        let mut catalog = self.inner.catalog.write().expect("catalog lock");
        if catalog.providers.contains_key(&name) {
            return Err(SpecError::new(
                &name,
                "scopes",
                "provider is already registered",
            ));
        }
        catalog.providers.insert(name, Scopes::dynamic(provider));
        Ok(())
    }

    /// The kinds this replica registered, sorted.
    pub fn kinds(&self) -> Vec<String> {
        let catalog = self.inner.catalog.read().expect("catalog lock");
        catalog.kinds.keys().cloned().collect()
    }

    /// The jobs of the stored schedules this replica runs this tick: read
    /// from the store, or the last good read's when the read fails.
    pub(super) async fn stored_jobs(
        &self,
        compiled: &[Arc<Registered>],
        out: &mut TickOutcome,
    ) -> Vec<Arc<Registered>> {
        let read = self.inner.store.schedules().await;
        let mut stored = self.inner.stored.lock().expect("stored lock");
        let schedules = match read {
            Ok(schedules) => schedules,
            Err(e) => {
                warn!(error = %e, "stored-schedule read failed; going on with the last read");
                out.report.errors += 1;
                return stored.jobs.values().cloned().collect();
            }
        };
        let catalog = self.inner.catalog.read().expect("catalog lock");
        let compiled: HashSet<&str> = compiled.iter().map(|j| j.spec.name.as_str()).collect();
        let mut jobs = BTreeMap::new();
        for schedule in schedules {
            let kept = stored
                .jobs
                .get(&schedule.name)
                .filter(|j| j.stored.map(|s| s.version) == Some(schedule.version))
                .cloned();
            let job = match kept {
                Some(job) => Ok(job),
                None => job_of(&schedule, &catalog, &compiled),
            };
            match job {
                Ok(job) => {
                    jobs.insert(schedule.name.clone(), job);
                }
                Err((reason, message)) => {
                    if stored
                        .reported
                        .insert((schedule.name.clone(), schedule.version))
                    {
                        if reason == "name_taken" || reason == "invalid" {
                            error!(schedule = %schedule.name, version = schedule.version, "{message}; not run here");
                        } else {
                            warn!(schedule = %schedule.name, version = schedule.version, "{message}; not run here (a replica that has it runs it)");
                        }
                        counter!(STORED_SCHEDULES_SKIPPED_TOTAL, "job" => schedule.name.clone(), "reason" => reason)
                            .increment(1);
                    }
                }
            }
        }
        let changed = jobs.len() != stored.jobs.len()
            || jobs
                .iter()
                .zip(&stored.jobs)
                .any(|((_, a), (_, b))| !Arc::ptr_eq(a, b));
        stored.jobs = jobs;
        let now_run = stored.jobs.values().cloned().collect();
        drop(stored);
        if changed {
            // The registry shows the stored schedules each replica runs.
            self.inner
                .registry
                .lock()
                .expect("registry lock")
                .job_registered();
        }
        now_run
    }

    /// The stored schedules this replica runs, as of the last good read.
    pub(super) fn stored_now(&self) -> Vec<Arc<Registered>> {
        let stored = self.inner.stored.lock().expect("stored lock");
        stored.jobs.values().cloned().collect()
    }
}

/// The job of one stored schedule's version, or why this replica does not
/// run it: a reason (the metric's label) and a message.
fn job_of(
    schedule: &StoredSchedule,
    catalog: &Catalog,
    compiled: &HashSet<&str>,
) -> Result<Arc<Registered>, (&'static str, String)> {
    let definition = &schedule.definition;
    if compiled.contains(schedule.name.as_str()) {
        return Err((
            "name_taken",
            "a compiled-in job has this name: it runs, the stored schedule does not".to_owned(),
        ));
    }
    let Some(handler) = catalog.kinds.get(&definition.kind) else {
        return Err((
            "unknown_kind",
            format!(
                "kind {:?} is not registered in this replica",
                definition.kind
            ),
        ));
    };
    let scopes = match &definition.scopes {
        StoredScopes::Fixed(list) => Scopes::fixed(list.iter().cloned()),
        StoredScopes::Provider(name) => match catalog.providers.get(name) {
            Some(provider) => provider.clone(),
            None => {
                return Err((
                    "unknown_provider",
                    format!("scope provider {name:?} is not registered in this replica"),
                ))
            }
        },
    };
    let spec = JobSpec::from_stored(&schedule.name, definition, handler.clone(), scopes);
    if let Err(e) = spec.validate() {
        return Err(("invalid", e.to_string()));
    }
    Ok(Arc::new(Registered {
        metrics: metrics::JobMetrics::new(&schedule.name),
        spec: Arc::new(spec),
        stored: Some(StoredVersion {
            version: schedule.version,
            since: schedule.updated_at,
            paused: definition.paused,
        }),
        known: Mutex::default(),
        busy: Mutex::default(),
        finishing: Mutex::default(),
        resume_at: Default::default(),
        backfilled: Mutex::default(),
        fixed_storable: OnceLock::new(),
    }))
}

fn check_name(name: &str, field: &'static str) -> Result<(), SpecError> {
    if name.trim().is_empty() {
        return Err(SpecError::new(name, field, "must not be empty or blank"));
    }
    match name_problem(field, name) {
        Some(problem) => Err(SpecError::new(name, field, problem)),
        None => Ok(()),
    }
}
