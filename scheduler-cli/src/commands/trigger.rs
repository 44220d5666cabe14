//! `scheduler trigger JOB`: run the job (or one scope) once now, outside
//! its schedule.

use clap::Args;
use scheduler_core::Operator;

use super::steering::{operator_failure, report_json, target_words, TargetArgs};
use super::Cx;
use crate::output::{emit, Failure};

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
    if let Some(printed) = report_json(cx, &steered) {
        return printed;
    }
    let control = &steered.control;
    emit(&format!(
        "triggered {}: a replica runs it once per scope at its next tick (control {}; \
         progress: scheduler controls --job {:?})\n",
        target_words(&target.job, target.scope.as_ref()),
        control.id,
        target.job
    ))
}
