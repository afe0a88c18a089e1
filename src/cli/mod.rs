//! The command line, defined once with clap derive; the man page and
//! shell completions are generated from this same definition ([`assets`]).
//! [`dispatch`] turns a parsed command line into plain options for the
//! layers below; [`clr`] is the clr-service-restart personality;
//! [`pending`] lets a manual run start the finishes that wait for it.

pub mod assets;
pub mod clr;
pub mod dispatch;
pub mod hooks;
pub mod pending;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::path::PathBuf;

const EXIT_HELP: &str = "Exit status: 0 nothing to do or all done; 1 error; 2 bad usage; \
3 restarts needed but not done (status, --dry-run); 4 a restart failed or left stale code running.";

/// Restart the system services that still run code a package upgrade replaced.
#[derive(Debug, Parser)]
#[command(name = "restart-stale", version, after_help = EXIT_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub scan: ScanArgs,

    #[command(flatten)]
    pub act: ActArgs,

    /// Restart nothing now: mark each unit a restart would restart with
    /// systemd's Markers=needs-restart, for a maintenance window
    /// (docs/deferred.md; systemd 248 or newer).
    #[arg(long, conflicts_with_all = ["dry_run", "marked"])]
    pub defer: bool,

    /// Restart only the units marked needs-restart that are still stale,
    /// and clear their marks (what restart-stale-window.service runs).
    #[arg(long, conflicts_with = "dry_run")]
    pub marked: bool,

    /// More output: -v shows every unit and debug messages, -vv traces.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Read /proc, /sys, /etc and /usr under this directory (for tests).
    #[arg(long, hide = true, env = crate::system::sysroot::ROOT_ENV, global = true, default_value = "/")]
    pub root: PathBuf,

    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// Parses the command line, exiting with code 2 on bad usage.
    pub fn parse_checked() -> Self {
        Self::try_parse_checked_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    /// Parses `args` (argv[0] first). Options of the default action don't
    /// combine with a subcommand; clap's `args_conflicts_with_subcommands`
    /// would also reject global flags such as `-v` placed before the
    /// subcommand, so every non-global top-level option the user gave is
    /// checked here, whatever it is called.
    pub(crate) fn try_parse_checked_from<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let mut cmd = Self::command();
        let matches = cmd.try_get_matches_from_mut(args)?;
        if matches.subcommand().is_some() {
            let given = cmd.get_arguments().find(|a| {
                !a.is_global_set()
                    && matches.value_source(a.get_id().as_str()) == Some(clap::parser::ValueSource::CommandLine)
            });
            if let Some(arg) = given {
                let flag = arg
                    .get_long()
                    .map(|l| format!("--{l}"))
                    .unwrap_or_else(|| arg.get_id().to_string());
                return Err(cmd.error(
                    clap::error::ErrorKind::ArgumentConflict,
                    format!("{flag} cannot be used with a subcommand (status takes its own options after it)"),
                ));
            }
        }
        Self::from_arg_matches(&matches)
    }
}

/// What a report shows: every unit or the allowed ones, text or JSON.
/// Shared by the default action, `status` and `replay`.
#[derive(Debug, Args, Clone, Default)]
pub struct ReportArgs {
    /// Consider every running system unit, not only allowed ones.
    #[arg(short, long)]
    pub all: bool,

    /// Print the report as JSON on one line (schema in docs/json.md); a
    /// restart run prints it after the restarts, with their results.
    #[arg(long)]
    pub json: bool,
}

/// Options of the default action and `status`.
#[derive(Debug, Args, Clone, Default)]
pub struct ScanArgs {
    #[command(flatten)]
    pub report: ReportArgs,

    /// Only files in this list count (newline- or NUL-separated absolute
    /// paths; `-` reads stdin).
    #[arg(long, value_name = "FILE")]
    pub changed_files: Option<PathBuf>,

    /// Also check non-executable file mappings (data files such as locale
    /// archives); by default only executable mappings count.
    #[arg(long)]
    pub data_files: bool,

    /// How to read mappings: `auto` uses the PROCMAP_QUERY ioctl where the
    /// kernel has it; `text` always parses /proc/PID/maps (benchmarks).
    #[arg(long, hide = true, value_enum, default_value_t = ScanMethod::Auto)]
    pub scan_method: ScanMethod,

    /// Write the Prometheus textfile here (atomically) instead of
    /// /var/lib/prometheus/node-exporter/restart-stale.prom, which is
    /// written only when that directory exists. A directory another user
    /// owns or others can write is refused with a warning
    /// (docs/prometheus.md).
    #[arg(long, value_name = "PATH")]
    pub textfile: Option<PathBuf>,
}

/// Whether and how to restart: the default action and `replay`.
#[derive(Debug, Args, Clone)]
pub struct ActArgs {
    /// Don't restart anything; show what would happen.
    #[arg(short = 'n', long)]
    pub dry_run: bool,

    /// Restart now only the units whose stale code an upgrade that fixed
    /// a CVE or came from a security suite replaced; mark the others
    /// needs-restart for the maintenance window (docs/cves.md).
    #[arg(long)]
    pub security_only: bool,

