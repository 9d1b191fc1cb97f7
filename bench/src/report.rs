//! What was measured, the machine it ran on, and the table.

use std::fmt::Write;
use std::time::Duration;

use hdrhistogram::Histogram;
use sqlx::PgPool;

/// Requests done in one run: their latencies (microseconds) and what failed.
pub struct Measured {
    pub hist: Histogram<u64>,
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// Processor time per request: server process, PostgreSQL, load client.
    pub cpu: crate::cpu::PerRequest,
}

impl Measured {
    pub fn new() -> Self {
        Self {
            hist: histogram(),
            ok: 0,
            errors: 0,
            first_error: None,
            elapsed: Duration::ZERO,
            cpu: Default::default(),
        }
    }

    pub fn record(&mut self, latency: Duration) {
        self.ok += 1;
        let _ = self.hist.record(latency.as_micros().max(1) as u64);
    }

    pub fn error(&mut self, err: String) {
        self.errors += 1;
        self.note(&err);
    }

    pub fn note(&mut self, note: &str) {
        if self.first_error.is_none() {
            self.first_error = Some(note.to_owned());
        }
    }

    pub fn merge(&mut self, other: Measured) {
        self.ok += other.ok;
        self.errors += other.errors;
        let _ = self.hist.add(&other.hist);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    /// Adds a later round of the same run: its requests, its time and its processor time per request.
    pub fn absorb(&mut self, round: Measured) {
        let (before, added) = (self.ok as f64, round.ok as f64);
        let total = (before + added).max(1.0);
        let mean = |a: f64, b: f64| (a * before + b * added) / total;
        self.cpu = crate::cpu::PerRequest {
            server: mean(self.cpu.server, round.cpu.server),
            postgres: mean(self.cpu.postgres, round.cpu.postgres),
            client: mean(self.cpu.client, round.cpu.client),
        };
        self.elapsed += round.elapsed;
        self.merge(round);
    }

    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn millis(&self, quantile: f64) -> f64 {
        self.hist.value_at_quantile(quantile) as f64 / 1000.0
    }
}

pub struct Row {
    pub case: &'static str,
    pub clients: usize,
    pub server: Measured,
    pub direct: Measured,
    /// server/direct of each round on its own: how far the machine's noise moves the ratio.
    pub round_ratios: Vec<f64>,
    /// The same shape through the design's original functions, where it has them.
    pub original: Option<Measured>,
    /// direct/original of each round on its own.
    pub original_ratios: Vec<f64>,
}

impl Row {
    pub fn ratio(&self) -> f64 {
        self.server.per_second() / self.direct.per_second().max(1e-9)
    }

    /// The row as it is printed while the runs go on, with any errors.
    pub fn line(&self) -> String {
        let mut line = format!(
            "  {} x{}: server {:.0}/s ({} ok, {} errors), direct {:.0}/s ({} ok, {} failed)",
            self.case,
            self.clients,
            self.server.per_second(),
            self.server.ok,
            self.server.errors,
            self.direct.per_second(),
            self.direct.ok,
            self.direct.errors,
        );
        if let Some(original) = &self.original {
            let _ = write!(
                line,
                ", original {:.0}/s ({} ok, {} failed)",
                original.per_second(),
                original.ok,
                original.errors
            );
        }
        let paths = [
            ("server", Some(&self.server)),
            ("direct", Some(&self.direct)),
            ("original", self.original.as_ref()),
        ];
        for (path, measured) in paths.into_iter().filter_map(|(p, m)| Some((p, m?))) {
            if let Some(err) = &measured.first_error {
                let _ = write!(
                    line,
                    "\n    {path}: {}",
                    err.chars().take(300).collect::<String>()
                );
            }
        }
        line
    }
}

pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| case        | clients | server req/s | p50 ms | p99 ms | direct tx/s | p50 ms | p99 ms | server/direct | rounds      |"
    );
    let _ = writeln!(
        out,
        "|-------------|--------:|-------------:|-------:|-------:|------------:|-------:|-------:|--------------:|-------------|"
    );
    for row in rows {
        // Runs with no direct path (several programs, a cluster) show the server's columns alone.
        let (direct, ratio, rounds) = if row.direct.ok == 0 {
            (
                format!("| {:>11} | {:>6} | {:>6} ", "-", "-", "-"),
                format!("{:>13}", "-"),
                "-".to_owned(),
            )
        } else {
            (
                format!(
                    "| {:>11.0} | {:>6.2} | {:>6.2} ",
                    row.direct.per_second(),
                    row.direct.millis(0.5),
                    row.direct.millis(0.99)
                ),
                format!("{:>12.0}%", row.ratio() * 100.0),
                spread(&row.round_ratios),
            )
        };
        let _ = writeln!(
            out,
            "| {:<11} | {:>7} | {:>12.0} | {:>6.2} | {:>6.2} {direct}| {ratio} | {:<11} |",
            row.case,
            row.clients,
            row.server.per_second(),
            row.server.millis(0.5),
            row.server.millis(0.99),
            rounds,
        );
    }
    out
}

