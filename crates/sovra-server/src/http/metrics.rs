//! Request metrics in Prometheus text format: counts by route and status, and a latency
//! histogram per route. Lock-free on the hot path once a route is known.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

const BUCKETS_MS: [f64; 12] = [
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0, 5000.0,
];

const METHODS: [&str; 6] = ["GET", "POST", "PUT", "PATCH", "DELETE", "OTHER"];

fn method_index(m: &axum::http::Method) -> usize {
    match *m {
        axum::http::Method::GET => 0,
        axum::http::Method::POST => 1,
        axum::http::Method::PUT => 2,
        axum::http::Method::PATCH => 3,
        axum::http::Method::DELETE => 4,
        _ => 5,
    }
}

#[derive(Debug, Default)]
struct MethodStats {
    by_class: [AtomicU64; 5],
    buckets: [AtomicU64; BUCKETS_MS.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

#[derive(Debug, Default)]
struct RouteStats {
    methods: [MethodStats; METHODS.len()],
}

/// The registry. Looking a route up allocates nothing once the route has been seen.
#[derive(Debug, Default)]
pub struct Metrics {
    routes: RwLock<HashMap<String, Arc<RouteStats>>>,
    started: std::sync::OnceLock<Instant>,
}

impl Metrics {
    fn stats(&self, route: &str) -> Option<Arc<RouteStats>> {
        if let Some(s) = self.routes.read().ok()?.get(route) {
            return Some(s.clone());
        }
        let mut w = self.routes.write().ok()?;
        Some(w.entry(route.to_owned()).or_default().clone())
    }

    fn observe(&self, method: usize, route: &str, status: u16, elapsed_us: u64) {
        let Some(r) = self.stats(route) else { return };
        let Some(s) = r.methods.get(method) else {
            return;
        };
        let class = usize::from(status / 100).saturating_sub(1).min(4);
        if let Some(c) = s.by_class.get(class) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let ms = elapsed_us as f64 / 1000.0;
        if let Some(i) = BUCKETS_MS.iter().position(|b| ms <= *b)
            && let Some(c) = s.buckets.get(i)
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
        s.count.fetch_add(1, Ordering::Relaxed);
        s.sum_us.fetch_add(elapsed_us, Ordering::Relaxed);
    }

    /// Renders every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let uptime = self
            .started
            .get_or_init(Instant::now)
            .elapsed()
            .as_secs_f64();
        let _ = writeln!(
            out,
            "# HELP sovra_uptime_seconds Seconds since the server started.\n# TYPE sovra_uptime_seconds gauge\nsovra_uptime_seconds {uptime:.3}"
        );
        let _ = writeln!(
            out,
            "# HELP sovra_http_requests_total HTTP requests by route and status class.\n# TYPE sovra_http_requests_total counter"
        );
        let Ok(routes) = self.routes.read() else {
            return out;
        };
        let mut sorted: Vec<(&String, &Arc<RouteStats>)> = routes.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        let each = || {
            sorted.iter().flat_map(|(r, st)| {
                METHODS
                    .iter()
                    .zip(st.methods.iter())
                    .filter(|(_, s)| s.count.load(Ordering::Relaxed) > 0)
                    .map(move |(m, s)| (*m, r.as_str(), s))
            })
        };
        for (m, r, s) in each() {
            for (i, c) in s.by_class.iter().enumerate() {
                let n = c.load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "sovra_http_requests_total{{method=\"{m}\",route=\"{r}\",status=\"{}xx\"}} {n}",
                        i + 1
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP sovra_http_request_duration_seconds Request latency.\n# TYPE sovra_http_request_duration_seconds histogram"
        );
        for (m, r, s) in each() {
            let mut cumulative = 0;
            for (i, b) in BUCKETS_MS.iter().enumerate() {
                cumulative += s
                    .buckets
                    .get(i)
                    .map(|c| c.load(Ordering::Relaxed))
                    .unwrap_or(0);
                let _ = writeln!(
                    out,
                    "sovra_http_request_duration_seconds_bucket{{method=\"{m}\",route=\"{r}\",le=\"{}\"}} {cumulative}",
                    b / 1000.0
                );
            }
            let count = s.count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "sovra_http_request_duration_seconds_bucket{{method=\"{m}\",route=\"{r}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "sovra_http_request_duration_seconds_sum{{method=\"{m}\",route=\"{r}\"}} {}",
                s.sum_us.load(Ordering::Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "sovra_http_request_duration_seconds_count{{method=\"{m}\",route=\"{r}\"}} {count}"
            );
        }
        out
    }
}

/// Middleware recording each request.
pub async fn track(State(m): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    m.started.get_or_init(Instant::now);
    let start = Instant::now();
    let method = method_index(req.method());
    let route = req.extensions().get::<MatchedPath>().cloned();
    let resp = next.run(req).await;
    let us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
    m.observe(
        method,
        route
            .as_ref()
            .map(MatchedPath::as_str)
            .unwrap_or("unmatched"),
        resp.status().as_u16(),
        us,
    );
    resp
}
