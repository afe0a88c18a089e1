//! The dnf integration (docs/dnf.md). Both dnf generations end in the
//! shared record and `restart-stale-dnf.service` ([`crate::transaction`]):
//!
//! - dnf 4 loads our Python plugin (`hooks/dnf/…/dnf-plugins/restart_stale.py`),
//!   which hands the whole transaction over in one file:
//!   `dnf-hook transaction FILE` ([`dnf4`]).
//! - dnf 5's actions plugin runs commands from
//!   `/etc/dnf/libdnf5-plugins/actions.d/restart-stale.actions`: a first
//!   `dnf5-hook begin` that opens the gate for the others, once per package
//!   before the transaction, then once before and once after it
//!   (`dnf5-hook …`, [`dnf5`]). It gives no file lists, so we ask rpm.
//!
//! `dnf-hook finish` is the unit's command.

pub mod dnf4;
pub mod dnf5;
pub mod history;

use crate::exit::Outcome;
use crate::system::sysroot::SysRoot;
use crate::systemd::Bus;
use crate::transaction;
use anyhow::{Context, Result};
use std::io::Write;

/// The actions plugin's variable (`${tmp.…}`) that `dnf5-hook begin`
/// sets; the later lines of the actions file pass it where they would pass
/// `${pid}`. A line naming an unset variable is not run by libdnf5, so a
/// binary that is missing, fails or hangs in `begin` (killed by the file's
/// `timeout`) costs dnf5 that one bounded call, not one per package.
pub const DNF5_GATE: &str = "restart_stale_pid";

/// Checks that `args` are exactly the arguments `names`.
fn exactly<'a, const N: usize>(args: &'a [String], names: [&str; N]) -> Result<[&'a str; N]> {
    if args.len() != N {
        anyhow::bail!(
            "expected {} argument(s) ({}), got {}: {args:?}",
            N,
            names.join(" "),
            args.len()
        );
    }
    Ok(std::array::from_fn(|i| args[i].as_str()))
}

fn pid_arg(s: &str) -> Result<u32> {
    match s.parse::<u32>() {
        Ok(p) if p > 0 && s.bytes().all(|c| c.is_ascii_digit()) => Ok(p),
        _ => anyhow::bail!("argument PID: {s:?} is not a process id"),
    }
}

/// `dnf-hook transaction FILE`: what the dnf 4 plugin runs; always
/// [`Outcome::Done`].
pub fn transaction(bus: &Bus, root: &SysRoot, file: &std::path::Path, verbose: u8) -> Outcome {
    transaction::guard("dnf-hook transaction", || dnf4::run(bus, root, file, verbose))
}

/// `dnf-hook finish`, the command of `restart-stale-dnf.service`.
pub fn finish(bus: &Bus, root: &SysRoot, verbose: u8) -> Outcome {
    transaction::finish::unit_step("dnf-hook finish", || transaction::finish::run(root, &DNF, bus, verbose))
}

/// `dnf5-hook begin PID`, first in each transaction: tells the actions
/// plugin, on stdout, `tmp.restart_stale_pid=PID` ([`DNF5_GATE`]).
/// It also makes the directory where the actions file's per-package line
/// (`touch`, not us: [`dnf5`]) stages the packages.
pub(crate) fn dnf5_begin(root: &SysRoot, args: &[String]) -> Outcome {
    transaction::guard_within("dnf5-hook begin", dnf5::BEGIN_LIMIT, || {
        let [pid] = exactly(args, ["PID"])?;
        let pid = pid_arg(pid)?;
        dnf5::begin(root, pid)?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "tmp.{DNF5_GATE}={pid}")
            .and_then(|()| out.flush())
            .context("writing to the actions plugin (stdout)")
    })
}

/// `dnf5-hook package PID ACTION NEVRA`, once per package before the
/// transaction. The arguments come raw, so that even nonsense gets a
/// message naming the argument and exit status 0, never a usage error.
pub(crate) fn dnf5_package(root: &SysRoot, args: &[String]) -> Outcome {
    transaction::guard("dnf5-hook package", || {
        let [pid, action, nevra] = exactly(args, ["PID", "ACTION", "NEVRA"])?;
        dnf5::package(root, pid_arg(pid)?, action, nevra)
    })
}

/// `dnf5-hook pre-transaction PID`: copy the file lists of outgoing
/// packages before rpm runs.
pub(crate) fn dnf5_pre_transaction(root: &SysRoot, args: &[String]) -> Outcome {
    transaction::guard_within("dnf5-hook pre-transaction", dnf5::STEP_LIMIT, || {
        let [pid] = exactly(args, ["PID"])?;
        dnf5::pre_transaction(root, pid_arg(pid)?, &*dnf5::lister(root))
    })
}

