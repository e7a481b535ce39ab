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
            std::process::ExitCode::FAILURE
        }
    }
}
