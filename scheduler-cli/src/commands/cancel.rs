//! `scheduler cancel CONTROL_ID`: ends an active control. A pause ends as a
//! resume would; a trigger or a backfill claims nothing more (runs already
//! started finish).

use clap::Args;
use scheduler_core::Operator;
use uuid::Uuid;

use super::steering::{control_json, operator_failure, target_words};
use super::Cx;
use crate::output::{emit, emit_json, Failure};

/// `scheduler cancel`
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The control's id (`scheduler controls` lists them).
    #[arg(value_parser = parse_control_id)]
    id: Uuid,
    /// Why, and who: kept with the control.
    #[arg(long)]
    reason: Option<String>,
}

fn parse_control_id(s: &str) -> Result<Uuid, String> {
    Uuid::parse_str(s).map_err(|e| format!("invalid control id {s:?}: {e}"))
}

/// `scheduler cancel`
pub async fn cancel(cx: &Cx, args: CancelArgs) -> Result<(), Failure> {
    let store = cx.store().await?;
    let control = Operator::new(store)
        .cancel(args.id, args.reason)
        .await
        .map_err(|e| operator_failure(cx, e))?;
    let ended = control.ended_at.unwrap_or(control.updated_at);
    if cx.json {
        let mut doc = control_json(&control, ended);
        doc["warnings"] = Vec::<String>::new().into();
        return emit_json(&doc);
    }
    emit(&format!(
        "cancelled the {} of {} (control {})\n",
        control.action.kind(),
        target_words(&control.job_name, control.scope.as_ref()),
        control.id
    ))
}
