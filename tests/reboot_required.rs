//! A hook run that leaves a reboot to do flags it the Debian way:
//! `/run/reboot-required` and the packages behind it in
//! `/run/reboot-required.pkgs`, idempotently. Through the library's run
//! with the hook switch, as the finish step calls it, on golden case 09
//! (6.1.0-27 running, -28 installed, dbus mapping a replaced libdemo).

use crate::util::fixture::case_root;
use restart_stale::run::{self, Mode, Options};
use restart_stale::system::sysroot::SysRoot;
use std::fs;

#[test]
fn a_hook_run_flags_the_reboot_and_names_the_packages() {
    let root = case_root("09-kernel-debian-batch");
    let info = root.path().join("var/lib/dpkg/info");
    fs::create_dir_all(&info).unwrap();
    fs::write(
        info.join("linux-image-6.1.0-28-amd64.list"),
        "/.\n/boot\n/boot/vmlinuz-6.1.0-28-amd64\n",
    )
    .unwrap();
    // dpkg names the pre-merged-/usr path; the map names /usr/lib.
    fs::write(info.join("libdemo1:amd64.list"), "/lib/x86_64-linux-gnu/libdemo.so.1\n").unwrap();
    fs::write(info.join("unrelated.list"), "/usr/bin/unrelated\n").unwrap();
    fs::create_dir_all(root.path().join("run")).unwrap();
    let sys = SysRoot::new(root.path());
    let opts = Options {
        hook: true,
        quiet: true,
        packages: Some(&restart_stale::managers::apt::Dpkg),
        ..Options::default()
    };
    for _ in 0..2 {
        run::execute(&sys, &opts, Mode::DryRun, 0).unwrap();
    }
    let flag = fs::read_to_string(root.path().join("run/reboot-required")).unwrap();
    assert!(flag.contains("System restart required"), "{flag}");
    let pkgs = fs::read_to_string(root.path().join("run/reboot-required.pkgs")).unwrap();
    assert_eq!(pkgs, "libdemo1\nlinux-image-6.1.0-28-amd64\n");
}

#[test]
fn no_flag_without_a_hook_or_without_a_reason() {
    let root = case_root("09-kernel-debian-batch");
    fs::create_dir_all(root.path().join("run")).unwrap();
    let sys = SysRoot::new(root.path());
    let quiet = Options {
        quiet: true,
        ..Options::default()
    };
    run::execute(&sys, &quiet, Mode::DryRun, 0).unwrap();
    assert!(!root.path().join("run/reboot-required").exists());

    // Case 11: the newest kernel runs (6.1.0-10 after -9), live-patched,
    // and nothing never-tier is stale: no reboot, even from a hook.
    let root = case_root("11-kernel-livepatch");
    fs::create_dir_all(root.path().join("run")).unwrap();
    let hook = Options { hook: true, ..quiet };
    run::execute(&SysRoot::new(root.path()), &hook, Mode::DryRun, 0).unwrap();
    assert!(!root.path().join("run/reboot-required").exists());
}
