use std::process::ExitCode;

use clap::Parser;
use contribot_ops::{cli::Cli, commands};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match commands::execute(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ops: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
