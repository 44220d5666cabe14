//! `scheduler resume JOB`: ends the pause of exactly that target (the whole
//! job, or the one scope).

use clap::Args;
use scheduler_core::{ControlAction, Operator};

use super::steering::{control_json, operator_failure, target_words, TargetArgs};
use super::Cx;
use crate::output::{emit, emit_json, Failure};

/// `scheduler resume`
#[derive(Debug, Args)]
pub struct ResumeArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Drop the plans that came due while paused instead of catching them
    /// up by the job's rules.
    #[arg(long)]
    skip_missed: bool,
}

/// `scheduler resume`
pub async fn resume(cx: &Cx, args: ResumeArgs) -> Result<(), Failure> {
    let store = cx.store().await?;
    let target = args.target.target();
    let control = Operator::new(store)
        .resume(&target, args.skip_missed)
        .await
        .map_err(|e| operator_failure(cx, e))?;
    let ended = control.ended_at.unwrap_or(control.updated_at);
    if cx.json {
        let mut doc = control_json(&control, ended);
        doc["warnings"] = Vec::<String>::new().into();
        return emit_json(&doc);
    }
    let skipped = matches!(
        control.action,
        ControlAction::Pause {
            skip_missed: true,
            ..
        }
    );
    let missed = if skipped {
        "plans that came due while paused are dropped"
    } else {
        "plans that came due while paused follow the job's catch-up rules"
    };
    let paused_for = (ended - control.created_at).unsigned_abs();
    emit(&format!(
        "resumed {}: paused for {} since {} {}; {missed} (control {})\n",
        target_words(&target.job, target.scope.as_ref()),
        // Whole milliseconds: a pause of a moment reads `112ms`, not `0s`.
        humantime::format_duration(std::time::Duration::from_millis(
            u64::try_from(paused_for.as_millis()).unwrap_or(u64::MAX)
        )),
        cx.zone.ts(Some(control.created_at)),
        cx.zone.label(),
        control.id
    ))
}
