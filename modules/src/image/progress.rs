//! Progress of a long pass over bytes (a copy, a checksum, an OVA read): the progress file
//! the playbook shows every second, the run log at least every 5 s.

use crate::ansible::progress::Reporter;
use std::time::{Duration, Instant};

/// How often the progress file shows the bytes done.
const REPORT_EVERY: Duration = Duration::from_secs(1);
/// How often the run log gets a progress line.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// Progress of one pass over `total_bytes` (bytes, percent, rate, ETA).
pub struct Progress {
    reporter: Reporter,
    label: String,
    total_bytes: u64,
    started: Instant,
    last_logged: Instant,
    last_reported: Instant,
}

impl Progress {
    /// Starts the pass: says so in the log and the progress file.
    pub fn new(reporter: &Reporter, label: impl Into<String>, total_bytes: u64) -> Self {
        let label = label.into();
        let now = Instant::now();
        let line = format!("{label}: starting, {}", human_bytes(total_bytes));
        tracing::info!("{line}");
        reporter.report(&line);
        Self {
            reporter: reporter.clone(),
            label,
            total_bytes,
            started: now,
            last_logged: now,
            last_reported: now,
        }
    }

    /// `done_bytes` are done: shown when the last report is a second old.
    pub fn advance(&mut self, done_bytes: u64) {
        if self.last_reported.elapsed() < REPORT_EVERY {
            return;
        }
        self.last_reported = Instant::now();
        let line = self.line(done_bytes);
        self.reporter.report(&line);
        if self.last_logged.elapsed() >= LOG_EVERY {
            self.last_logged = Instant::now();
            tracing::info!("{line}");
        }
    }

    fn line(&self, done_bytes: u64) -> String {
        let seconds = self.started.elapsed().as_secs_f64().max(1e-6);
        let rate = done_bytes as f64 / seconds;
        let percent = if self.total_bytes == 0 {
            100.0
        } else {
            done_bytes as f64 * 100.0 / self.total_bytes as f64
        };
        let eta_s = if rate > 0.0 {
            (self.total_bytes - done_bytes) as f64 / rate
        } else {
            0.0
        };
        format!(
            "{}: {} of {} ({percent:.1}%), {}/s, ETA {eta_s:.0} s",
            self.label,
            human_bytes(done_bytes),
            human_bytes(self.total_bytes),
            human_bytes(rate as u64)
        )
    }

    /// The pass is complete.
    pub fn done(&self) {
        let line = format!("{} (done)", self.line(self.total_bytes));
        tracing::info!("{line}");
        self.reporter.report(&line);
    }
}

/// `1.5 GiB`-style sizes for log lines and messages.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_ls_h() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 << 29), "1.5 GiB");
    }

    #[test]
    fn a_line_has_bytes_percent_rate_and_eta() {
        let progress = Progress::new(&Reporter::none(), "copy a -> b", 4 << 30);
        let line = progress.line(1 << 30);
        assert!(
            line.starts_with("copy a -> b: 1.0 GiB of 4.0 GiB (25.0%), "),
            "{line}"
        );
        assert!(line.contains("/s, ETA "), "{line}");
    }
}
