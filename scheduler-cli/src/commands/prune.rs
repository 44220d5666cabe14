//! `scheduler prune`: retention, in bounded batches.

use scheduler_core::{Operator, Prune};
use std::time::Duration;

use clap::Args;
use serde_json::json;

use super::steering::operator_failure;
use super::Cx;
use crate::output::{emit, emit_json, json_ts, Failure};
use crate::parse_duration;

/// `scheduler prune`
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Delete terminal executions that finished longer ago than this (e.g. 30days).
    #[arg(long, value_parser = parse_duration)]
    older_than: Duration,
    /// Count what would be deleted; delete nothing.
    #[arg(long)]
    dry_run: bool,
    /// Rows per delete statement, so a large table is never locked for long.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    batch: u32,
    /// After each batch, pause this many times as long as the batch took,
    /// so that replicas claiming meanwhile keep their latency (0: no pause).
    #[arg(long, default_value_t = 1.0, value_parser = parse_nice_ratio, allow_hyphen_values = true)]
    nice_ratio: f64,
}

fn parse_nice_ratio(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r >= 0.0 => Ok(r),
        _ => Err(format!(
            "invalid nice ratio {s:?}: expected a number, 0 or more (e.g. 1 or 0.5)"
        )),
    }
}

/// `scheduler prune`
pub async fn prune(cx: &Cx, args: PruneArgs) -> Result<(), Failure> {
    let (json, zone) = (cx.json, &cx.zone);
    let store = cx.store().await?;
    let now = store.now().await.map_err(|e| cx.error(e))?;
    let cutoff = now - args.older_than;
    let total = if args.dry_run {
        store
            .prune_finished(&Prune::count(cutoff))
            .await
            .map_err(|e| cx.error(e))?
    } else {
        Operator::new(store)
            .prune(cutoff, args.batch as usize, args.nice_ratio)
            .await
            .map_err(|e| operator_failure(cx, e))?
            .rows
    };
    if json {
        return emit_json(
            &json!({ "dry_run": args.dry_run, "cutoff": json_ts(Some(cutoff)), "executions": total }),
        );
    }
    let verb = if args.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    emit(&format!(
        "{verb} {total} terminal executions finished before {} {}\n",
        zone.ts(Some(cutoff)),
        zone.label()
    ))
}
