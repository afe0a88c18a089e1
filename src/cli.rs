//! The command line, defined once with clap derive; the man page and
//! shell completions are generated from this same definition.

use clap::{Args, CommandFactory, Parser, Subcommand};
use std::path::PathBuf;

/// Exit codes, documented in the man page and README.
pub mod exit {
    /// Nothing to do, or everything planned was done.
    pub const OK: i32 = 0;
    /// A runtime error.
    pub const ERROR: i32 = 1;
    /// Bad usage (clap's own code).
    pub const USAGE: i32 = 2;
    /// Restarts are needed but were not done (status, dry run).
    pub const PENDING: i32 = 3;
    /// At least one restart failed or left stale processes behind.
    pub const RESTART_FAILED: i32 = 4;
}

const EXIT_HELP: &str = "Exit status: 0 nothing to do or all done; 1 error; 2 bad usage; \
3 restarts needed but not done (status, --dry-run); 4 a restart failed or left stale code running.";

/// Restart the system services that still run code a package upgrade replaced.
#[derive(Debug, Parser)]
#[command(name = "restart-stale", version, after_help = EXIT_HELP, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(flatten)]
    pub scan: ScanArgs,

    /// Don't restart anything; show what would happen.
    #[arg(short = 'n', long)]
    pub dry_run: bool,

    /// Give all restart jobs together this many seconds to finish.
    #[arg(long, value_name = "SECS", default_value_t = crate::restart::DEFAULT_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,

    /// Don't re-execute systemd when PID 1 itself runs stale code (a deny
    /// link for init.scope in /etc/restart-stale does the same).
    #[arg(long)]
    pub no_reexec: bool,

    /// More output: -v shows every unit and debug messages, -vv traces.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Read /proc, /sys, /etc and /usr under this directory (for tests).
    #[arg(long, hide = true, env = crate::sysroot::ROOT_ENV, global = true, default_value = "/")]
    pub root: PathBuf,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options shared by the default action and `status`.
#[derive(Debug, Args, Clone, Default)]
pub struct ScanArgs {
    /// Consider every running system unit, not only allowed ones.
    #[arg(short, long)]
    pub all: bool,

    /// Only files in this list count (newline- or NUL-separated absolute
    /// paths; `-` reads stdin).
    #[arg(long, value_name = "FILE")]
    pub changed_files: Option<PathBuf>,

    /// Print the report as JSON (schema in docs/json.md).
    #[arg(long)]
    pub json: bool,

    /// Also check non-executable file mappings (data files such as locale
    /// archives); by default only executable mappings count.
    #[arg(long)]
    pub data_files: bool,

    /// How to read mappings: `auto` uses the PROCMAP_QUERY ioctl where the
    /// kernel has it; `text` always parses /proc/PID/maps (benchmarks).
    #[arg(long, hide = true, value_enum, default_value_t = ScanMethod::Auto)]
    pub scan_method: ScanMethod,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ScanMethod {
    #[default]
    Auto,
    Text,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Mark units as restartable (a link in /etc/restart-stale).
    Allow {
        #[arg(required = true, value_name = "UNIT")]
        units: Vec<String>,
    },
    /// Mark units as never restartable (a link to /dev/null).
    Disallow {
        #[arg(required = true, value_name = "UNIT")]
        units: Vec<String>,
    },
    /// Remove the admin's link and fall back to the distribution default.
    Default {
        #[arg(required = true, value_name = "UNIT")]
        units: Vec<String>,
    },
    /// Report stale processes and what would be restarted; change nothing.
    Status {
        #[command(flatten)]
        scan: ScanArgs,
    },
    /// Write the man page and shell completions into DIR (for packaging).
    #[command(hide = true)]
    GenerateAssets { dir: PathBuf },
    /// Hooks apt runs (docs/apt.md); never fail the package manager.
    #[command(hide = true)]
    AptHook {
        #[command(subcommand)]
        hook: crate::apt::Hook,
    },
}

/// Writes `restart-stale.1` and bash, zsh and fish completions into `dir`.
pub fn generate_assets(dir: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    use clap_complete::Shell;
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let cmd = Cli::command();
    let mut man = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut man)?;
    man.extend_from_slice(MAN_EXTRA.as_bytes());
    let page = dir.join("restart-stale.1");
    std::fs::write(&page, man).with_context(|| format!("failed to write {}", page.display()))?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let path = clap_complete::generate_to(shell, &mut cmd.clone(), "restart-stale", dir)
            .with_context(|| format!("failed to write {shell} completions into {}", dir.display()))?;
        log::debug!("wrote {}", path.display());
    }
    Ok(())
}

const MAN_EXTRA: &str = r#".SH "EXIT STATUS"
.TP
\fB0\fR
Nothing to do, or every planned restart was done.
.TP
\fB1\fR
A runtime error (unreadable input, D\-Bus failure).
.TP
\fB2\fR
Bad usage.
.TP
\fB3\fR
Restarts are needed but were not done (\fBstatus\fR, \fB\-n\fR).
.TP
\fB4\fR
A restart failed, timed out, or left stale code running.
.SH FILES
.TP
\fI/run/restart\-stale/lock\fR
Held while restarting, so only one instance restarts at a time. A second
instance waits 10 seconds, then gives up with an error naming the holder.
.TP
\fI/etc/restart\-stale/UNIT\fR
Admin policy: a symlink allows UNIT; a link to /dev/null denies it.
.TP
\fI/usr/share/restart\-stale/UNIT\fR
Distribution policy: a symlink allows UNIT.
.TP
\fI/etc/clr\-service\-restart\fR, \fI/usr/share/clr\-service\-restart\fR
clr\-service\-restart's directories, honoured with lower precedence.
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn options_conflict_with_policy_commands() {
        assert!(Cli::try_parse_from(["restart-stale", "-n", "allow", "x.service"]).is_err());
        assert!(Cli::try_parse_from(["restart-stale", "allow"]).is_err());
        let c = Cli::try_parse_from(["restart-stale", "-n", "-a", "--changed-files", "-"]).unwrap();
        assert!(c.dry_run && c.scan.all);
        assert_eq!(c.timeout, crate::restart::DEFAULT_TIMEOUT_SECS);
        let c = Cli::try_parse_from(["restart-stale", "--timeout", "30", "--no-reexec"]).unwrap();
        assert!(c.timeout == 30 && c.no_reexec);
        assert!(Cli::try_parse_from(["restart-stale", "--timeout", "0"]).is_err());
        assert!(Cli::try_parse_from(["restart-stale", "--no-reexec", "status"]).is_err());
    }
}
