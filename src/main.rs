//! Entry point: parse, run, map errors to exit codes.

use clap::Parser;
use restart_stale::cli::{exit, Cli};

fn main() {
    let cli = Cli::parse();
    restart_stale::logging::init(cli.verbose);
    let code = match restart_stale::app::run(cli) {
        Ok(code) => code,
        Err(e) => {
            log::error!("{e:#}");
            exit::ERROR
        }
    };
    std::process::exit(code);
}
