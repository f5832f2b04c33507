//! Load from 64 concurrent connections on loopback for a fixed time, and its latency percentiles: shared by the
//! HTTP and gateway benchmarks.

use std::time::{Duration, Instant};

/// Latencies of one load run.
pub struct Run {
    pub latencies: Vec<Duration>,
    pub elapsed: f64,
}

impl Run {
    /// Requests per second, median and 99th-percentile latency.
    #[allow(dead_code)]
    pub fn figures(&mut self) -> (f64, Duration, Duration) {
        self.latencies.sort();
        let n = self.latencies.len();
        let pct = |p: f64| self.latencies[((n as f64 * p) as usize).min(n - 1)];
        (n as f64 / self.elapsed, pct(0.50), pct(0.99))
    }

    #[allow(dead_code)]
    pub fn print(mut self, what: &str, note: &str) {
        let (rate, p50, p99) = self.figures();
        println!(
            "{what}: {} requests in {:.2}s = {rate:.0} req/s; p50 {p50:.2?}, p99 {p99:.2?} ({note})",
            self.latencies.len(),
            self.elapsed,
        );
    }
}

/// 64 concurrent connections calling `url` (POST with `body`, else GET) for `run_for`.
pub async fn drive(
    client: &reqwest::Client,
    url: String,
    key: &str,
    body: Option<serde_json::Value>,
    run_for: Duration,
) -> Run {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (client, url, key, body) = (client.clone(), url.clone(), key.to_string(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while started.elapsed() < run_for {
                let sent = Instant::now();
                let request = match &body {
                    Some(body) => client.post(&url).json(body),
                    None => client.get(&url),
                };
                let response = request.bearer_auth(&key).send().await.expect("request");
                assert!(response.status().is_success());
                let _ = response.bytes().await;
                latencies.push(sent.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("task"));
    }
    Run {
        latencies,
        elapsed: started.elapsed().as_secs_f64(),
    }
}
