//! The package managers, one folder each: what each one's hooks say, its
//! package database and its history. Nothing below this room names a
//! package manager (`ci/check-layers`).

pub mod apt;
pub mod dnf;
pub mod pacman;
pub mod rpm;
pub mod swupd;
pub mod zypper;

use crate::replay::Replay;
use crate::run::Packages;
use crate::system::sysroot::SysRoot;
use crate::transaction::Manager;
use anyhow::Result;
use rpm::FileLister;
use std::path::PathBuf;

/// Every package manager whose hooks record a transaction for a finish,
/// in the order their waiting records are started.
pub const RECORDING: [&dyn Manager; 4] = [&apt::finish::APT, &dnf::DNF, &pacman::Pacman, &zypper::ZYPPER];

/// The manager of that id (`apt`, `dnf`, `pacman`, `zypper`).
pub(crate) fn by_name(id: &str) -> Option<&'static dyn Manager> {
    RECORDING.into_iter().find(|m| m.id() == id)
}

/// Where the transaction is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The `nth` newest apt run (default: the last), among those since
    /// `since`; with `since` alone, all of them.
    AptHistory {
        nth: Option<usize>,
        since: Option<crate::replay::stamp::Stamp>,
    },
    /// Every dpkg install, upgrade and remove since the time.
    DpkgLog {
        since: crate::replay::stamp::Stamp,
    },
    Dnf(dnf::history::Selector),
    /// A swupd update from this version to the installed one.
    Swupd {
        from: u32,
    },
    /// A plain list of paths.
    Files(PathBuf),
}

/// Reads `source` with its package manager's history reader; `lister`
/// lists the files of rpm packages.
pub fn replay(root: &SysRoot, source: &Source, lister: &dyn FileLister) -> Result<Replay> {
    match source {
        Source::AptHistory { nth, since } => apt::history::replay(root, *nth, *since),
        Source::DpkgLog { since } => apt::dpkg_log::replay(root, *since),
        Source::Dnf(sel) => dnf::history::replay(root, *sel, lister),
        Source::Swupd { from } => swupd::replay(root, *from),
        Source::Files(path) => crate::replay::file_list(path),
    }
}

/// The package database of the host: the rpmdb where there is one and
/// no dpkg, else dpkg's (whose readers find nothing where it is absent).
pub(crate) fn host_packages(root: &SysRoot) -> &'static dyn Packages {
    if rpm::has_rpmdb(root) && !root.is_dir(apt::dpkg::INFO_DIR) {
        &rpm::Rpmdb
    } else {
        &apt::Dpkg
    }
}
