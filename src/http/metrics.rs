//! Request counters and the Prometheus text rendering of `/metrics`: requests by route
//! pattern and status, jobs by state, the size of the store and blob directory, and the
//! entries retention sweeps could not remove.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use crate::store::JobState;

/// Job counts by state, metadata bytes, blob bytes.
pub type Gauges = ([u64; 5], u64, u64);

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    gauges: Mutex<Option<(std::time::Instant, Gauges)>>,
}

impl Metrics {
    /// The gauges computed last, if younger than `fresh`.
    pub fn gauges(&self, fresh: std::time::Duration) -> Option<Gauges> {
        let g = self.gauges.lock().expect("metrics lock");
        g.filter(|(at, _)| at.elapsed() < fresh).map(|(_, g)| g)
    }

    /// Keeps freshly computed gauges for the next scrapes.
    pub fn keep_gauges(&self, g: Gauges) {
        *self.gauges.lock().expect("metrics lock") = Some((std::time::Instant::now(), g));
    }

    pub fn record(&self, route: &'static str, status: u16) {
        *self
            .requests
            .lock()
            .expect("metrics lock")
            .entry((route, status))
            .or_default() += 1;
    }

    /// Renders the exposition text.
    pub fn render(
        &self,
        jobs: [u64; 5],
        store_bytes: u64,
        blob_bytes: u64,
        sweep_failures: u64,
    ) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP image_layered_http_requests_total HTTP requests by route and status.\n",
        );
        out.push_str("# TYPE image_layered_http_requests_total counter\n");
        for ((route, status), n) in self.requests.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "image_layered_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP image_layered_jobs Jobs by state.\n# TYPE image_layered_jobs gauge\n");
        for (state, n) in JobState::ALL.iter().zip(jobs) {
            let _ = writeln!(
                out,
                "image_layered_jobs{{state=\"{}\"}} {n}",
                state.as_str()
            );
        }
        out.push_str("# HELP image_layered_store_bytes Bytes on disk.\n# TYPE image_layered_store_bytes gauge\n");
        let _ = writeln!(
            out,
            "image_layered_store_bytes{{part=\"metadata\"}} {store_bytes}"
        );
        let _ = writeln!(
            out,
            "image_layered_store_bytes{{part=\"blobs\"}} {blob_bytes}"
        );
        out.push_str("# HELP image_layered_sweep_failures_total Due entries a retention sweep could not remove (each is tried again).\n# TYPE image_layered_sweep_failures_total counter\n");
        let _ = writeln!(out, "image_layered_sweep_failures_total {sweep_failures}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_gauges() {
        let m = Metrics::default();
        m.record("/healthz", 200);
        m.record("/healthz", 200);
        m.record("/api/v1/images", 413);
        let text = m.render([1, 0, 2, 0, 0], 10, 20, 3);
        assert!(text.contains("route=\"/healthz\",status=\"200\"} 2"));
        assert!(text.contains("route=\"/api/v1/images\",status=\"413\"} 1"));
        assert!(text.contains("image_layered_jobs{state=\"succeeded\"} 2"));
        assert!(text.contains("part=\"blobs\"} 20"));
        assert!(text.contains("image_layered_sweep_failures_total 3"));
    }
}
