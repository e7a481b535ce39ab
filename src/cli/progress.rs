//! The terminal side of [`Progress`]: an indicatif bar on a terminal; on a pipe or log file,
//! a plain line every 30 seconds and at the end of each phase.

use crate::progress::Progress;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Draws progress for people (bar) or logs (lines).
pub struct TerminalProgress {
    bar: Option<ProgressBar>,
    label: String,
    total: u64,
    started: Instant,
    last_line: Instant,
    /// The first position reported in this phase and when: a resumed run starts part-way, and
    /// rate and ETA count only the units done since.
    base: Option<(u64, Instant)>,
    interactive: bool,
}

impl TerminalProgress {
    pub fn new() -> Self {
        Self {
            bar: None,
            label: String::new(),
            total: 0,
            started: Instant::now(),
            last_line: Instant::now(),
            base: None,
            interactive: std::io::stderr().is_terminal(),
        }
    }
}

impl Default for TerminalProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress for TerminalProgress {
    fn start(&mut self, label: &str, total: u64) {
        self.label = label.to_string();
        self.total = total;
        self.started = Instant::now();
        self.last_line = Instant::now();
        self.base = None;
        if self.interactive {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>12} [{bar:30}] {pos}/{len} {per_sec} ETA {eta} | {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(label.to_string());
            bar.enable_steady_tick(Duration::from_millis(250));
            self.bar = Some(bar);
        }
    }

    fn update(&mut self, position: u64, message: &str) {
        let first = self.base.is_none();
        let (base_position, base_time) = *self.base.get_or_insert((position, Instant::now()));
        if let Some(bar) = &self.bar {
            bar.set_position(position);
            if first {
                bar.reset_eta(); // the jump to a resumed position is not progress
            }
            bar.set_message(message.to_string());
        } else if self.last_line.elapsed() >= Duration::from_secs(30) {
            self.last_line = Instant::now();
            let elapsed = base_time.elapsed().as_secs_f64();
            let rate = position.saturating_sub(base_position) as f64 / elapsed.max(1e-9);
            let eta = (self.total.saturating_sub(position)) as f64 / rate.max(1e-9);
            eprintln!(
                "{} {position}/{} ({rate:.1}/s, ETA {eta:.0}s) {message}",
                self.label, self.total
            );
        }
    }

    fn finish(&mut self, summary: &str) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        eprintln!(
            "{}: {summary} ({:.1}s)",
            self.label,
            self.started.elapsed().as_secs_f64()
        );
    }
}
