//! `streamctl`: a command-line client for StreamHouse that speaks only to an agent's HTTP API, so
//! it needs nothing but an address (`--api` or STREAMHOUSE_ADDR) and works against any agent.

mod cli;
mod client;
mod commands;
mod format;
mod render;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("streamctl: {e}");
            ExitCode::FAILURE
        }
    }
}
