//! `scheduler prune`: retention, in bounded batches.

use scheduler_core::Prune;
use std::time::Duration;

use clap::Args;
use serde_json::json;

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
}

/// `scheduler prune`
pub async fn prune(cx: &Cx, args: PruneArgs) -> Result<(), Failure> {
    let (json, zone) = (cx.json, &cx.zone);
    let store = cx.store().await?;
    let now = store.now().await.map_err(|e| cx.error(e))?;
    let cutoff = now - args.older_than;
    let mut total = 0u64;
    if args.dry_run {
        total = store
            .prune_finished(&Prune::count(cutoff))
            .await
            .map_err(|e| cx.error(e))?;
    } else {
        loop {
            let n = store
                .prune_finished(&Prune::batch(cutoff, args.batch as usize))
                .await
                .map_err(|e| cx.error(e))?;
            total += n;
            // A batch can come back short when a row changed under it (a
            // claim retried it meanwhile), so only an empty one ends it.
            if n == 0 {
                break;
            }
        }
    }
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
