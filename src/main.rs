//! Entry point: parse, run, map errors to exit codes.

use restart_stale::cli::{exit, Cli};

fn main() {
    // Installed as /usr/bin/clr-service-restart too (docs/swupd.md).
    if std::env::args_os()
        .next()
        .is_some_and(|a| restart_stale::clr::invoked_as(&a))
    {
        std::process::exit(restart_stale::clr::main(std::env::args_os()));
    }
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
