//! The process-wide Prometheus recorder (installed once; every app in a process shares it),
//! and the whole `/metrics` body: its facade metrics, then the process and state gauges.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Latency buckets from 0.5 ms to 10 s.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .expect("valid buckets")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (e.g. by an embedding program).
            if metrics::set_global_recorder(recorder).is_ok() {
                // Every series from the start, with its help text.
                super::metric_catalog::register();
            }
            handle
        })
        .clone()
}

/// The `/metrics` body: what the facade recorded, the process metrics, the state gauges.
pub async fn render(state: &super::state_metrics::StateMetrics) -> String {
    let mut body = handle().render();
    body.push_str(&super::process_metrics::render());
    body.push_str(&state.render().await);
    body
}
