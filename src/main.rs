//! Entry point: the argv[0] personality, parse, logging, and the one place
//! that turns an [`Outcome`] into an exit status.

use restart_stale::cli::{self, Cli};
use restart_stale::exit::Outcome;

/// Exit statuses, as the man page and the README document them (clap
/// exits with 2 on bad usage itself).
fn code(outcome: Outcome) -> i32 {
    match outcome {
        Outcome::Done => 0,
        Outcome::Error => 1,
        Outcome::Pending => 3,
        Outcome::RestartFailed => 4,
        Outcome::Held => 5,
    }
}

fn main() {
    // Installed as /usr/bin/clr-service-restart too (docs/swupd.md).
    if std::env::args_os().next().is_some_and(|a| cli::clr::invoked_as(&a)) {
        std::process::exit(code(cli::clr::main(std::env::args_os())));
    }
    let parsed = Cli::parse_checked();
    restart_stale::logging::init(parsed.verbose);
    let outcome = cli::dispatch::run(parsed).unwrap_or_else(|e| {
        log::error!("{e:#}");
        Outcome::Error
    });
    std::process::exit(code(outcome));
}
