//! Is the running kernel the newest installed one? Pure: the facts come
//! from `crate::system::kernel`, and the answer uses needrestart's kernel
//! status numbers (`NEEDRESTART-KSTA`, docs/batch.md).

use crate::core::version::Order;
use serde::Serialize;
use std::cmp::Ordering;

/// One installed kernel image.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Installed {
    /// Its release string, as in `/boot/vmlinuz-RELEASE`.
    pub release: String,
    /// The version banner read from the image's header (x86 bzImage:
    /// `6.1.0-28-amd64 (builder@host) #1 SMP … (2024-11-01)`), when readable.
    pub banner: Option<String>,
}

/// What the readers found; every field may be missing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Facts {
    /// `/proc/sys/kernel/osrelease`.
    pub running: Option<String>,
    /// `/proc/sys/kernel/version`: the build (`#1 SMP … (date)`).
    pub build: Option<String>,
    pub installed: Vec<Installed>,
    pub order: Order,
    /// Enabled patches under `/sys/kernel/livepatch`.
    pub livepatches: Vec<String>,
    /// kpatch's traces (its own core module, or `kpatch_*` livepatches).
    pub kpatch: bool,
    /// Ksplice's traces (`/sys/kernel/ksplice`).
    pub ksplice: bool,
}

/// The kernel's state, with needrestart's status number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// No running release, no installed image, or a running kernel newer
    /// than every installed one (a container sees its host's kernel).
    Unknown,
    /// The newest installed kernel runs, unpatched.
    Current,
    /// The newest installed release runs, with live patches applied: not
    /// the image on disk, so not called current.
    LivePatched,
    /// The newest release runs, but its image on disk is another build of
    /// it (the banner differs from /proc/sys/kernel/version).
    AbiUpgrade,
    /// A newer release is installed.
    VersionUpgrade,
}

impl State {
    /// `NEEDRESTART-KSTA`: 0 unknown, 1 no pending upgrade, 2 ABI
    /// compatible upgrade pending, 3 version upgrade pending. Live patches
    /// do not change what is installed, so a patched newest kernel is 1.
    pub(crate) fn ksta(self) -> u8 {
        match self {
            State::Unknown => 0,
            State::Current | State::LivePatched => 1,
            State::AbiUpgrade => 2,
            State::VersionUpgrade => 3,
        }
    }
}

/// The assessment of [`Facts`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The newest installed release, when any image was found.
    pub expected: Option<String>,
    pub ksplice: bool,
    pub kpatch: bool,
    pub ksta: u8,
    pub livepatches: Vec<String>,
    pub running: Option<String>,
    pub state: State,
}

impl Status {
    pub fn patched(&self) -> bool {
        !self.livepatches.is_empty() || self.kpatch || self.ksplice
    }
}

/// Compares the running kernel with the newest installed one.
pub(crate) fn assess(f: &Facts) -> Status {
    let expected = f
        .installed
        .iter()
        .max_by(|a, b| f.order.compare(&a.release, &b.release))
        .map(|k| k.release.clone());
    let state = match (&f.running, &expected) {
        (Some(run), Some(exp)) => match f.order.compare(run, exp) {
            Ordering::Less => State::VersionUpgrade,
            // Same order but another string ("007" vs "7"): the kernel
            // boots the image by name, so only the exact release is current.
            Ordering::Equal if run != exp => State::VersionUpgrade,
            Ordering::Equal if other_build(f, run) => State::AbiUpgrade,
            Ordering::Equal if !f.livepatches.is_empty() || f.kpatch || f.ksplice => State::LivePatched,
            Ordering::Equal => State::Current,
            Ordering::Greater => State::Unknown,
        },
        _ => State::Unknown,
    };
    Status {
        expected,
        ksplice: f.ksplice,
        kpatch: f.kpatch,
        ksta: state.ksta(),
        livepatches: f.livepatches.clone(),
        running: f.running.clone(),
        state,
    }
}

/// True when the image of the running release carries a banner that does
/// not name the running build: the package was rebuilt under the same
/// release (an ABI-compatible update). Unknown banners say nothing.
fn other_build(f: &Facts, running: &str) -> bool {
    let Some(build) = f.build.as_deref().map(str::trim).filter(|b| !b.is_empty()) else {
        return false;
    };
    f.installed
        .iter()
        .filter(|k| k.release == running)
        .filter_map(|k| k.banner.as_deref())
        .any(|banner| !(banner.starts_with(running) && banner.contains(build)))
}

/// The x86 boot protocol's setup header: the magic `HdrS` at 0x202, and at
/// 0x20E the offset (minus 0x200) of the NUL-terminated version banner
/// (Documentation/arch/x86/boot.rst, field `kernel_version`).
const HDRS_AT: usize = 0x202;
const VERSION_PTR_AT: usize = 0x20E;
const BANNER_MAX: usize = 512;

/// How many leading bytes of an image [`image_banner`] needs at most.
pub const IMAGE_HEAD: usize = 0x200 + 0xFFFF + BANNER_MAX;

