//! A clean stop for training runs. The first Ctrl-C (SIGINT), SIGTERM or SIGHUP asks the
//! trainer to stop: it finishes the step it is on, saves the last checkpoint and returns
//! [`Error::Interrupted`], so that `train --resume` continues from exactly there instead of
//! from the last periodic checkpoint, minutes back. A second signal ends the process at once
//! (exit status 130), for a run in the middle of a long scoring pass.
//!
//! Signals reach the whole process, so the request is process-wide and only the command line
//! installs the handler; a library user can do the same with [`install_handler`], or ask for
//! a stop from code with [`request`].

use crate::error::{Error, Result};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Asks the running trainer to save and stop after its current step.
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Whether a stop has been asked for.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Turns SIGINT, SIGTERM and SIGHUP into [`request`] (the second one exits at once). Safe to
/// call more than once.
pub fn install_handler() -> Result<()> {
    static INSTALLED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            ctrlc::set_handler(|| {
                if REQUESTED.swap(true, Ordering::SeqCst) {
                    eprintln!("\nsecond stop signal: quitting without a final checkpoint");
                    std::process::exit(130);
                }
                eprintln!(
                    "\nstop requested: saving a checkpoint after this step \
                     (signal again to quit at once)"
                );
            })
            .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|e| Error::Invalid(format!("cannot install the stop-signal handler: {e}")))
}
