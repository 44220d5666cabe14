//! OpenTelemetry export of the scheduler's spans (feature `opentelemetry`).
//!
//! Every execution runs in a `tracing` span named `execution` with the
//! fields `runner`, `job`, `scope`, `plan_time`, `attempt`, `execution_id`,
//! and, once it ended, `outcome` (`SUCCESS`, `FAILED`, `LEASE_LOST`) and
//! `error_code`; `otel.status_code` becomes the exported span's status.
//! [`layer`] turns those spans into OpenTelemetry spans for whatever
//! tracer the application configured, at the versions this crate was built
//! with (`opentelemetry` 0.31, `tracing-opentelemetry` 0.32).
//!
//! One setup, with an OTLP exporter (`opentelemetry-otlp` in the
//! application's own `Cargo.toml`):
//!
//! ```ignore
//! use opentelemetry::trace::TracerProvider as _;
//! use tracing_subscriber::layer::SubscriberExt;
//! use tracing_subscriber::util::SubscriberInitExt;
//!
//! let exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic().build()?;
//! let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
//!     .with_batch_exporter(exporter)
//!     .build();
//! tracing_subscriber::registry()
//!     .with(scheduler_core::telemetry::layer(provider.tracer("my-service")))
//!     .with(tracing_subscriber::fmt::layer())
//!     .init();
//! // ... run the manager; on exit: provider.shutdown()?;
//! ```

pub use opentelemetry;
pub use tracing_opentelemetry;

/// A `tracing` layer that exports spans, the executions' included, through
/// `tracer`.
pub fn layer<S, T>(tracer: T) -> tracing_opentelemetry::OpenTelemetryLayer<S, T>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    T: opentelemetry::trace::Tracer + 'static,
    T::Span: Send + Sync,
{
    tracing_opentelemetry::layer().with_tracer(tracer)
}
