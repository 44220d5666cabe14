//! With the `opentelemetry` feature, `telemetry::layer` exports every
//! execution as an OpenTelemetry span carrying the job, scope, attempt and
//! outcome, with an error status for a failed run.
#![cfg(feature = "opentelemetry")]

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::{Status, TracerProvider as _};
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use scheduler_core::{BoxError, JobOutput, JobSpec, Manager, ManagerOptions, Scope, Scopes};
use scheduler_memory::MemoryLeaseStore;
use tracing_subscriber::layer::SubscriberExt;

#[tokio::test]
async fn executions_are_exported_as_spans_with_their_outcome() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(scheduler_core::telemetry::layer(provider.tracer("test")));
    let _guard = tracing::subscriber::set_default(subscriber);

    let manager = Manager::new(Arc::new(MemoryLeaseStore::new()), ManagerOptions::default())
        .expect("valid manager options");
    let tenants = Scopes::fixed(["ok", "bad"].map(|t| Scope::new("tenant", t)));
    manager
        .register(
            JobSpec::new("export", tenants, |ctx| async move {
                match ctx.scope().id.as_str() {
                    "bad" => Err(BoxError::from("upstream down")),
                    _ => Ok(JobOutput::rows(1)),
                }
            })
            .cadence(Duration::from_secs(60)),
        )
        .expect("a valid job");
    let report = manager.run_once().await;
    assert_eq!((report.succeeded, report.failed), (1, 1));
    provider.force_flush().expect("flush");

    let spans = exporter.get_finished_spans().expect("spans");
    let executions: Vec<_> = spans.iter().filter(|s| s.name == "execution").collect();
    assert_eq!(executions.len(), 2, "{spans:#?}");
    let attribute = |span: &opentelemetry_sdk::trace::SpanData, key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.clone())
    };
    for span in executions {
        assert_eq!(attribute(span, "job"), Some(Value::from("export")));
        assert_eq!(attribute(span, "attempt"), Some(Value::I64(1)));
        let scope = attribute(span, "scope").expect("a scope").to_string();
        match scope.as_str() {
            "tenant/ok" => {
                assert_eq!(attribute(span, "outcome"), Some(Value::from("SUCCESS")));
                assert_eq!(span.status, Status::Ok);
            }
            "tenant/bad" => {
                assert_eq!(attribute(span, "outcome"), Some(Value::from("FAILED")));
                assert_eq!(
                    attribute(span, "error_code"),
                    Some(Value::from("handler_error"))
                );
                assert!(matches!(span.status, Status::Error { .. }), "{span:?}");
            }
            other => panic!("unexpected scope {other}"),
        }
    }
}
