#!/usr/bin/env bash
# Reboot hints through apt (issue 15 part 2): installing a kernel package
# whose release is newer than the running one makes the apt hook's run
# write Debian's /run/reboot-required, with the package's name in
# /run/reboot-required.pkgs, and `restart-stale status --batch` print
# needrestart's `NEEDRESTART-KSTA: 3` with the running (KCUR) and the new
# (KEXP) release. Before the install, status is not 3 and no flag is set.
#
# The kernel package is a fake built here with dpkg-deb: e2e-linux-image
# installs /boot/vmlinuz-REL (a few bytes, not a bzImage) and
# /usr/lib/modules/REL/, which is what restart-stale looks at
# (src/system/kernel.rs). The container runs the host's kernel, so REL is
# made from /proc/sys/kernel/osrelease as the container sees it: the major
# number plus one, newer in dpkg's order whatever the host runs.
#
# e2e: modes v2
# (cgroup v1 adds nothing: the kernel check reads /proc/sys/kernel,
# /boot and /usr/lib/modules, no cgroup.)
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

PKG=e2e-linux-image

# build_kernel_deb OUT REL: writes OUT, the package $PKG for release REL.
# No maintainer scripts: Debian's kernel postinst would run
# update-initramfs and /etc/kernel/postinst.d, which the minbase rootfs
# lacks and which restart-stale does not read.
build_kernel_deb() {
    local out=$1 rel=$2 stage
    stage=$(mktemp -d "$E2E_WORK_DIR/kdeb.XXXXXX")
    E2E_OWNED_DIRS+=("$stage")
    mkdir -p "$stage/DEBIAN" "$stage/boot" "$stage/usr/lib/modules/$rel/kernel"
    printf 'not a kernel: restart-stale e2e image %s\n' "$rel" >"$stage/boot/vmlinuz-$rel"
    : >"$stage/usr/lib/modules/$rel/modules.order"
    cat >"$stage/DEBIAN/control" <<EOF
Package: $PKG
Version: $rel
Architecture: all
Maintainer: restart-stale e2e <e2e@localhost>
Section: kernel
Priority: optional
Description: fake kernel image $rel for restart-stale's e2e tests
 Installs /boot/vmlinuz-$rel and /usr/lib/modules/$rel/ only.
EOF
    dpkg-deb --root-owner-group -Zgzip -b "$stage" "$out" >/dev/null
    rm -rf "$stage"
}

# batch M: `restart-stale status --batch` inside M; it exits 3 while a
# unit waits for a restart, which is not this test's subject.
batch() {
    local rc=0 out
    out=$(e2e_in "$1" restart-stale status --batch) || rc=$?
    ((rc == 0 || rc == 3)) || fail "status --batch exited $rc"
    printf '%s\n' "$out"
}

t() {
    local m=$1 running major rel repo cursor log out pkgs json
    e2e_step "reset" e2e_demo_reset "$m"
    e2e_step "install restart-stale" e2e_require_tool "$m"
    e2e_wait_apt_finish "$m"
    # Another test's never-tier unit may have flagged a reboot before.
    e2e_in "$m" rm -f /run/reboot-required /run/reboot-required.pkgs

    running=$(e2e_in "$m" cat /proc/sys/kernel/osrelease)
    major=${running%%.*}
    [[ $major =~ ^[0-9]+$ ]] || fail "cannot read the major number of '$running'"
    rel="$((major + 1)).0.0-1-e2e"
    e2e_log "running kernel $running (the host's); the fake package installs $rel"

    out=$(batch "$m")
    printf '%s\n' "$out" | e2e_show_log
    assert_line "$out" "^NEEDRESTART-KCUR: ${running//./\\.}\$" "batch before the install"
    assert_line "$out" '^NEEDRESTART-KSTA: [01]$' "batch before the install"
    assert_no_line "$out" "^NEEDRESTART-KEXP: ${rel//./\\.}\$" "batch before the install"

    repo=$(_e2e_state "$m" rootfs)/srv/repo/e2e-kernel
    mkdir -p "$repo"
    build_kernel_deb "$repo/${PKG}_${rel}_all.deb" "$rel"
    e2e_repo_index "$m"
    cursor=$(e2e_journal_cursor "$m")
    e2e_step "apt-get install $PKG" e2e_apt "$m" install "$PKG"
    e2e_step "wait for restart-stale-apt.service" e2e_wait_apt_finish "$m"
    log=$(e2e_journal "$m" "$cursor" -u "$E2E_FINISH_UNIT")
    printf '%s\n' "$log" | e2e_show_log
    assert_line "$log" 'a reboot is needed: flagged in /run/reboot-required' "finish journal"

    assert_contains "$(e2e_in "$m" cat /run/reboot-required)" "System restart required" \
        "/run/reboot-required"
    pkgs=$(e2e_in "$m" cat /run/reboot-required.pkgs)
    assert_line "$pkgs" "^$PKG\$" "/run/reboot-required.pkgs"

    out=$(batch "$m")
    printf '%s\n' "$out" | e2e_show_log
    assert_line "$out" "^NEEDRESTART-KCUR: ${running//./\\.}\$" "batch after the install"
    assert_line "$out" "^NEEDRESTART-KEXP: ${rel//./\\.}\$" "batch after the install"
    assert_line "$out" '^NEEDRESTART-KSTA: 3$' "batch after the install"

    json=$(e2e_in "$m" restart-stale status --json) || true
    assert_contains "$json" '"code":"kernel-upgrade"' "status --json reboot reasons"
    assert_contains "$json" "\"expected\":\"$rel\"" "status --json kernel"

    # A second run of the hook adds the name once only.
    e2e_step "apt-get install --reinstall $PKG" e2e_apt "$m" install --reinstall "$PKG"
    e2e_wait_apt_finish "$m"
    assert_eq 1 "$(e2e_in "$m" grep -cx "$PKG" /run/reboot-required.pkgs)" "$PKG lines in reboot-required.pkgs"

    # Leave no kernel for the tests after this one.
    e2e_in "$m" dpkg --purge "$PKG" >/dev/null
    e2e_wait_apt_finish "$m"
    e2e_in "$m" rm -f /run/reboot-required /run/reboot-required.pkgs
    rm -rf "$repo"
    e2e_repo_index "$m"
    out=$(batch "$m")
    assert_line "$out" '^NEEDRESTART-KSTA: [01]$' "batch after the purge"
}
e2e_test_main t
