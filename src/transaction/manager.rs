//! What a package manager's integration tells the transaction layer: one
//! trait, implemented in `crate::managers`, so that this layer names no
//! package manager. A manager's id names its spool, its finish unit and
//! our subcommand, and nothing else needs saying.

use super::record::Record;
use crate::core::changed::ChangedSet;
use crate::core::fixes::Upgrades;
use crate::run::Packages;
use crate::system::sysroot::SysRoot;
use anyhow::Result;
use std::path::PathBuf;

/// One package manager, as the hooks' record, launch and finish see it.
pub trait Manager {
    /// Its short name (`apt`, `dnf`, `pacman`, `zypper`): the spool
    /// `/run/restart-stale/<id>`, the unit `restart-stale-<id>.service`,
    /// our subcommand `<id>-hook`, and the messages.
    fn id(&self) -> &'static str;

    /// The spool directory inside the root.
    fn dir(&self) -> String {
        format!("/run/restart-stale/{}", self.id())
    }

    /// The transient unit the finish runs in.
    fn unit(&self) -> String {
        format!("restart-stale-{}.service", self.id())
    }

    /// Our subcommand whose `finish` the unit runs.
    fn subcommand(&self) -> String {
        format!("{}-hook", self.id())
    }

    /// "a dnf transaction", for the unit's description.
    fn a_transaction(&self) -> String {
        format!("a {} transaction", self.id())
    }

    /// The package database that owns its files and knows their
    /// changelogs, handed to the run.
    fn packages(&self) -> Option<&'static dyn Packages>;

    /// One line naming the recorded transaction, for a record given up.
    fn summary(&self, files: &[PathBuf]) -> String {
        match Record::read_all(files) {
            Ok(rec) => super::recorded::summary(self, &rec),
            Err(e) => format!("{} whose record cannot be read ({e:#})", self.a_transaction()),
        }
    }

    /// A recorded package's name for the summary (`name.arch`) and its
    /// version, where the manager's package names carry both.
    fn split_package(&self, _package: &str) -> Option<(String, String)> {
        None
    }

    /// Waits until the package manager lets go before records are taken;
    /// false leaves them for the next run (the reason logged).
    fn ready(&self, _root: &SysRoot) -> bool {
        true
    }

    /// How the log names the switch that turned automatic restarts off.
    fn restarts_off(&self) -> String {
        "for this transaction".to_string()
    }

    /// The packages of the record with their old and new versions, for
    /// the fixes annotation (docs/cves.md); `None` annotates nothing.
    fn upgrades(&self, _rec: &Record) -> Option<Upgrades> {
        None
    }

    /// Reads the taken records and derives what changed; `None` when the
    /// transaction changed nothing that could matter. The default reads
    /// the facts every hook records ([`super::recorded::prepare`]).
    fn prepare(&self, root: &SysRoot, files: &[PathBuf]) -> Result<Option<Prepared>> {
        super::recorded::prepare(self, root, files)
    }
}

/// What one taken batch of records asks for.
#[derive(Debug, Default)]
pub struct Prepared {
    pub changed: ChangedSet,
    /// False when any hook run of the batch had automatic restarts off:
    /// then nothing is restarted, the report is logged, and each unit a
    /// restart run would restart is marked `needs-restart` for a later
    /// window (docs/deferred.md).
    pub auto_restart: bool,
    /// Units the package manager runs in: skipped as running this tool.
    pub protect: Vec<String>,
    /// False when a hook run turned the PID 1 re-exec off (apt's
    /// `RestartStale::Reexec`).
    pub reexec: bool,
    /// The packages with their old and new versions, when the record
    /// names them: the stale units are annotated with their fixes.
    pub upgrades: Option<Upgrades>,
}

/// A manager known by its id alone, for the tests of this layer.
#[cfg(test)]
pub(crate) struct Named(pub &'static str);

#[cfg(test)]
impl Manager for Named {
    fn id(&self) -> &'static str {
        self.0
    }
    fn packages(&self) -> Option<&'static dyn Packages> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_names_the_spool_the_unit_and_the_subcommand() {
        let m = Named("dnf");
        assert_eq!(m.dir(), "/run/restart-stale/dnf");
        assert_eq!(m.unit(), "restart-stale-dnf.service");
        assert_eq!(m.subcommand(), "dnf-hook");
        assert_eq!(m.a_transaction(), "a dnf transaction");
    }
}