    #[command(flatten)]
    pub restart: RestartArgs,
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
    Allow(Units),
    /// Mark units as never restartable (a link to /dev/null).
    Disallow(Units),
    /// Remove the admin's link and fall back to the distribution default.
    Default(Units),
    /// Report stale processes and what would be restarted; change nothing.
    Status {
        #[command(flatten)]
        scan: ScanArgs,

        /// Print needrestart's batch lines (NEEDRESTART-VER, -KCUR, -KEXP,
        /// -KSTA, -SVC, -SESS) for monitoring plugins (docs/batch.md).
        #[arg(long, conflicts_with = "json")]
        batch: bool,
    },
    /// Replay a past package transaction: restart what it left stale
    /// (only units still running the old files count).
    Replay(ReplayArgs),
    /// Write the man page and shell completions into DIR (for packaging).
    #[command(hide = true)]
    GenerateAssets { dir: PathBuf },
    /// Hooks apt runs (docs/apt.md); never fail the package manager.
    #[command(hide = true)]
    AptHook {
        #[command(subcommand)]
        hook: hooks::AptHook,
    },
    /// What the dnf 4 plugin runs (docs/dnf.md); never fails dnf.
    #[command(hide = true)]
    DnfHook {
        #[command(subcommand)]
        step: hooks::DnfStep,
    },
    /// What dnf 5's actions file runs (docs/dnf.md); never fails dnf.
    #[command(hide = true)]
    Dnf5Hook {
        #[command(subcommand)]
        step: hooks::Dnf5Step,
    },
    /// What the alpm hook runs, with pacman's targets on stdin
    /// (docs/pacman.md); never fails pacman.
    #[command(hide = true)]
    PacmanHook {
        #[command(subcommand)]
        step: Option<hooks::PacmanStep>,
    },
    /// What the libzypp commit plugin runs, speaking libzypp's plugin
    /// frames on stdin and stdout (docs/zypper.md); never fails zypper.
    #[command(hide = true)]
    ZypperHook {
        #[command(subcommand)]
        step: Option<hooks::ZypperStep>,
    },
}

/// The units a policy command changes (one or more).
#[derive(Debug, Args)]
pub struct Units {
    #[arg(required = true, value_name = "UNIT")]
    pub units: Vec<String>,
}

/// `replay`: exactly one source of history, and how to act on it.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).multiple(false)))]
pub struct ReplayArgs {
    /// apt's Nth newest transaction in /var/log/apt/history.log and its
    /// rotations (`last`, the default, is 1). With --since and no N:
    /// every transaction since then.
    #[arg(long, group = "source", value_name = "N|last", num_args = 0..=1, value_parser = parse_nth)]
    pub apt_history: Option<Option<usize>>,

    /// The install, upgrade and remove lines of /var/log/dpkg.log and its
    /// rotations since --since.
    #[arg(long, group = "source", requires = "since")]
    pub dpkg_log: bool,

    /// A dnf transaction (`last`, `last-N` or an ID, as `dnf history`
    /// shows them), from dnf5's or dnf4's history database.
    #[arg(long, group = "source", value_name = "ID|last")]
    pub dnf_transaction: Option<crate::managers::dnf::history::Selector>,

    /// A swupd update from VERSION to the installed version (files whose
    /// manifest entry changed after VERSION).
    #[arg(long, group = "source", value_name = "VERSION")]
    pub swupd_from: Option<u32>,

    /// A plain list of changed paths, one absolute path a line (`-`
    /// reads stdin).
    #[arg(long, group = "source", value_name = "FILE")]
    pub files: Option<PathBuf>,

    /// Only transactions that started at or after TIME, local time:
    /// `YYYY-MM-DD[ HH:MM[:SS]]`, `today` or `yesterday`.
    #[arg(long, value_name = "TIME", value_parser = crate::replay::stamp::Stamp::parse_since,
          conflicts_with_all = ["dnf_transaction", "swupd_from", "files"])]
    pub since: Option<crate::replay::stamp::Stamp>,

    #[command(flatten)]
    pub report: ReportArgs,

    #[command(flatten)]
    pub act: ActArgs,
}

/// `N` (1 = the newest) or `last`.
fn parse_nth(s: &str) -> Result<usize, String> {
    match s {
        "last" => Ok(1),
        _ => s
            .parse()
            .ok()
            .filter(|&n| n > 0 && s.bytes().all(|c| c.is_ascii_digit()))
            .ok_or_else(|| format!("{s:?} is not a transaction count: use last or N (1 = the newest)")),
    }
}

/// How restarts are carried out (the same options as the default action).
#[derive(Debug, Args, Clone)]
pub struct RestartArgs {
    /// Give all restart jobs together this many seconds to finish.
    #[arg(long, value_name = "SECS", default_value_t = crate::restart::DEFAULT_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,

    /// Don't re-execute systemd when PID 1 itself runs stale code (a deny
    /// link for init.scope in /etc/restart-stale does the same).
    #[arg(long)]
    pub no_reexec: bool,

