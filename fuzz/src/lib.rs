//! The fuzz targets: one function per parser of outside input, each fed
//! raw bytes by a driver (`fuzz-afl` under AFL++, `fuzz-loop` for the
//! plain seeded loop and for replaying a crash file).
//!
//! Every target must never panic on any input; where it is cheap, it also
//! asserts an invariant the callers rely on (a round trip, or that a path
//! it returns is absolute). A failed assertion is a panic, which both
//! drivers report as a crash. docs/fuzzing.md lists the targets, their
//! seeds and the numbers of the last runs.

mod targets;

/// A target: takes any bytes, panics only on a bug.
pub type Target = fn(&[u8]);

/// Every target, by the name the drivers, `fuzz/seeds` and
/// `ci/fuzz-smoke` use.
pub const TARGETS: &[(&str, Target)] = &[
    ("maps", targets::maps),
    ("cgroup", targets::cgroup),
    ("unit_name", targets::unit_name),
    ("apt_protocol", targets::apt_protocol),
    ("record", targets::record),
    ("apt_record", targets::apt_record),
    ("apt_history", targets::apt_history),
    ("dpkg_log", targets::dpkg_log),
    ("dnf4_handover", targets::dnf4_handover),
    ("dnf_selector", targets::dnf_selector),
    ("swupd_manifest", targets::swupd_manifest),
    ("pacman_targets", targets::pacman_targets),
    ("changed_files", targets::changed_files),
    ("proc_stat", targets::proc_stat),
    ("zypper_frame", targets::zypper_frame),
    ("zypper_steps", targets::zypper_steps),
    ("rpm_ql", targets::rpm_ql),
    ("version", targets::version),
    ("changelog", targets::changelog),
    ("python_imports", targets::python_imports),
    ("perl_loads", targets::perl_loads),
    ("interp_cmdline", targets::interp_cmdline),
    ("safe_open_tree", targets::safe_open_tree),
];

/// The target called `name`.
pub fn find(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// The names, for usage messages.
pub fn names() -> String {
    TARGETS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(" ")
}
