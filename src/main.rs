//! Entry point: parse, run, map errors to exit codes.

use restart_stale::cli::{exit, Cli};

fn main() {
    let cli = Cli::parse_checked();
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
