//! `scheduler show ID`: one execution, every field, and its attempts.

use uuid::Uuid;

use super::{
    attempt_cells, attempt_header, awaits_operator, duration_cell, execution_with_attempts_json, Cx,
};
use crate::output::{emit, emit_json, table, Failure};

/// `scheduler show ID`
pub async fn show(cx: &Cx, id: Uuid) -> Result<(), Failure> {
    let (json, zone) = (cx.json, &cx.zone);
    let store = cx.store().await?;
    let row = store
        .get_execution(id)
        .await
        .map_err(|e| cx.error(e))?
        .ok_or_else(|| Failure::Runtime(format!("no execution with id {id}")))?;
    let attempts = store.attempts(id).await.map_err(|e| cx.error(e))?;
    if json {
        return emit_json(&execution_with_attempts_json(&row, &attempts));
    }
    let label = zone.label();
    let at = |t| zone.ts(t);
    let text = |v: Option<&str>| v.unwrap_or("-").to_owned();
    let next_retry = match row.next_retry_at {
        _ if awaits_operator(&row) => "never (only an operator's retry runs it again)".to_owned(),
        None if row.status == scheduler_core::Status::Failed => "as soon as a tick sees it".into(),
        t => at(t),
    };
    let fields: Vec<(String, String)> = vec![
        ("id".into(), row.id.to_string()),
        ("job".into(), row.job_name.to_string()),
        ("scope".into(), row.scope.to_string()),
        (format!("plan time {label}"), at(Some(row.plan_time))),
        ("status".into(), row.status.to_string()),
        (
            "origin".into(),
            match row.control_id {
                Some(control) => format!("{} (control {control})", row.origin),
                None => row.origin.to_string(),
            },
        ),
        (
            "attempt".into(),
            format!("{} of {}", row.attempt, row.max_attempts),
        ),
        ("runner".into(), text(row.runner_id.as_deref())),
        ("lease token".into(), row.lease_token.to_string()),
        (format!("heartbeat at {label}"), at(row.heartbeat_at)),
        (format!("stale after {label}"), at(row.stale_after)),
        (format!("started at {label}"), at(row.started_at)),
        (format!("finished at {label}"), at(row.finished_at)),
        (format!("next retry at {label}"), next_retry),
        ("duration".into(), duration_cell(row.duration_ms)),
        (
            "rows affected".into(),
            row.rows_affected
                .map_or_else(|| "-".into(), |n| n.to_string()),
        ),
        (
            "result".into(),
            serde_json::Value::Object(row.result.clone()).to_string(),
        ),
        ("error code".into(), text(row.error_code.as_deref())),
        ("error".into(), text(row.error_msg.as_deref())),
        (format!("created at {label}"), at(Some(row.created_at))),
        (format!("updated at {label}"), at(Some(row.updated_at))),
    ];
    let width = fields
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out: String = fields
        .iter()
        .map(|(k, v)| format!("{k:<width$}  {v}\n"))
        .collect();
    out.push_str("\nattempts\n");
    let header = attempt_header(zone);
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    out.push_str(&table(&header, &attempt_cells(zone, &row, &attempts)));
    emit(&out)
}
