//! What the benchmarks share: one line of results per measurement.

/// Prints throughput and latency percentiles (given in milliseconds) of `n` operations that took
/// `total` seconds of wall-clock time from the first start to the last end.
pub fn report(name: &str, n: usize, mut latencies: Vec<f64>, total: f64) {
    assert_eq!(latencies.len(), n, "{name}: one latency per operation");
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let p = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
    // Microseconds for what takes less than a tenth of a millisecond.
    let (scale, unit) = if p(0.99) < 0.1 {
        (1000.0, "µs")
    } else {
        (1.0, "ms")
    };
    println!(
        "{name:<58} {n:>6} ops {:>8.0} ops/s  p50 {:>7.3}  p90 {:>7.3}  p99 {:>7.3} {unit}",
        n as f64 / total,
        p(0.50) * scale,
        p(0.90) * scale,
        p(0.99) * scale
    );
}

/// `report` for a serial loop that times only part of each round (setup left out): the
/// throughput is that of the timed part, one operation after another.
#[allow(dead_code)]
pub fn report_timed(name: &str, latencies: Vec<f64>) {
    let total = latencies.iter().sum::<f64>() / 1000.0;
    report(name, latencies.len(), latencies, total);
}
