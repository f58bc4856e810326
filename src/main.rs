//! The `stylescope` binary: the explorer window by default, subcommands for batch work.

use std::process::ExitCode;

use clap::Parser;
use stylescope::cli::{self, Cli, Command};

fn run() -> anyhow::Result<()> {
    let args = Cli::parse();
    match &args.command {
        Some(Command::Gen(a)) => cli::gen::run(a),
        Some(Command::Info(a)) => cli::info::run(a),
        Some(Command::Convert(a)) => cli::convert::run(a),
        Some(Command::Bench(a)) => cli::bench::run(a),
        None => stylescope::gui::run(stylescope::gui::Launch::from_cli(args.network.clone(), args.seed, args.trunc, args.backend)),
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