/// Reads the version banner of an x86 bzImage from its first bytes; `None`
/// for other images (arm64 `Image.gz`, a fake) or a damaged header.
pub(crate) fn image_banner(head: &[u8]) -> Option<String> {
    if head.get(HDRS_AT..HDRS_AT + 4)? != b"HdrS" {
        return None;
    }
    let ptr = head.get(VERSION_PTR_AT..VERSION_PTR_AT + 2)?;
    let at = usize::from(u16::from_le_bytes([ptr[0], ptr[1]])) + 0x200;
    let rest = head.get(at..)?;
    let rest = &rest[..rest.len().min(BANNER_MAX)];
    let end = rest.iter().position(|&c| c == 0)?;
    let text = std::str::from_utf8(&rest[..end]).ok()?;
    (!text.is_empty() && text.is_ascii()).then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(running: &str, installed: &[&str], order: Order) -> Facts {
        Facts {
            running: Some(running.into()),
            installed: installed
                .iter()
                .map(|r| Installed {
                    release: r.to_string(),
                    banner: None,
                })
                .collect(),
            order,
            ..Facts::default()
        }
    }

    #[test]
    fn kernel_states_table() {
        use Order::*;
        /// running, installed, order, state, expected
        type Case<'a> = (&'a str, &'a [&'a str], Order, State, Option<&'a str>);
        let cases: &[Case] = &[
            (
                "6.1.0-27-amd64",
                &["6.1.0-27-amd64", "6.1.0-28-amd64"],
                Dpkg,
                State::VersionUpgrade,
                Some("6.1.0-28-amd64"),
            ),
            (
                "6.1.0-28-amd64",
                &["6.1.0-28-amd64", "6.1.0-27-amd64"],
                Dpkg,
                State::Current,
                Some("6.1.0-28-amd64"),
            ),
            (
                "6.1.0-9-amd64",
                &["6.1.0-10-amd64", "6.1.0-9-amd64"],
                Dpkg,
                State::VersionUpgrade,
                Some("6.1.0-10-amd64"),
            ),
            (
                "6.11.4-301.fc41.x86_64",
                &["6.11.4-301.fc41.x86_64"],
                Rpm,
                State::Current,
                Some("6.11.4-301.fc41.x86_64"),
            ),
            (
                "6.11.4-301.fc41.x86_64",
                &["6.11.10-200.fc41.x86_64", "6.11.4-301.fc41.x86_64"],
                Rpm,
                State::VersionUpgrade,
                Some("6.11.10-200.fc41.x86_64"),
            ),
            // A container sees its host's kernel, newer than its own images.
            (
                "6.18.0-1-amd64",
                &["6.1.0-28-amd64"],
                Dpkg,
                State::Unknown,
                Some("6.1.0-28-amd64"),
            ),
            ("6.1.0-28-amd64", &[], Dpkg, State::Unknown, None),
        ];
        for (running, installed, order, state, expected) in cases {
            let s = assess(&facts(running, installed, *order));
            assert_eq!(s.state, *state, "{running} vs {installed:?}");
            assert_eq!(s.expected.as_deref(), *expected, "{running} vs {installed:?}");
            assert_eq!(s.ksta, state.ksta());
        }
        assert_eq!(assess(&Facts::default()).ksta, 0);
    }

    #[test]
    fn live_patches_are_not_current() {
        let mut f = facts("6.1.0-28-amd64", &["6.1.0-28-amd64"], Order::Dpkg);
        f.livepatches = vec!["livepatch_cve_2024_1".into()];
        let s = assess(&f);
        assert_eq!((s.state, s.ksta), (State::LivePatched, 1));
        assert!(s.patched());
        // A patched old kernel still waits for the new one.
        let mut f = facts("6.1.0-27-amd64", &["6.1.0-28-amd64"], Order::Dpkg);
        f.ksplice = true;
        assert_eq!(assess(&f).state, State::VersionUpgrade);
    }

    #[test]
    fn another_build_of_the_same_release_is_an_abi_upgrade() {
        let mut f = facts("6.1.0-28-amd64", &["6.1.0-28-amd64"], Order::Dpkg);
        f.build = Some("#1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)\n".into());
        f.installed[0].banner = Some(
            "6.1.0-28-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)"
                .into(),
        );
        assert_eq!(assess(&f).state, State::Current);
        f.installed[0].banner = Some(
            "6.1.0-28-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.123-1 (2025-01-02)"
                .into(),
        );
        assert_eq!(assess(&f).state, State::AbiUpgrade);
        assert_eq!(assess(&f).ksta, 2);
    }

    fn bzimage(banner: &[u8], at: u16) -> Vec<u8> {
        let mut img = vec![0u8; (usize::from(at) + 0x200 + banner.len() + 1).max(0x210)];
        img[HDRS_AT..HDRS_AT + 4].copy_from_slice(b"HdrS");
        img[VERSION_PTR_AT..VERSION_PTR_AT + 2].copy_from_slice(&at.to_le_bytes());
        let start = usize::from(at) + 0x200;
        img[start..start + banner.len()].copy_from_slice(banner);
        img
    }

    #[test]
    fn banner_from_a_bzimage_header_and_nothing_from_junk() {
        let img = bzimage(b"6.1.0-28-amd64 (x@y) #1 SMP", 0x3000);
        assert_eq!(image_banner(&img).as_deref(), Some("6.1.0-28-amd64 (x@y) #1 SMP"));
        assert_eq!(image_banner(b"fake kernel image"), None);
        assert_eq!(image_banner(&[]), None);
        let mut cut = bzimage(b"6.1", 0x100);
        cut.pop(); // no terminating NUL
        assert_eq!(image_banner(&cut), None);
        let mut far = bzimage(b"", 0);
        far[VERSION_PTR_AT..VERSION_PTR_AT + 2].copy_from_slice(&0xFFFFu16.to_le_bytes());
        assert_eq!(image_banner(&far), None);
    }
}
