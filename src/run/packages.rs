//! What a run asks of the host's package database, behind one trait so
//! that nothing on this floor or below names a package manager: the
//! command line and the finish hand in the one that applies
//! (`crate::managers`).

use crate::core::fixes::{ByUnit, Upgrades};
use crate::core::plan::Plan;
use crate::system::sysroot::SysRoot;
use std::collections::BTreeSet;

/// A package database, as the run needs it.
pub trait Packages: Sync {
    /// How the database is called in messages (`dpkg`, `rpmdb`).
    fn name(&self) -> &'static str;

    /// The packages that own `paths`, for `/run/reboot-required.pkgs`;
    /// none where the database has no such convention.
    fn owners(&self, _root: &SysRoot, _paths: &[String]) -> BTreeSet<String> {
        BTreeSet::new()
    }

    /// The fixes of each stale unit of `plan`, read from the changelogs of
    /// the packages in `ups` (docs/cves.md).
    fn annotate(&self, root: &SysRoot, plan: &Plan, ups: &Upgrades) -> ByUnit;

    /// What stands in for a transaction's packages in `status`, which has
    /// none: the host's own package history, when it keeps one.
    fn recent_upgrades(&self, _root: &SysRoot) -> Option<Upgrades> {
        None
    }
}

impl std::fmt::Debug for dyn Packages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Packages({})", self.name())
    }
}
