//! The metrics of a real tick, scraped through a Prometheus exporter: the
//! setup the README documents (install `metrics-exporter-prometheus`'s
//! recorder, serve `render()`), with the metric names and labels the
//! `metrics` module lists.

use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use scheduler_core::{
    BoxError, JobOutput, JobSpec, Manager, ManagerOptions, ManualClock, Scope, Scopes,
};
use scheduler_memory::MemoryLeaseStore;
use time::macros::datetime;

#[tokio::test]
async fn a_tick_shows_up_in_the_prometheus_text_format() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let clock = ManualClock::new(datetime!(2026-03-05 12:00:30 UTC));
    let store = Arc::new(MemoryLeaseStore::with_clock(Arc::new(clock)));
    let manager = Manager::new(
        store,
        ManagerOptions {
            runner_id: "r1".into(),
            ..Default::default()
        },
    )
    .expect("valid manager options");
    // Metric handles are taken when a job is registered: with a global
    // recorder (`install_recorder()`) that is any time after it is
    // installed; here, a recorder of this test's own.
    metrics::with_local_recorder(&recorder, || {
        let tenants = Scopes::fixed(["a", "b"].map(|t| Scope::new("tenant", t)));
        manager
            .register(
                JobSpec::new("rollup", tenants, |ctx| async move {
                    if ctx.scope().id == "b" {
                        return Err(BoxError::from("upstream down"));
                    }
                    Ok(JobOutput::rows(1))
                })
                .cadence(Duration::from_secs(60)),
            )
            .expect("a valid job");
    });
    let report = manager.run_once().await;
    assert_eq!((report.succeeded, report.failed), (1, 1));
    let text = handle.render();
    for line in [
        r#"scheduler_claims_total{job="rollup",outcome="won"} 2"#,
        r#"scheduler_executions_total{job="rollup",status="SUCCESS",error_code=""} 1"#,
        r#"scheduler_executions_total{job="rollup",status="FAILED",error_code="handler_error"} 1"#,
        r#"scheduler_running{job="rollup"} 0"#,
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(
        text.contains("scheduler_run_duration_seconds"),
        "the run-time histogram is exported:\n{text}"
    );
}
