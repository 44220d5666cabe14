//! `scheduler trigger JOB`: run the job (or one scope) once now, outside
//! its schedule.

use clap::Args;
use scheduler_core::Operator;

use super::steering::{control_json, operator_failure, print_warnings, target_words, TargetArgs};
use super::Cx;
use crate::output::{emit, emit_json, Failure};

/// `scheduler trigger`
#[derive(Debug, Args)]
pub struct TriggerArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Why, and who: shown with the trigger.
    #[arg(long, default_value = "", hide_default_value = true)]
    note: String,
}

/// `scheduler trigger`
pub async fn trigger(cx: &Cx, args: TriggerArgs) -> Result<(), Failure> {
    let store = cx.store().await?;
    let target = args.target.target();
    let steered = Operator::new(store)
        .trigger(&target, &args.note)
        .await
        .map_err(|e| operator_failure(cx, e))?;
    print_warnings(&steered.warnings);
    let control = &steered.control;
    if cx.json {
        let mut doc = control_json(control, control.created_at);
        doc["warnings"] = steered.warnings.into();
        return emit_json(&doc);
    }
    emit(&format!(
        "triggered {}: a replica runs it once per scope at its next tick (control {}; \
         progress: scheduler controls --job {:?})\n",
        target_words(&target.job, target.scope.as_ref()),
        control.id,
        target.job
    ))
}
