//! Reads what the kernel assessment needs, under the root: the running
//! release and build from /proc (never `uname`: nothing is executed), the
//! installed images, and the live-patching traces in /sys.

use crate::core::kernel::{self, Facts, Installed};
use crate::core::version::Order;
use crate::system::sysroot::SysRoot;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// Where kernel images live: Debian's `/boot/vmlinuz-REL`, and
/// `/usr/lib/modules/REL/vmlinuz` as Fedora and kernel-install keep it
/// (`/lib/modules` on a system without merged /usr).
const MODULE_DIRS: [&str; 2] = ["/usr/lib/modules", "/lib/modules"];

fn read_trimmed(path: &Path) -> Option<String> {
    let s = std::fs::read_to_string(path).ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// Reads every fact; what cannot be read stays unknown (a container
/// without /boot, /proc not mounted), which the assessment reports as
/// status 0, never as an error.
pub fn facts(root: &SysRoot) -> Facts {
    let (kpatch_core, ksplice) = (
        root.path("/sys/kernel/kpatch").is_dir(),
        has_entries(&root.path("/sys/kernel/ksplice")),
    );
    let livepatches = livepatches(root);
    Facts {
        running: read_trimmed(&root.path("/proc/sys/kernel/osrelease")),
        build: read_trimmed(&root.path("/proc/sys/kernel/version")),
        installed: installed(root),
        order: order(root),
        kpatch: kpatch_core || livepatches.iter().any(|p| p.starts_with("kpatch")),
        ksplice,
        livepatches,
    }
}

fn has_entries(dir: &Path) -> bool {
    std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(false)
}

/// rpm's order on an rpm system, dpkg's otherwise, decided as needrestart
/// does: a Red Hat release file and no Debian version file.
fn order(root: &SysRoot) -> Order {
    if root.path("/etc/redhat-release").exists() && !root.path("/etc/debian_version").exists() {
        Order::Rpm
    } else {
        Order::Dpkg
    }
}

/// The installed images by release. A modules directory without an image
/// is not a kernel: DKMS and package removal leave such directories behind,
/// and a newer one would claim an upgrade that cannot boot.
fn installed(root: &SysRoot) -> Vec<Installed> {
    let mut found: BTreeMap<String, std::path::PathBuf> = BTreeMap::new();
    if let Ok(dir) = std::fs::read_dir(root.path("/boot")) {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(rel) = name.strip_prefix("vmlinuz-").filter(|r| !r.is_empty()) {
                found.insert(rel.to_string(), e.path());
            }
        }
    }
    for modules in MODULE_DIRS {
        let Ok(dir) = std::fs::read_dir(root.path(modules)) else {
            continue;
        };
        for e in dir.flatten() {
            let image = e.path().join("vmlinuz");
            if image.is_file() {
                let rel = e.file_name().to_string_lossy().into_owned();
                found.entry(rel).or_insert(image);
            }
        }
    }
    found
        .into_iter()
        .map(|(release, image)| Installed {
            banner: banner(&image),
            release,
        })
        .collect()
}

/// The banner in the image's header, from its first bytes only.
fn banner(image: &Path) -> Option<String> {
    let mut head = Vec::new();
    let f = std::fs::File::open(image).ok()?;
    f.take(kernel::IMAGE_HEAD as u64).read_to_end(&mut head).ok()?;
    kernel::image_banner(&head)
}

/// Names of the enabled live patches (`/sys/kernel/livepatch/NAME/enabled`
/// holds 1), sorted.
fn livepatches(root: &SysRoot) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(root.path("/sys/kernel/livepatch")) else {
        return Vec::new();
    };
    let mut names: Vec<String> = dir
        .flatten()
        .filter(|e| read_trimmed(&e.path().join("enabled")).as_deref() == Some("1"))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::kernel::{assess, State};
    use std::fs;

    fn write(root: &SysRoot, rel: &str, text: &str) {
        let p = root.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    #[test]
    fn fake_roots() {
        // Debian: images in /boot, a leftover newer modules directory.
        let (_t, root) = SysRoot::scratch();
        write(&root, "/proc/sys/kernel/osrelease", "6.1.0-27-amd64\n");
        write(&root, "/boot/vmlinuz-6.1.0-27-amd64", "image");
        write(&root, "/boot/vmlinuz-6.1.0-28-amd64", "image");
        write(&root, "/boot/initrd.img-6.1.0-28-amd64", "initrd");
        write(&root, "/usr/lib/modules/6.1.0-99-amd64/updates/dkms/x.ko", "");
        let s = assess(&facts(&root));
        assert_eq!(
            (s.state, s.expected.as_deref()),
            (State::VersionUpgrade, Some("6.1.0-28-amd64"))
        );

        // Fedora: images under /usr/lib/modules, rpm order.
        let (_t, root) = SysRoot::scratch();
        write(&root, "/etc/redhat-release", "Fedora release 41\n");
        write(&root, "/proc/sys/kernel/osrelease", "6.11.10-200.fc41.x86_64\n");
        write(&root, "/usr/lib/modules/6.11.4-301.fc41.x86_64/vmlinuz", "image");
        write(&root, "/usr/lib/modules/6.11.10-200.fc41.x86_64/vmlinuz", "image");
        let f = facts(&root);
        assert_eq!(f.order, Order::Rpm);
        assert_eq!(assess(&f).state, State::Current);

        // Live-patched newest kernel; a disabled patch does not count.
        let (_t, root) = SysRoot::scratch();
        write(&root, "/proc/sys/kernel/osrelease", "6.1.0-28-amd64");
        write(&root, "/boot/vmlinuz-6.1.0-28-amd64", "image");
        write(&root, "/sys/kernel/livepatch/kpatch_cve_1/enabled", "1\n");
        write(&root, "/sys/kernel/livepatch/old_patch/enabled", "0\n");
        let f = facts(&root);
        assert_eq!(f.livepatches, ["kpatch_cve_1"]);
        assert!(f.kpatch && !f.ksplice);
        assert_eq!(assess(&f).state, State::LivePatched);

        // Nothing readable: unknown.
        let (_t, root) = SysRoot::scratch();
        assert_eq!(assess(&facts(&root)).ksta, 0);
    }
}
