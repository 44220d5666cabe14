//! `scheduler retry ID`: an operator's retry of a FAILED execution.

use scheduler_core::StoreError;
use uuid::Uuid;

use super::{execution_json, Cx};
use crate::output::{emit, emit_json, Failure};

/// `scheduler retry ID`
pub async fn retry(cx: &Cx, id: Uuid) -> Result<(), Failure> {
    let (json, zone) = (cx.json, &cx.zone);
    let store = cx.store().await?;
    match store.retry_execution(id).await {
        Ok(row) => {
            if json {
                emit_json(&execution_json(&row))
            } else {
                emit(&format!(
                    "execution {id} ({} {} {} {}) will run again on the next tick of a replica that runs its job, once, whatever the job's catch-up rules: attempt {} of {}\n",
                    row.job_name,
                    row.scope,
                    zone.ts(Some(row.plan_time)),
                    zone.label(),
                    row.attempt + 1,
                    row.max_attempts
                ))
            }
        }
        Err(StoreError::NotFound { .. }) => {
            Err(Failure::Runtime(format!("no execution with id {id}")))
        }
        Err(StoreError::Conflict(why)) => Err(Failure::Runtime(format!(
            "execution {id} was not changed: {why}"
        ))),
        Err(e) => Err(cx.error(e).into()),
    }
}
