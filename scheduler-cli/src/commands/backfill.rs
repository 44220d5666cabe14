//! `scheduler backfill JOB --from TIME --to TIME`: run every planned
//! instant of the job (or one scope) in `[from, to)`.

use clap::Args;
use scheduler_core::{Backfill, Operator};

use super::steering::{
    operator_failure, parse_time, report_json, target_words, TargetArgs, TimeArg,
};
use super::Cx;
use crate::output::{emit, Failure};

/// `scheduler backfill`
#[derive(Debug, Args)]
pub struct BackfillArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// The first instant (inclusive) as a TIME: RFC 3339
    /// (2026-12-07T10:00:00Z) or an offset from store time (-2h).
    #[arg(long, value_parser = parse_time, allow_hyphen_values = true)]
    from: TimeArg,
    /// The end (exclusive), not after store time: a TIME as for --from
    /// (`now` included).
    #[arg(long, value_parser = parse_time, allow_hyphen_values = true)]
    to: TimeArg,
    /// Why, and who: shown with the backfill.
    #[arg(long, default_value = "", hide_default_value = true)]
    note: String,
    /// Confirm a backfill of more than 100000 planned instants per scope.
    #[arg(long)]
    yes_large: bool,
}

/// `scheduler backfill`
pub async fn backfill(cx: &Cx, args: BackfillArgs) -> Result<(), Failure> {
    let store = cx.store().await?;
    let now = store.now().await.map_err(|e| cx.error(e))?;
    let range = Backfill {
        from: args.from.at(now, "--from")?,
        to: args.to.at(now, "--to")?,
        confirm_large: args.yes_large,
    };
    let target = args.target.target();
    let steered = Operator::new(store)
        .backfill(&target, &range, &args.note)
        .await
        .map_err(|e| operator_failure(cx, e))?;
    if let Some(printed) = report_json(cx, &steered) {
        return printed;
    }
    let control = &steered.control;
    let zone = &cx.zone;
    emit(&format!(
        "backfill of {}, [{}, {}) {}: {} planned instant(s) per scope, run oldest first at the \
         pace of the job's per-tick cap; instants that already succeeded do not run again \
         (control {}; progress: scheduler controls --job {:?})\n",
        target_words(&target.job, target.scope.as_ref()),
        zone.ts(Some(range.from)),
        zone.ts(Some(range.to)),
        zone.label(),
        steered.instants.unwrap_or_default(),
        control.id,
        target.job
    ))
}