/// `dnf5-hook post-transaction PID`: list incoming packages, record, start
/// the unit.
pub(crate) fn dnf5_post_transaction(bus: &Bus, root: &SysRoot, args: &[String], verbose: u8) -> Outcome {
    transaction::guard_within("dnf5-hook post-transaction", dnf5::STEP_LIMIT, || {
        let [pid] = exactly(args, ["PID"])?;
        dnf5::post_transaction(bus, root, pid_arg(pid)?, &*dnf5::lister(root), verbose)
    })
}

pub use crate::managers::rpm::{query_form, split_nevra, RecordedOnRpm, RPM_ENV, RPM_LIMIT_ENV};

/// dnf's side of the transaction layer: its id names the spool, unit
/// and subcommand; the record's facts are the changed set, and its
/// packages are annotated from the rpmdb's changelogs.
pub const DNF: RecordedOnRpm = RecordedOnRpm {
    id: "dnf",
    upgrades: Some(upgrades),
};

/// The packages of the transaction for the fixes annotation
/// (docs/cves.md), with the old and new EVR of each `name.arch`, read
/// from the rpmdb's changelogs.
fn upgrades(rec: &crate::transaction::record::Record) -> Option<crate::core::fixes::Upgrades> {
    use crate::core::fixes::{Family, Upgrades};
    use crate::transaction::record::Direction;
    use std::collections::BTreeMap;
    let dnf = |b: &&crate::transaction::record::Block| matches!(b.source(), Some("dnf4" | "dnf5"));
    let mut changes: BTreeMap<(String, String), (Option<String>, Option<String>)> = BTreeMap::new();
    for (dir, nevra) in rec.blocks.iter().filter(dnf).flat_map(|b| b.packages()) {
        let Some((name, evr, arch)) = split_nevra(nevra) else {
            continue;
        };
        let e = changes.entry((name.to_string(), arch.to_string())).or_default();
        match dir {
            Direction::Out => {
                e.0.get_or_insert(evr);
            }
            Direction::In => e.1 = Some(evr),
        }
    }
    if changes.is_empty() {
        return None;
    }
    let mut ups = Upgrades {
        family: Family::Rpm,
        packages: Vec::new(),
    };
    for ((name, arch), (from, to)) in &changes {
        ups.add(name, Some(arch), from.as_deref(), to.as_deref());
    }
    Some(ups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dnfs_record_is_summed_up_and_annotated_by_rpms_names() {
        use crate::transaction::record::Record;
        let text = "begin 1 2\nsource dnf5\ncommand dnf5 upgrade\npackage in libdemo-0:2.0-1.x86_64\n\
                    package out libdemo-0:1.0-1.x86_64\nend\n";
        let rec = Record::parse(text, "taken.1");
        assert!(rec.problems.is_empty(), "{:?}", rec.problems);
        assert_eq!(
            crate::transaction::recorded::summary(&DNF, &rec),
            "dnf5 transaction (dnf5 upgrade): libdemo.x86_64 1.0-1 → 2.0-1"
        );
        let ups = crate::transaction::Manager::upgrades(&DNF, &rec).unwrap();
        assert_eq!(ups.family, crate::core::fixes::Family::Rpm);
        assert_eq!(ups.packages[0].from.as_deref(), Some("1.0-1"));
        assert_eq!(ups.packages[0].to.as_deref(), Some("2.0-1"));
    }

    #[test]
    fn nevras_split_from_the_right() {
        assert_eq!(
            split_nevra("libdemo-0:2.0-1.x86_64"),
            Some(("libdemo", "2.0-1".into(), "x86_64"))
        );
        assert_eq!(
            split_nevra("python3-dnf-plugin-x-1:4.14-3.fc41.noarch"),
            Some(("python3-dnf-plugin-x", "1:4.14-3.fc41".into(), "noarch"))
        );
        assert_eq!(split_nevra("bash"), None);
        assert_eq!(split_nevra("-1-1.x"), None);
        assert_eq!(query_form("libdemo-0:2.0-1.x86_64"), "libdemo-2.0-1.x86_64");
        assert_eq!(query_form("vim-2:9.1-1.fc41.x86_64"), "vim-9.1-1.fc41.x86_64");
        assert_eq!(query_form("bash-5.2-1.x86_64"), "bash-5.2-1.x86_64");
        assert_eq!(query_form("odd"), "odd");
    }
}
