//! The `genmodels` command: parse arguments, run, print the error chain once, set the exit code.

use clap::Parser;

fn main() -> std::process::ExitCode {
    genmodels::allocator::tune();
    let args = genmodels::cli::Args::parse();
    match genmodels::cli::run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            // A run stopped by Ctrl-C / SIGTERM exits as an interrupted program does.
            match error.downcast_ref::<genmodels::Error>() {
                Some(genmodels::Error::Interrupted { .. }) => std::process::ExitCode::from(130),
                _ => std::process::ExitCode::FAILURE,
            }
        }
    }
}