    /// Between restart waves, each restarted unit must stay active this
    /// many seconds before the next wave starts; a failure holds the rest
    /// (docs/restarts.md). 0 turns the health gate off. Default: `settle`
    /// in /etc/restart-stale.conf, else 5.
    #[arg(long, value_name = "SECS")]
    pub settle: Option<u64>,

    /// Restart at most N units (restart jobs), watch them for the settle
    /// time, and stop; the rest stay planned and are reported as held
    /// (with --defer, also marked for the maintenance window).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub canary: Option<u64>,
}

impl RestartArgs {
    /// The settings; the settle time falls back to the one `root`'s
    /// /etc/restart-stale.conf sets.
    pub(crate) fn settings(&self, root: &crate::system::sysroot::SysRoot) -> crate::restart::Settings {
        let default = crate::restart::Settings::default();
        let settle = match self.settle {
            Some(s) => std::time::Duration::from_secs(s),
            None => crate::transaction::host::conf_settle(root).unwrap_or(default.settle),
        };
        crate::restart::Settings {
            timeout: std::time::Duration::from_secs(self.timeout),
            reexec: !self.no_reexec,
            settle,
            canary: self.canary.map(|n| n as usize),
            // An admin's command line, never a hook.
            hook: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_checked_from(["restart-stale"].iter().chain(args))
    }

    #[test]
    fn options_conflict_with_policy_commands() {
        assert!(parse(&["-n", "allow", "x.service"]).is_err());
        let c = parse(&["-v", "status", "--json"]).unwrap();
        assert!(c.verbose == 1);
        assert!(parse(&["status", "--batch", "--json"]).is_err());
        let c = parse(&["status", "--batch", "--textfile", "/tmp/x.prom"]).unwrap();
        assert!(matches!(c.command, Some(Command::Status { batch: true, .. })));
        assert!(parse(&["--textfile", "/tmp/x.prom", "-n"]).is_ok());
        assert!(parse(&["--defer", "status"]).is_err());
        assert!(parse(&["--marked", "-n"]).is_err());
        assert!(parse(&["--marked", "--defer"]).is_err());
        assert!(parse(&["--marked", "--json"]).unwrap().marked);
        assert!(parse(&["allow"]).is_err());
        let c = parse(&["-n", "-a", "--changed-files", "-"]).unwrap();
        assert!(c.act.dry_run && c.scan.report.all);
        assert_eq!(c.act.restart.timeout, crate::restart::DEFAULT_TIMEOUT_SECS);
        let c = parse(&["--timeout", "30", "--no-reexec"]).unwrap();
        assert!(c.act.restart.timeout == 30 && c.act.restart.no_reexec);
        assert!(parse(&["--timeout", "0"]).is_err());
        // Every top-level option is refused before a subcommand, including
        // one given at its default value.
        for flag in [
            &["--no-reexec"][..],
            &["--timeout", "300"],
            &["--scan-method", "auto"],
            &["--data-files"],
            &["--json"],
        ] {
            let args: Vec<&str> = flag.iter().copied().chain(["status"]).collect();
            let e = parse(&args).unwrap_err();
            assert!(e.to_string().contains(flag[0]), "{flag:?}: {e}");
        }
    }

    fn replay(args: &[&str]) -> Result<ReplayArgs, clap::Error> {
        let argv = ["restart-stale", "replay"].iter().chain(args);
        match Cli::try_parse_from(argv)?.command {
            Some(Command::Replay(r)) => Ok(r),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn replay_takes_exactly_one_source() {
        assert_eq!(replay(&["--apt-history"]).unwrap().apt_history, Some(None));
        assert_eq!(
            replay(&["--apt-history", "last", "-n"]).unwrap().apt_history,
            Some(Some(1))
        );
        assert_eq!(replay(&["--apt-history", "3"]).unwrap().apt_history, Some(Some(3)));
        let r = replay(&["--apt-history", "--since", "2026-11-22"]).unwrap();
        assert!(r.apt_history == Some(None) && r.since.is_some());
        assert!(replay(&["--dpkg-log", "--since", "yesterday", "--json"]).is_ok());
        assert!(replay(&["--dnf-transaction", "last-1", "--timeout", "30"]).is_ok());
        assert!(replay(&["--swupd-from", "43000"]).is_ok());
        assert!(replay(&["--files", "-"]).is_ok());
        for bad in [
            &[][..],
            &["--apt-history", "0"],
            &["--apt-history", "-1"],
            &["--apt-history", "--dpkg-log", "--since", "today"],
            &["--dpkg-log"],
            &["--since", "today"],
            &["--files", "x", "--since", "today"],
            &["--dnf-transaction", "first"],
            &["--apt-history", "--since", "soon"],
            &["--swupd-from", "x"],
        ] {
            assert!(replay(bad).is_err(), "{bad:?}");
        }
        assert!(parse(&["-n", "replay", "--apt-history"]).is_err());
        let c = parse(&["-v", "replay", "--apt-history", "-n"]).unwrap();
        assert!(c.verbose == 1);
    }
}
