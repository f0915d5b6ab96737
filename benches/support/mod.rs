//! What the benchmarks share: one line of results per measurement.

/// Prints throughput and latency percentiles (milliseconds) of `n` operations.
pub fn report(name: &str, n: usize, mut latencies: Vec<f64>, total: f64) {
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let p = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
    println!(
        "{name:<40} {n:>6} ops  {:>9.0} ops/s  p50 {:>7.3} ms  p99 {:>7.3} ms",
        n as f64 / total,
        p(0.50),
        p(0.99)
    );
}
