//! `scheduler pause JOB`: no replica starts a new run of the job (or of one
//! scope) until it is resumed, or until `--until`.

use clap::Args;
use scheduler_core::Operator;

use super::steering::{
    operator_failure, parse_time, report_json, target_words, TargetArgs, TimeArg,
};
use super::Cx;
use crate::output::{emit, Failure};

/// `scheduler pause`
#[derive(Debug, Args)]
pub struct PauseArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Why, and who: shown with the pause (e.g. "deploy of v2 -- ana").
    #[arg(long, default_value = "", hide_default_value = true)]
    note: String,
    /// End the pause by itself at this TIME: RFC 3339
    /// (2026-12-07T10:00:00Z) or an offset from store time (+30m).
    #[arg(long, value_parser = parse_time, allow_hyphen_values = true)]
    until: Option<TimeArg>,
    /// Drop the plans that come due while paused instead of catching them
    /// up when the pause ends by itself (a resume may say otherwise).
    #[arg(long)]
    skip_missed: bool,
}

/// `scheduler pause`
pub async fn pause(cx: &Cx, args: PauseArgs) -> Result<(), Failure> {
    let store = cx.store().await?;
    let until = match args.until {
        Some(until) => Some(until.at(store.now().await.map_err(|e| cx.error(e))?, "--until")?),
        None => None,
    };
    let target = args.target.target();
    let steered = Operator::new(store.clone())
        .pause(&target, &args.note, until, args.skip_missed)
        .await
        .map_err(|e| operator_failure(cx, e))?;
    if let Some(printed) = report_json(cx, &steered) {
        return printed;
    }
    let control = &steered.control;
    let zone = &cx.zone;
    let until = match until {
        Some(u) => format!("until {} {}", zone.ts(Some(u)), zone.label()),
        None => "until `scheduler resume`".to_owned(),
    };
    let missed = if args.skip_missed {
        "plans that come due meanwhile will be dropped"
    } else {
        "plans that come due meanwhile follow the job's catch-up rules afterwards"
    };
    emit(&format!(
        "paused {}, {until}: no replica starts a new run of it; {missed} (control {})\n",
        target_words(&target.job, target.scope.as_ref()),
        control.id
    ))
}
