//! How library code reports progress without printing: the CLI draws a bar, tests ignore it.

/// A sink for progress of a long job.
pub trait Progress {
    /// A new phase of `total` units (batches, pixels, images) called `label`.
    fn start(&mut self, label: &str, total: u64);
    /// `position` units done; `message` holds the live metric (loss, bits/dim).
    fn update(&mut self, position: u64, message: &str);
    /// The phase is over; `summary` is a line worth keeping on screen.
    fn finish(&mut self, summary: &str);
}

/// Ignores everything (tests, library callers that do not care).
pub struct Silent;

impl Progress for Silent {
    fn start(&mut self, _: &str, _: u64) {}
    fn update(&mut self, _: u64, _: &str) {}
    fn finish(&mut self, _: &str) {}
}
