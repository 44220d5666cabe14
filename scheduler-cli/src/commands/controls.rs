//! `scheduler controls`: the controls in force (pauses, triggers,
//! backfills), with their progress; `--all` adds those that ended in the
//! last 7 days.

use std::time::Duration;

use clap::Args;
use scheduler_core::model::ControlRead;
use scheduler_core::operator::known_schedules;
use scheduler_core::Operator;
use serde_json::json;

use super::steering::{
    control_with_progress_json, operator_failure, progress_cell, span_cell, target_cell,
    TABLE_NOTE_CHARS,
};
use super::Cx;
use crate::output::{emit, emit_json, json_ts, table, text_cell, Failure};

/// How far back `--all` reaches for controls that ended.
const ENDED_WITHIN: Duration = Duration::from_secs(7 * 86_400);

/// `scheduler controls`
#[derive(Debug, Args)]
pub struct ControlsArgs {
    /// Only this job's controls.
    #[arg(long)]
    job: Option<String>,
    /// Also the controls that ended (done, cancelled, rejected) in the last
    /// 7 days.
    #[arg(long)]
    all: bool,
}

/// `scheduler controls`
pub async fn controls(cx: &Cx, args: ControlsArgs) -> Result<(), Failure> {
    let store = cx.store().await?;
    let now = store.now().await.map_err(|e| cx.error(e))?;
    let read = ControlRead {
        jobs: args.job.clone().map(|j| vec![j]),
        ended_since: args.all.then(|| now - ENDED_WITHIN),
    };
    let operator = Operator::new(store.clone());
    let listed = operator
        .list(&read)
        .await
        .map_err(|e| operator_failure(cx, e))?;
    // The registry only adds instant counts to backfills: a schema without
    // it still lists the controls.
    let replicas = store.replicas().await.unwrap_or_else(|e| {
        eprintln!(
            "note: backfills' planned instants are not counted: {}",
            cx.error(e)
        );
        Vec::new()
    });
    let schedules = known_schedules(&replicas);
    let mut progress = Vec::with_capacity(listed.len());
    for control in &listed {
        progress.push(
            operator
                .progress(control, &schedules)
                .await
                .map_err(|e| operator_failure(cx, e))?,
        );
    }
    if cx.json {
        return emit_json(&json!({
            "store_time": json_ts(Some(now)),
            "controls": listed
                .iter()
                .zip(&progress)
                .map(|(c, p)| control_with_progress_json(c, p.as_ref(), now))
                .collect::<Vec<_>>(),
        }));
    }
    let which = if args.all {
        "no controls in force or ended in the last 7 days"
    } else {
        "no controls in force (--all: also those ended in the last 7 days)"
    };
    if listed.is_empty() {
        let for_job = args
            .job
            .map(|j| format!(" for job {j:?}"))
            .unwrap_or_default();
        return emit(&format!("{which}{for_job}\n"));
    }
    let zone = &cx.zone;
    let rows: Vec<Vec<String>> = listed
        .iter()
        .zip(&progress)
        .map(|(c, p)| {
            vec![
                c.id.to_string(),
                c.action.kind().to_owned(),
                target_cell(&c.job_name, c.scope.as_ref()),
                if c.is_active() && !c.in_force(now) {
                    "active (ran out)".to_owned()
                } else {
                    c.state.to_string()
                },
                zone.ts(Some(c.created_at)),
                span_cell(c, now, zone),
                zone.ts(c.cursor),
                progress_cell(p.as_ref()),
                text_cell(&c.note, TABLE_NOTE_CHARS),
                text_cell(c.reason.as_deref().unwrap_or_default(), TABLE_NOTE_CHARS),
            ]
        })
        .collect();
    let created = format!("created {}", zone.label());
    emit(&table(
        &[
            "id",
            "kind",
            "target",
            "state",
            &created,
            "until / range",
            "cursor",
            "progress",
            "note",
            "reason",
        ],
        &rows,
    ))
}
