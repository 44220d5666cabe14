//! `scheduler replicas`: every replica of the registry, live, vanished or
//! stopped, with what it runs (`docs/contract.md` §7, "The replica
//! registry").

use scheduler_core::{Replica, ReplicaState};
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::Cx;
use crate::output::{ago, emit, emit_json, json_ts, table, Failure};

/// How many job names a row of the table shows before it counts the rest.
const JOBS_SHOWN: usize = 4;

/// A replica for `--json`: what it announced, its jobs as stored, and its
/// state at `now`.
pub fn replica_json(r: &Replica, now: OffsetDateTime) -> Value {
    json!({
        "runner_id": r.info.runner_id,
        "state": r.state(now).as_str(),
        "host": r.info.host,
        "pid": r.info.pid,
        "version": r.info.version,
        "started_at": json_ts(Some(r.started_at)),
        "last_seen_at": json_ts(Some(r.last_seen_at)),
        "stopped_at": json_ts(r.stopped_at),
        "refresh_interval_ms": u64::try_from(r.info.refresh_interval.as_millis()).unwrap_or(u64::MAX),
        "jobs": r.info.jobs,
    })
}

/// `scheduler replicas`
pub async fn replicas(cx: &Cx) -> Result<(), Failure> {
    let store = cx.store().await?;
    let now = store.now().await.map_err(|e| cx.error(e))?;
    let mut replicas = store.replicas().await.map_err(|e| cx.error(e))?;
    // Live first, then vanished, then stopped; by runner id within each.
    replicas.sort_by_key(|r| r.state(now));
    if cx.json {
        return emit_json(&json!({
            "store_time": json_ts(Some(now)),
            "replicas": replicas.iter().map(|r| replica_json(r, now)).collect::<Vec<_>>(),
        }));
    }
    if replicas.is_empty() {
        return emit(
            "no replica has announced itself yet (a manager announces itself at its first tick)\n",
        );
    }
    let count = |state: ReplicaState| replicas.iter().filter(|r| r.state(now) == state).count();
    let mut text = format!(
        "{} live, {} vanished, {} stopped (live: seen within {} refresh intervals)\n\n",
        count(ReplicaState::Live),
        count(ReplicaState::Vanished),
        count(ReplicaState::Stopped),
        scheduler_core::model::LIVE_WITHIN_REFRESHES,
    );
    let zone = &cx.zone;
    let rows: Vec<Vec<String>> = replicas
        .iter()
        .map(|r| {
            let names: Vec<&str> = r.info.jobs.iter().map(|j| j.name.as_str()).collect();
            let mut jobs = names
                .iter()
                .take(JOBS_SHOWN)
                .map(|n| n.escape_debug().to_string())
                .collect::<Vec<_>>()
                .join(", ");
            if names.len() > JOBS_SHOWN {
                jobs.push_str(&format!(" (+{} more)", names.len() - JOBS_SHOWN));
            }
            vec![
                r.state(now).to_string(),
                r.info.runner_id.escape_debug().to_string(),
                r.info.host.escape_debug().to_string(),
                r.info.pid.to_string(),
                r.info.version.escape_debug().to_string(),
                zone.ts(Some(r.started_at)),
                format!(
                    "{} ({})",
                    zone.ts(Some(r.last_seen_at)),
                    ago(now, Some(r.last_seen_at))
                ),
                if jobs.is_empty() {
                    "-".to_owned()
                } else {
                    jobs
                },
            ]
        })
        .collect();
    let started = format!("started {}", zone.label());
    let seen = format!("last seen {}", zone.label());
    text.push_str(&table(
        &[
            "state", "runner", "host", "pid", "version", &started, &seen, "jobs",
        ],
        &rows,
    ));
    emit(&text)
}