/// The lowest and highest of the rounds' ratios, as percentages.
fn spread(ratios: &[f64]) -> String {
    let low = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let high = ratios.iter().copied().fold(0.0, f64::max);
    format!("{:.0}-{:.0}%", low * 100.0, high * 100.0)
}

/// Our functions called directly against the design's original ones: throughput, latency and PostgreSQL's
/// processor time per transaction.
pub fn original_table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| case        | clients | ours tx/s | p99 ms | PostgreSQL µs | original tx/s | p99 ms | PostgreSQL µs | ours/original | rounds      |"
    );
    let _ = writeln!(
        out,
        "|-------------|--------:|----------:|-------:|--------------:|--------------:|-------:|--------------:|--------------:|-------------|"
    );
    for row in rows {
        let Some(original) = &row.original else {
            continue;
        };
        let _ = writeln!(
            out,
            "| {:<11} | {:>7} | {:>9.0} | {:>6.2} | {:>13.0} | {:>13.0} | {:>6.2} | {:>13.0} | {:>12.0}% | {:<11} |",
            row.case,
            row.clients,
            row.direct.per_second(),
            row.direct.millis(0.99),
            row.direct.cpu.postgres,
            original.per_second(),
            original.millis(0.99),
            original.cpu.postgres,
            row.direct.per_second() / original.per_second().max(1e-9) * 100.0,
            spread(&row.original_ratios),
        );
    }
    out
}

/// Processor time per request, in microseconds, for both paths.
pub fn cpu_table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| case        | clients | server: server µs | PostgreSQL µs | client µs | direct: PostgreSQL µs | pgbench µs |"
    );
    let _ = writeln!(
        out,
        "|-------------|--------:|------------------:|--------------:|----------:|----------------------:|-----------:|"
    );
    for row in rows {
        let _ = writeln!(
            out,
            "| {:<11} | {:>7} | {:>17.0} | {:>13.0} | {:>9.0} | {:>21.0} | {:>10.0} |",
            row.case,
            row.clients,
            row.server.cpu.server,
            row.server.cpu.postgres,
            row.server.cpu.client,
            row.direct.cpu.postgres,
            row.direct.cpu.client,
        );
    }
    out
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The load average now, from /proc/loadavg.
pub fn load_line() -> String {
    let load: Vec<String> = read("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .map(str::to_owned)
        .collect();
    format!("load average (1, 5, 15 min): {}", load.join(", "))
}

/// The machine and the database, printed first.
pub async fn describe(owner: &PgPool) -> anyhow::Result<String> {
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let memory_kib: u64 = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let (version, shared_buffers, max_connections): (String, String, String) = sqlx::query_as(
        "select current_setting('server_version'), current_setting('shared_buffers'), current_setting('max_connections')",
    )
    .fetch_one(owner)
    .await?;
    Ok(format!(
        "Machine: {cores} cores ({cpu}), {:.1} GiB memory\nPostgreSQL {version} (embedded cluster, shared_buffers {shared_buffers}, max_connections {max_connections}), the server's release build\n{}",
        memory_kib as f64 / 1024.0 / 1024.0,
        load_line()
    ))
}

/// An empty histogram of latencies in microseconds, from 1 µs to 10 minutes.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}
